"""GSM8K-format math word problems: the answer is the number after `#### `.

Two extractions, both reported, for base and tuned models alike:
- strict: the number after the last `#### ` (what a model fine-tuned on GSM8K answers writes);
- flexible: the last number anywhere in the generation (what a base or chatty model writes).
Numbers are normalised before comparison: `$` and thousands commas removed, a trailing period
dropped, then compared as numbers (so "1,200.00" == "1200").

Data: the built-in `math-word` problems, a GSM8K file (`path`: JSONL/JSON/Parquet with
question/answer), a saved `datasets` folder (`path`), or a dataset (`dataset`: a hub id such as
`openai/gsm8k`, config `subset`, default `main` for GSM8K, `revision`; or a local folder laid
out like the hub repository), all through `tunelab.evaluation.hub`; `split_map` renames splits.

Wrong answers are categorised (`math_errors`): flexible_only, truncated, no_answer,
arithmetic_error, intermediate_answer, wrong_answer; the verdict of every generation is in
samples.jsonl and their counts in the summary's `failure_categories`.

Prompts (chat style): `prompt_format: training` (the default) asks the question exactly as the
built-in `math-word` training rows do (`tunelab.data.builtin.math_instruction`), so a tuned model
is scored on the prompt it was tuned on; `benchmark` appends the answer-format line
(`ANSWER_FORMAT`) that GSM8K-style evaluations of untuned models use. The chain-of-thought
variant appends its own line (`COT_SUFFIX`) to the question in either format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tunelab.errors import did_you_mean
from tunelab.evaluation.task import (
    EvalError, GenerationSettings, Metric, Prompt, PromptOptions, Sample, SampleScore, ScoringContext, Task,
)
from tunelab.evaluation.tasks.math_errors import categorize

# A number as written in prose: optional sign and $, digits with optional thousands commas,
# optional decimals ("$1,234.50", "-3", "7.").
_NUMBER = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_STRICT = re.compile(r"####\s*(" + _NUMBER + r")")
_ANY = re.compile(_NUMBER)

COT_SUFFIX = "Think step by step, then give the final answer on the last line as '#### <number>'."
ANSWER_FORMAT = "Give the final answer on the last line as '#### <number>'."
PROMPT_FORMATS = ("training", "benchmark")


def normalize_number(text: str) -> str | None:
    """'$1,200.50.' -> '1200.5'; None when `text` is not a number after normalisation."""
    t = text.strip().replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(t)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    # Canonical form: no exponent, no trailing zeros ("12.0" -> "12", "-0" -> "0").
    value = value.normalize() + 0
    return format(value, "f")


def extract_strict(generation: str) -> str | None:
    """The normalised number after the last `####`, or None."""
    found = _STRICT.findall(generation)
    return normalize_number(found[-1]) if found else None


def extract_flexible(generation: str) -> str | None:
    """The normalised last number in the text, or None."""
    found = _ANY.findall(generation)
    return normalize_number(found[-1]) if found else None


@dataclass
class MathWordTask(Task):
    """GSM8K-format word problems (built-in math-word, a GSM8K file or saved folder via `path`,
    or a hub dataset / dataset folder via `dataset`)."""

    name = "math-word"
    # 2: the default chat prompt is the training rows' (no answer-format line); 3: wrong answers
    # are categorised (truncated, arithmetic_error, intermediate_answer)
    version = "3"
    description = "GSM8K-format word problems; accuracy of the '#### N' answer (strict) and last number (flexible)."
    data_source = "builtin:math-word, or GSM8K (question/answer) from a file, a saved folder or a dataset (openai/gsm8k)"
    metrics = (
        Metric("accuracy_strict", True, description="answer after '####' equals the reference"),
        Metric("accuracy_flexible", True, description="last number in the answer equals the reference"),
    )
    prompt_variants = ("zero-shot", "few-shot", "chain-of-thought")
    styles = ("chat", "completion")
    splits = ("train", "test")
    default_split = "test"
    fewshot_split = "train"
    generation = GenerationSettings(max_new_tokens=256)

    path: str | None = None  # a GSM8K-style file (question, answer) or a save_to_disk folder instead of the built-in data
    prompt_format: str = "training"  # "training": as the training rows ask; "benchmark": + answer-format line
    dataset: str | None = None  # a hub dataset id (openai/gsm8k) or a local dataset folder
    subset: str | None = None  # the dataset's config; default: "main" for gsm8k, else its only one
    split_map: dict[str, str] = field(default_factory=dict)  # task split -> dataset split, e.g. {test: validation}
    revision: str | None = None  # hub branch, tag or commit of `dataset`

    def __post_init__(self) -> None:
        if self.prompt_format not in PROMPT_FORMATS:
            raise EvalError(f"task 'math-word': prompt_format must be one of {', '.join(PROMPT_FORMATS)}, got "
                            f"'{self.prompt_format}'{did_you_mean(self.prompt_format, PROMPT_FORMATS)}")

    def load(self, split: str | None = None) -> list[Sample]:
        split = split or self.default_split
        if self.path is None and self.dataset is None:
            from tunelab.data.builtin import load_problems

            rows = load_problems("math-word", split)
            self.record_data(split, {"source": "builtin:math-word", "split": split, "rows": len(rows)})
            return [Sample(f"math-word/{split}/{r['index']}", _fields(r)) for r in rows]
        from tunelab.evaluation.hub import load_benchmark

        theirs = self.split_map.get(split, split)
        data = load_benchmark(self.name, path=self.path, dataset=self.dataset, subset=self.dataset_config(), split=theirs,
                              revision=self.revision)
        self.record_data(split, data.provenance)
        if data.provenance["source"] == "file":  # ids as always: the row's place in the file
            ids = data.origins
        else:
            ids = [f"{data.name}/{theirs}/{i}" for i in data.index]
        return [Sample(i, _fields(r, o)) for i, r, o in zip(ids, data.rows, data.origins, strict=True)]

    def dataset_config(self) -> str | None:
        """The dataset config read: `subset`, else GSM8K's `main`."""
        if self.subset or self.dataset is None:
            return self.subset
        return "main" if Path(self.dataset).name.lower() == "gsm8k" else None

    def styles_for(self, variant: str) -> tuple[str, ...]:
        # The completion prompt ("Question: ... Answer:") has no place for the step-by-step line.
        return ("chat",) if variant == "chain-of-thought" else self.styles

    def build_prompt(self, sample: Sample, opts: PromptOptions, shots: Sequence[Sample] = ()) -> Prompt:
        shots = shots if opts.variant == "few-shot" else ()
        if opts.style == "completion":
            parts = [f"Question: {s.data['question']}\nAnswer: {s.data['answer']}\n\n" for s in shots]
            return Prompt(text="".join(parts) + f"Question: {sample.data['question']}\nAnswer:")
        messages: list[dict[str, str]] = []
        for s in shots:
            messages += [{"role": "user", "content": self.user_message(s, opts)},
                         {"role": "assistant", "content": s.data["answer"]}]
        messages.append({"role": "user", "content": self.user_message(sample, opts)})
        return Prompt(messages=messages)

    def user_message(self, sample: Sample, opts: PromptOptions) -> str:
        """The chat prompt's question for one sample, in this task's `prompt_format`."""
        from tunelab.data.builtin import math_instruction

        text = math_instruction(sample.data)
        if opts.variant == "chain-of-thought":
            return f"{text}\n\n{COT_SUFFIX}"
        return f"{text}\n\n{ANSWER_FORMAT}" if self.prompt_format == "benchmark" else text

    def generation_settings(self, opts: PromptOptions) -> GenerationSettings:
        # Completion style continues a "Question: ... Answer:" list; stop before the next question.
        if opts.style == "completion":
            return GenerationSettings(max_new_tokens=256, stop=("\n\nQuestion:", "\nQuestion:"))
        return self.generation

    def score(self, sample: Sample, generations: list[str], ctx: ScoringContext) -> SampleScore:
        want = sample.data["final"]
        per_gen = []
        for g in generations:
            strict, flexible = extract_strict(g), extract_flexible(g)
            ok = strict == want
            verdict, wrong = categorize(g, strict, flexible, want, sample.data.get("answer", ""), normalize_number)
            detail = f"expected {want}, got {strict if strict is not None else flexible}"
            rec = {"passed": ok, "verdict": verdict, "strict": strict, "flexible": flexible,
                   "detail": detail + (f"; wrong: {'; '.join(wrong)}" if wrong else "")}
            if wrong:
                rec["wrong_equations"] = wrong
            per_gen.append(rec)
        n = max(1, len(per_gen))
        return SampleScore(
            values={"accuracy_strict": sum(g["strict"] == want for g in per_gen) / n,
                    "accuracy_flexible": sum(g["flexible"] == want for g in per_gen) / n},
            generations=per_gen,
            extra={"reference": want},
        )


def _fields(row: dict, origin: str | None = None) -> dict:
    """question, answer (worked solution) and the normalised final number of a GSM8K row."""
    where = f"{origin}: " if origin else ""
    if "question" not in row or "answer" not in row:
        raise EvalError(f"{where}a GSM8K row needs 'question' and 'answer' fields; got {sorted(row)}")
    final = extract_strict(row["answer"]) if "final" not in row else normalize_number(str(row["final"]))
    if final is None:
        raise EvalError(f"{where}no final answer ('#### N') in a GSM8K row: {row['answer'][-80:]!r}")
    return {"question": row["question"], "answer": row["answer"], "final": final}


TASKS = (MathWordTask,)
