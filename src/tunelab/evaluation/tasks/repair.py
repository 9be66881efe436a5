"""repair: fix a buggy function (the built-in repair dataset: AST mutants of basic-python).

RPass: the repaired function passes the problem's tests (run in the sandbox); per problem the
share of generations that pass, i.e. the unbiased pass@1. REdit: the token edit distance
between the buggy program and the repair, over Python `tokenize` tokens with comments,
newlines, indentation and other whitespace dropped (so reformatting costs nothing). REdit is
reported over every repair that parses as Python (`redit`, beside `parse_rate`, the share of
generations whose repair parses) and over successful repairs only (`redit_success`). A repair
cut off mid-function does not parse and gets no REdit: its few tokens would otherwise score as a
small edit. A model can also look minimal by changing nothing, which only `redit_success` shows.

Prompting baselines: chain-of-thought appends `prompts.COT_REPAIR` (the repair is the ```python
block defining the function, so neither run nor REdit sees the explanation); few-shot shots are
one mutant each of the first train problems (train and test problems are disjoint), answered
with the fixed function as the training rows answer.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass

from tunelab.evaluation.task import (
    GenerationSettings, Metric, Prompt, PromptOptions, Sample, SampleScore, ScoringContext,
)
from tunelab.evaluation.tasks.code_extract import extract_code, parse_quietly, prompt_imports, sanitize
from tunelab.evaluation.tasks.humaneval import CodeTask, need_sandbox, run_function_programs
from tunelab.evaluation.tasks.prompts import COT, COT_REPAIR, VARIANTS, chat_prompt, distinct_shots, shots_for, with_cot

_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
         tokenize.ENCODING, tokenize.ENDMARKER}
_FIELDS = ("mutant_id", "task_id", "buggy_code", "fixed_code", "entry_point", "test", "mutation", "line", "split")


def code_tokens(code: str) -> list[str]:
    """Python lexer tokens of `code` without comments and whitespace; a program that does not
    tokenize to the end keeps the tokens read before the error."""
    out: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type not in _SKIP:
                out.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def parses(code: str | None) -> bool:
    """Whether `code` is a complete Python program (`ast.parse` accepts it)."""
    return code is not None and parse_quietly(code) is not None


def token_edit_distance(before: str, after: str) -> int:
    """REdit: token edit distance between two programs."""
    return edit_distance(code_tokens(before), code_tokens(after))


@dataclass
class RepairTask(CodeTask):
    """Built-in repair mutants; the test split by default."""

    name = "repair"
    version = "2"
    description = "Fix a buggy function: RPass (repair passes the tests, sandbox) and REdit (token edit distance)."
    data_source = "builtin:repair (AST mutants of basic-python, verified to fail a test)"
    metrics = (
        Metric("rpass", True, description="share of repairs that pass all tests (pass@1)"),
        Metric("redit", False, description="token edit distance buggy -> repair, every repair that parses"),
        Metric("parse_rate", True, description="share of generations whose repair parses as Python (REdit's items)"),
        Metric("redit_success", False, description="token edit distance buggy -> repair, successful repairs only"),
    )
    executes_code = True
    prompt_variants = VARIANTS
    styles = ("chat",)
    splits = ("train", "test")
    default_split = "test"
    fewshot_split = "train"
    generation = GenerationSettings(max_new_tokens=512)

    timeout_s: float = 10.0

    def load(self, split: str | None = None) -> list[Sample]:
        from tunelab.data.builtin import load_builtin

        return [Sample(r["mutant_id"], {**{k: r[k] for k in _FIELDS}, "instruction": r["instruction"]})
                for r in load_builtin("repair", split or self.default_split)]

    def fewshot(self, opts: PromptOptions) -> list[Sample]:
        """One mutant of each of the first `num_fewshot` problems of the train split."""
        return distinct_shots(self.load(self.fewshot_split), opts.num_fewshot, lambda s: s.data["task_id"])

    def build_prompt(self, sample: Sample, opts: PromptOptions, shots: Sequence[Sample] = ()) -> Prompt:
        return chat_prompt(with_cot(sample.data["instruction"], opts, COT_REPAIR), shots_for(opts, shots),
                           lambda s: s.data["instruction"], lambda s: s.data["fixed_code"])

    def generation_settings(self, opts: PromptOptions) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=768) if opts.variant == COT else self.generation

    def repaired(self, sample: Sample, generation: str) -> str | None:
        """The repaired program in a generation (fenced or raw), or None. Import lines of the
        buggy program that the answer dropped are put back in front (run and REdit alike)."""
        code = extract_code(generation, sample.data["entry_point"])
        if code is None:
            return None
        code = sanitize(code, sample.data["entry_point"])
        missing = [ln for ln in prompt_imports(sample.data["buggy_code"]).splitlines() if ln not in code]
        return "".join(ln + "\n" for ln in missing) + code

    def score_batch(self, samples: Sequence[Sample], generations: Sequence[list[str]],
                    ctx: ScoringContext) -> list[SampleScore]:
        sandbox = need_sandbox(ctx, self.name)
        fixes = [(s, self.repaired(s, g)) for s, gens in zip(samples, generations, strict=True) for g in gens]
        flat = run_function_programs(
            sandbox, [(fix, s.data["test"], s.data["entry_point"]) for s, fix in fixes], self.timeout_s)
        for rec, (s, fix) in zip(flat, fixes, strict=True):
            rec["parses"] = parses(fix)
            rec["redit"] = token_edit_distance(s.data["buggy_code"], fix) if rec["parses"] else None
        scores, at = [], 0
        for gens in generations:
            per_gen, at = flat[at : at + len(gens)], at + len(gens)
            edits = [g["redit"] for g in per_gen if g["redit"] is not None]
            good = [g["redit"] for g in per_gen if g["passed"]]
            scores.append(SampleScore(
                values={"rpass": sum(g["passed"] for g in per_gen) / len(per_gen) if per_gen else 0.0,
                        "redit": sum(edits) / len(edits) if edits else None,
                        "parse_rate": sum(g["parses"] for g in per_gen) / len(per_gen) if per_gen else None,
                        "redit_success": sum(good) / len(good) if good else None},
                generations=per_gen))
        return scores


TASKS = (RepairTask,)
