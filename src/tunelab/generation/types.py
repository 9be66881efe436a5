"""What every generation backend takes and gives: a `Prompt`, `GenerationSettings`, plain text.

These sit below training and evaluation so that both (and compare, serve, `tunelab generate`)
describe a generation the same way. Tasks re-export them from `evaluation.task`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|$)", re.DOTALL)
# Reasoning models (Qwen3, DeepSeek-R1 and their kind) think inside these tags before they answer.
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Prompt:
    """What the model is given: chat `messages` (role/content dicts, rendered with the model's
    chat template plus the generation prompt) or raw `text` to continue. Exactly one is set."""

    messages: tuple[dict[str, str], ...] | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.text is None):
            raise ValueError("a Prompt has exactly one of messages or text")
        if self.messages is not None:  # accept lists too; stored as a tuple of copies (frozen)
            object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def to_json(self) -> Any:
        """The prompt as stored in samples.jsonl: the text, or the list of messages."""
        return self.text if self.messages is None else list(self.messages)


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate for a task. `temperature == 0` means greedy (then `top_p` is unused)."""

    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    n: int = 1  # samples per prompt; pass@k needs n >= k
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop sequence."""
    cut = len(text)
    for s in stops:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut]


def unfence(generation: str, reference: str) -> str:
    """The first fenced block's content if the generation has one and the reference has none."""
    if "```" in reference:
        return generation
    m = _FENCE.search(generation)
    return m.group(1) if m else generation


def strip_reasoning(generation: str) -> str:
    """The answer of a generation without its reasoning block: what every task scores.

    - `<think>...</think>` at the start (after whitespace): the text after `</think>`;
    - an unterminated `<think>` at the start (the reply was cut off while thinking): "" (no answer);
    - a `</think>` with no `<think>` before it (the chat template opened the block in the prompt):
      the text after it;
    - anything else is returned unchanged, so generations of models that do not think score as
      before. The raw generation is what samples.jsonl keeps.
    """
    head = generation.lstrip()
    if head.startswith(THINK_OPEN):
        end = head.find(THINK_CLOSE)
        return "" if end < 0 else head[end + len(THINK_CLOSE):].lstrip("\n")
    end = generation.find(THINK_CLOSE)
    if end >= 0 and THINK_OPEN not in generation[:end]:
        return generation[end + len(THINK_CLOSE):].lstrip("\n")
    return generation


def answer_texts(generations: Sequence[Sequence[str]]) -> list[list[str]]:
    """`strip_reasoning` of every generation of every item: what tasks score."""
    return [[strip_reasoning(g) for g in gens] for gens in generations]
