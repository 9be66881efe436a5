"""Prompt pieces the code, repair and hint tasks share (a helper module: no tasks).

Prompting baselines ask the base model the task's own question three ways:

- zero-shot: the question alone (for the built-in tasks: exactly as the training rows ask it);
- chain-of-thought: the question plus one line asking for a short explanation first and the
  answer in a form scoring finds after prose (code in one ```python block, a hint on a line
  starting with "Hint:"); chat style only, since a completion continues code and has no room
  for prose;
- few-shot: `num_fewshot` worked examples as earlier chat turns (or, completion style, programs
  before the prompt), answered as the training rows answer. Shots are chosen deterministically:
  the first ones of a split that is never the evaluated one (or of shipped examples), one per
  problem or topic, so k shots show k different problems; the engine refuses a shot that is an
  evaluated item and records the shot ids in the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from tunelab.evaluation.task import Prompt, PromptOptions, Sample

TASKS = ()

COT = "chain-of-thought"
FEW_SHOT = "few-shot"
VARIANTS = ("zero-shot", FEW_SHOT, COT)

# What each chain-of-thought line asks for after the question.
COT_FUNCTION = "First explain the approach in a few sentences, then give the complete function in one ```python block."
COT_PROGRAM = "First explain the approach in a few sentences, then give the complete program in one ```python block."
COT_REPAIR = ("First explain in a few sentences what the bug is, then give the whole fixed function in one "
              "```python block.")
COT_HINT = ("First reason in a few sentences about where the bug is and what it breaks. Then write the hint for "
            "the student on a last line that starts with 'Hint:'.")


def with_cot(text: str, opts: PromptOptions, line: str) -> str:
    """`text`, plus the chain-of-thought `line` when that is the variant asked for."""
    return f"{text}\n\n{line}" if opts.variant == COT else text


def distinct_shots(pool: Iterable[Sample], k: int, group: Callable[[Sample], object] = lambda s: s.id) -> list[Sample]:
    """The first `k` samples of `pool` (in its fixed order) whose `group` (problem, topic) differs
    from every earlier shot's: deterministic, and k shots show k different problems."""
    shots: list[Sample] = []
    seen: set[object] = set()
    for s in pool:
        if len(shots) >= k:
            break
        key = group(s)
        if key not in seen:
            seen.add(key)
            shots.append(s)
    return shots


def chat_prompt(question: str, shots: Sequence[Sample], ask: Callable[[Sample], str],
                answer: Callable[[Sample], str]) -> Prompt:
    """A chat prompt: each shot as a user turn (`ask`) and its worked answer (`answer`), then the
    question."""
    messages: list[dict[str, str]] = []
    for s in shots:
        messages += [{"role": "user", "content": ask(s)}, {"role": "assistant", "content": answer(s)}]
    messages.append({"role": "user", "content": question})
    return Prompt(messages=messages)


def shots_for(opts: PromptOptions, shots: Sequence[Sample]) -> Sequence[Sample]:
    """The shots a prompt shows: all of them for few-shot, none otherwise."""
    return shots if opts.variant == FEW_SHOT else ()
