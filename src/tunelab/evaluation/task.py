"""The task contract: what every evaluation task declares and the small pure functions it provides.

A task is data plus small pure functions. Implementing one = one module in
`tunelab/evaluation/tasks/` that defines the task class(es) and lists them in a module-level
`TASKS = (MyTask,)` tuple (the registry discovers it; see `registry.py`), one test fixture and
one row in `docs/tasks.md`. Nothing may run at import: read data in `load`, never at module level.

How the runner (the evaluation engine, `engine.py`) drives a task, for one model variant:

1. `task = get_task(name, **options)`: the class is instantiated with its options (tasks are
   dataclasses; their fields are the options, e.g. `split`, `dataset`; all need defaults).
2. `samples = task.load(split)[:limit]` — a list of `Sample` with stable, unique `id`s. Every
   variant sees the same samples in the same order; ids key the per-sample cache and pair
   results across variants, so they must not depend on anything but the data.
3. `opts = PromptOptions(variant=..., style=..., num_fewshot=...)`, validated against the task's
   `prompt_variants` and `styles_for(variant)` (the styles that variant can be built in, default
   `styles`; `eval.style: auto` takes the first, so `base+cot` on a completion-style code task
   is asked in chat); `shots = task.fewshot(opts)` once (only read when
   `opts.variant == "few-shot"`; the default takes the first `num_fewshot` samples of
   `fewshot_split`). Shots are chosen deterministically and must never be scored items: the
   runner refuses to evaluate `fewshot_split` itself, and any shot whose id is among the
   evaluated samples; their ids go into the summary (`fewshot_ids`) and the cache key.
4. For each sample: `prompt = task.build_prompt(sample, opts, shots)` (pure), then the backend
   generates `settings.n` continuations with `settings = task.generation_settings(opts)`.
   Generations are the model's new text only (never the prompt), cut before the first stop
   sequence (the stop sequence itself is dropped). Backends always also stop on the eos token
   and, for chat prompts, on the chat template's end-of-turn marker (e.g. `<|im_end|>`), so
   tasks list only task-specific stops (e.g. "\\ndef " for completion-style code).
5. `task.score_batch(samples, generations, ctx)` -> one `SampleScore` per sample. Tasks get the
   answers, not the raw text: the runner strips a leading reasoning block (`<think>...</think>`,
   `generation.strip_reasoning`) from every generation before any scoring (score_batch,
   corpus metrics, paired re-scoring); samples.jsonl keeps the raw generation. The default
   calls `score(sample, gens, ctx)` for each; override it to batch (parallel sandbox workers,
   one batched judge call). Scoring must be a pure function of (sample, generations) plus the
   handles in `ctx`: no model, no global state, deterministic for deterministic handles.
6. Aggregation (the runner, never the task): each `Metric` with `aggregation="mean"` is the mean
   over samples of `SampleScore.values[metric.name]`, skipping `None` (= not applicable to this
   sample, e.g. REdit of a failed repair), with a seeded bootstrap CI (`stats.py`). A metric
   with `aggregation="corpus"` is `task.corpus_score(name, samples, generations, scores)` (e.g.
   corpus chrF), CI by resampling samples; where `task.corpus_stats(...)` gives per-sample
   statistics whose sum the metric is a function of, a bootstrap may sum them instead of calling
   `corpus_score` per resample (same values: `stats.bootstrap_ci_summed`). Failure categories
   are counts of per-generation `verdict`s.
   `task.report(records)` may add extra tables (e.g. the judge's problem x program table).

Tasks with `mode = "model"` (loss/perplexity) do not generate: the runner calls
`task.score_model(samples, model, tokenizer, enable_thinking)` instead of steps 3-5 and needs an in-process model.

Code-executing tasks set `executes_code = True`. The runner refuses to run them unless the user
opted in (`eval.allow_code_execution` / `--allow-code-execution`); when allowed it creates ONE
sandbox per eval with `tunelab.evaluation.sandbox.create_sandbox(eval_cfg)` and passes it as
`ctx.sandbox` (the runner never calls its methods besides `close()` if it has one, and records
its `isolation` attribute, if any, in every summary). Tasks with `executes_code = False` get
`ctx.sandbox = None`.

Scoring generations made elsewhere (`tunelab eval --task NAME --samples FILE.jsonl`): rows with
`task_id` + `completion` are grouped by `task_id` (in file order; several per task allowed),
matched to `Sample.id` of `task.load(task.default_split)` (fallback: all splits via
`task.load(None)`), and scored with `score_batch` exactly as above. Each per-generation dict is
written as one output row with `task_id`, `sample_index` and its fields, so code tasks must put
`passed` (bool), `verdict` (str) and `detail` (str) in it. Completions are used as they are
(completion style: the text after the prompt; the task decides how to join it to the prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from tunelab.errors import EvalError
from tunelab.generation.types import GenerationSettings, Prompt

if TYPE_CHECKING:
    from tunelab.evaluation.stats import SummedStatistic

# The verdicts code tasks use (per generation); other tasks add their own short snake_case words
# ("correct", "wrong_answer", "no_answer", "ok", ...). Failure tables count these strings.
CODE_VERDICTS = ("passed", "failed", "wrong_answer", "runtime_error", "syntax_error", "timeout", "no_code")

PROMPT_VARIANTS = ("zero-shot", "few-shot", "chain-of-thought")
STYLES = ("chat", "completion")


@dataclass(frozen=True)
class Sample:
    """One evaluation item.

    Attributes:
        id: stable and unique within the task's data (e.g. HumanEval's `task_id`).
        data: the raw record (question, reference, tests, entry point, ...); JSON-serialisable.
    """

    id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class PromptOptions:
    """How the user asked prompts to be built (validated by the runner against the task)."""

    variant: str = "zero-shot"  # one of PROMPT_VARIANTS that the task lists in prompt_variants
    style: str = "chat"  # "chat" or "completion", one of the task's styles
    num_fewshot: int = 3


@dataclass(frozen=True)
class Metric:
    """A metric a task reports.

    Attributes:
        name: key in `SampleScore.values` and in summary.json (e.g. "accuracy", "pass@1").
        higher_is_better: which way is better (compare and report colour deltas by it).
        aggregation: "mean" (mean over samples of the per-sample values, None skipped) or
            "corpus" (`Task.corpus_score`).
        description: one line for docs and reports.
    """

    name: str
    higher_is_better: bool = True
    aggregation: Literal["mean", "corpus"] = "mean"
    description: str = ""


@dataclass
class SampleScore:
    """The score of one sample.

    Attributes:
        values: metric name -> value for every "mean" metric of the task (None = not applicable
            to this sample; it is then left out of that metric's mean and CI).
        generations: one dict per generation, in generation order. Always has "verdict" (str);
            code tasks also "passed" (bool) and "detail" (str, e.g. the failing test or the
            exception type); anything else JSON-serialisable may be added (extracted answer...).
        extra: per-sample JSON-serialisable details kept in samples.jsonl.
    """

    values: dict[str, float | None]
    generations: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    """A generation backend (`tunelab.generation`); a judge is one too."""

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[list[str]]:
        """`settings.n` generations per prompt, new text only, cut at stop sequences."""
        ...


@dataclass
class ScoringContext:
    """Handles a task may use while scoring.

    Attributes:
        sandbox: the code sandbox (only for `executes_code` tasks, after the user opted in).
        judge: a backend for judged tasks (e.g. hint rubrics), else None.
    """

    sandbox: Any | None = None
    judge: Generator | None = None


class Task:
    """Base class of every task. Subclasses are dataclasses whose fields are their options.

    Class attributes to set: `name`, `version` (bump when prompts, data or scoring change, so
    cached samples are not reused), `description`, `data_source` (human-readable, e.g.
    "builtin:math-word"), `metrics`, `executes_code`, `prompt_variants` (first = default),
    `styles` (first = default), `splits`, `default_split`, `fewshot_split`, `generation`.
    `metrics` may be a property where it depends on options (e.g. pass@k for each k <= n).
    Methods to implement: `load`, `build_prompt`, `score` (or `score_batch`); optionally
    `generation_settings`, `fewshot`, `styles_for`, `corpus_score`, `corpus_stats`, `report`.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    data_source: ClassVar[str] = ""
    metrics: ClassVar[tuple[Metric, ...]] = ()
    executes_code: ClassVar[bool] = False
    mode: ClassVar[Literal["generate", "model"]] = "generate"
    prompt_variants: ClassVar[tuple[str, ...]] = ("zero-shot",)
    styles: ClassVar[tuple[str, ...]] = ("chat",)
    splits: ClassVar[tuple[str, ...]] = ("test",)
    default_split: ClassVar[str] = "test"
    fewshot_split: ClassVar[str | None] = None
    generation: ClassVar[GenerationSettings] = GenerationSettings()

    # ---- data and prompts -------------------------------------------------------------------

    def load(self, split: str | None = None) -> list[Sample]:
        """The task's samples of `split` (None = `default_split`), in a fixed order."""
        raise NotImplementedError

    def fewshot(self, opts: PromptOptions) -> list[Sample]:
        """Few-shot examples: the first `opts.num_fewshot` samples of `fewshot_split`."""
        if self.fewshot_split is None:
            raise EvalError(f"task '{self.name}' has no few-shot examples")
        return self.load(self.fewshot_split)[: opts.num_fewshot]

    def build_prompt(self, sample: Sample, opts: PromptOptions, shots: Sequence[Sample] = ()) -> Prompt:
        """The prompt for one sample (pure)."""
        raise NotImplementedError

    def styles_for(self, variant: str) -> tuple[str, ...]:
        """The styles `variant` can be built in (first = the default for `eval.style: auto`); a
        style the task has but not for this variant is refused with these listed."""
        return self.styles

    def generation_settings(self, opts: PromptOptions) -> GenerationSettings:
        """Generation settings for these prompt options (e.g. more tokens for chain-of-thought)."""
        return self.generation

    # ---- scoring ----------------------------------------------------------------------------

    def score(self, sample: Sample, generations: list[str], ctx: ScoringContext) -> SampleScore:
        """Score one sample from its generations (pure apart from the handles in ctx)."""
        raise NotImplementedError

    def score_batch(
        self, samples: Sequence[Sample], generations: Sequence[list[str]], ctx: ScoringContext
    ) -> list[SampleScore]:
        """Score many samples; override to parallelise. Same order as `samples`."""
        return [self.score(s, g, ctx) for s, g in zip(samples, generations, strict=True)]

    def corpus_score(
        self, metric: str, samples: Sequence[Sample], generations: Sequence[list[str]],
        scores: Sequence[SampleScore],
    ) -> float:
        """Value of a corpus-level metric over these samples (e.g. corpus chrF of the first
        generations, or total loss / total tokens from `scores[i].extra`). Called on bootstrap
        resamples too, so it must depend only on its arguments."""
        raise NotImplementedError(f"task '{self.name}' has no corpus metric '{metric}'")

    def corpus_stats(
        self, metric: str, samples: Sequence[Sample], generations: Sequence[list[str]],
        scores: Sequence[SampleScore],
    ) -> SummedStatistic | None:
        """A corpus metric as per-sample rows and a score of their sum, where it is one (corpus
        BLEU/chrF of n-gram counts), so bootstraps sum resampled rows instead of calling
        `corpus_score` per resample; its values must equal `corpus_score`'s. None (the default):
        bootstraps call `corpus_score`."""
        return None

    def score_model(self, samples: Sequence[Sample], model: Any, tokenizer: Any,
                    enable_thinking: bool | None = None) -> list[SampleScore]:
        """For `mode = "model"` tasks: score samples with the model directly (no generation),
        rendering chats with the template's thinking switch as training did (`eval.enable_thinking`)."""
        raise NotImplementedError

    def report(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Extra tables for summary.json from the samples.jsonl records (default: none)."""
        return {}

    # ---- where the items came from ------------------------------------------------------------

    def record_data(self, split: str, provenance: dict[str, Any]) -> None:
        """Note where `load(split)` read its items (dataset id, config, split, requested
        revision, resolved commit / fingerprint, file hash: `evaluation.hub`)."""
        self.__dict__.setdefault("_data_info", {})[split] = provenance

    def data_info(self) -> dict[str, Any] | None:
        """{split: provenance} of every split this instance loaded (the summary's `data`), or
        None where the task records none."""
        return dict(self.__dict__.get("_data_info") or {}) or None

    def bind_run(self, run_dir: Any, exp: Any) -> Task:
        """Give the task the run it evaluates (its directory and experiment); returns the task.
        Tasks that can read the run's own data (e.g. `similarity` with `dataset: run`: the
        run's held-out rows) keep it; the others ignore it."""
        self._run = (run_dir, exp)
        return self

    # ---- description ------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The instance's option values (its dataclass fields), for summaries and cache keys."""
        fields = getattr(self, "__dataclass_fields__", {})
        return {k: getattr(self, k) for k in fields}

    def metric(self, name: str) -> Metric:
        """The declared metric called `name`."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise EvalError(f"task '{self.name}' has no metric '{name}'; it has: "
                        f"{', '.join(m.name for m in self.metrics)}")
