"""The experiment config's sections: pydantic models with defaults, bounds and descriptions.

Every section forbids unknown keys, so a typo fails before any work starts. The descriptions are
the user-facing reference (`tunelab config reference` renders them to docs/config.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tunelab.errors import did_you_mean


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class ModelConfig(Section):
    """Which base model to load and how."""

    name: str = Field(description="Hub id (Qwen/Qwen2.5-0.5B), local path, or builtin:NAME.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = float32 on CPU, bfloat16 on GPUs that support it."
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    trust_remote_code: bool = Field(False, description="Run model code from the hub (off unless asked).")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    load_in_4bit: bool = Field(False, description="QLoRA: 4-bit base weights (CUDA + bitsandbytes only).")


class LoraConfig(Section):
    """LoRA adapter settings. `target_modules: auto` picks the preset for the model family."""

    enabled: bool = Field(True, description="false = full fine-tuning of every parameter.")
    r: int = Field(16, ge=1, le=1024)
    alpha: float = Field(32.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: Literal["auto", "all-linear", "attention"] | list[str] = "auto"
    bias: Literal["none", "all", "lora_only"] = "none"
    use_rslora: bool = False
    trainable_tokens: list[str] = Field(
        default_factory=list,
        description="Special tokens whose embedding rows are trained too (PEFT trainable tokens), e.g. "
        "['<|im_start|>', '<|im_end|>'] for a base model that never saw its chat template's tokens and so never "
        "learns to stop.",
    )


class SourceConfig(Section):
    """One data source. Exactly one of `path`, `hub` or `builtin` names where the rows come from."""

    name: str | None = Field(None, description="Label used in per-source metrics; defaults to the file/dataset name.")
    path: str | None = Field(None, description="Local .jsonl/.json/.csv/.parquet file (relative to the config).")
    hub: str | None = Field(None, description="Hugging Face dataset id, loaded with `datasets`.")
    builtin: str | None = Field(None, description="Name of a dataset shipped with tunelab.")
    subset: str | None = Field(None, description="Hub dataset config name.")
    split: str = Field("train", description="Hub/builtin split to read.")
    format: Literal["auto", "alpaca", "messages", "prompt_completion"] = "auto"
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Map tunelab's field names to yours, e.g. {instruction: question, output: answer}.",
    )
    weight: float = Field(1.0, gt=0, description="Relative sampling weight when mixing sources.")
    max_examples: int | None = Field(None, ge=1)
    system_prompt: str | None = None

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        given = [k for k in ("path", "hub", "builtin") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                f"a data source needs exactly one of path, hub or builtin (got {given or 'none'})"
            )
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.path:
            return Path(self.path).stem
        return (self.hub or self.builtin or "data").split("/")[-1]


class SplitConfig(Section):
    """Train/validation/test split by ratio of the mixed pool (ignored for explicit val/test files)."""

    val: float = Field(0.1, ge=0.0, lt=1.0)
    test: float = Field(0.1, ge=0.0, lt=1.0)
    group_by: str | None = Field(
        None, description="Field of the raw rows (e.g. problem_id, source) whose rows stay in one split, across sources.",
    )

    @model_validator(mode="after")
    def _leave_train(self) -> SplitConfig:
        if self.val + self.test >= 1.0:
            raise ValueError(f"val + test must be below 1 (got {self.val} + {self.test})")
        return self


class DataConfig(Section):
    """Where examples come from, how they are mixed, split and tokenized."""

    sources: list[SourceConfig] = Field(min_length=1)
    val: list[SourceConfig] | None = Field(None, description="Explicit validation sources (skip ratio split).")
    test: list[SourceConfig] | None = Field(None, description="Explicit test sources (skip ratio split).")
    split: SplitConfig = Field(default_factory=SplitConfig)
    max_seq_len: int = Field(512, ge=8)
    truncation: Literal["right", "left", "drop"] = Field(
        "right", description="right/left cut the sequence; drop removes over-long examples."
    )
    train_on_prompt: bool = Field(False, description="Also put loss on system/user tokens.")
    packing: bool = Field(False, description="Pack examples into max_seq_len rows, attention kept per example.")
    chat_template: Literal["auto", "chatml", "plain"] = Field(
        "auto", description="auto = the tokenizer's template, else chatml if its tokens exist, else plain."
    )


class EarlyStoppingConfig(Section):
    """Stop when validation loss has not improved for `patience` evaluations."""

    patience: int | None = Field(None, ge=1, description="Evaluations without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0.0)


class GenerationMetricConfig(Section):
    """Optional generation metric during training: at every evaluation, greedy replies to the
    first `samples` validation prompts are scored against their references and logged beside
    the losses (train/metrics.jsonl, split val). Costs generation time; off by default."""

    samples: int = Field(0, ge=0, description="Validation prompts to generate for; 0 = off.")
    metric: Literal["chrf", "bleu"] = Field("chrf", description="Mean sentence chrF, or corpus BLEU (sacrebleu).")
    max_new_tokens: int = Field(64, ge=1)


class TrainConfig(Section):
    """The optimisation loop."""

    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; overrides epochs.")
    batch_size: int = Field(8, ge=1, description="Micro-batch size per process.")
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2e-4, gt=0, le=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int | None = Field(None, ge=0)
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    max_grad_norm: float | None = Field(1.0, gt=0)
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(50, ge=1)
    save_every: int = Field(50, ge=1)
    keep_last: int | None = Field(2, ge=1, description="Checkpoints kept besides the best; null keeps all.")
    keep_best: bool = True
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    eval_batch_size: int | None = Field(None, ge=1)
    max_eval_examples: int | None = Field(None, ge=1, description="Cap on val/test examples scored per evaluation.")
    gradient_checkpointing: bool = False
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto",
        description="Autocast of the forward pass with float32 master weights. auto = bf16/fp16 on CUDA with that "
        "model.dtype, none on CPU; bf16 on a CPU with AVX512-BF16 or AMX trains faster than float32.",
    )
    compile: bool = False
    num_workers: int = Field(0, ge=0)
    generation_metric: GenerationMetricConfig = Field(default_factory=GenerationMetricConfig)


class TrackingConfig(Section):
    """Where metrics go besides the run directory (optional extras: pip install 'tunelab[tracking]')."""

    tensorboard: bool = False
    mlflow: bool = False
    mlflow_tracking_uri: str | None = None


class EndpointConfig(Section):
    """An OpenAI-compatible server (vLLM serve, llama.cpp, TGI, OpenAI)."""

    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1")
    model: str | None = Field(None, description="Model name on the server; default: the variant's ref.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key.")
    max_concurrency: int = Field(4, ge=1, description="Requests in flight at once.")
    max_retries: int = Field(3, ge=0)
    timeout_s: float = Field(120.0, gt=0)


class JudgeConfig(Section):
    """The judge of judged tasks (hint-judge): a model ref of this run, or an endpoint."""

    model: str | None = Field(
        None, description="A ModelRef (base, final, step-N, adapter folder) or model name; `rules` = the rule-based "
                          "stand-in hint judge for offline studies (no model; the reports say its scores are no measure).")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint instead of a local model.")
    endpoint_model: str | None = Field(None, description="Model name on that endpoint.")
    api_key_env: str = "OPENAI_API_KEY"
    price_per_million_tokens: float | None = Field(
        None, ge=0.0, description="Price of the endpoint judge per million tokens (prompt and completion, as the server "
                                  "reports them), in report.currency; adds the judge's tokens to a run's cost.")


class SelectionConfig(Section):
    """Best-checkpoint selection: chosen on one split, reported on another."""

    task: str | None = Field(None, description="Task whose metric picks the checkpoint (default: first of eval.tasks).")
    metric: str | None = Field(None, description="Metric of that task (default: its first).")
    split: str = Field("val", description="Split the checkpoint is chosen on; val of a task without one is carved from its train items.")
    report_split: str = Field("test", description="Split the chosen checkpoint is reported on.")
    carve_fraction: float = Field(
        0.25, gt=0.0, lt=1.0, description="Share of a task's train items carved off as its val split when it has none (kept out of training).",
    )
    alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="A checkpoint is named best only if it beats every other candidate at this level (paired tests).",
    )
    allow_train_split: bool = Field(
        False, description="Allow split: train, i.e. choosing on training items (the report then says so).",
    )


class EvalConfig(Section):
    """Evaluation: which variants, which tasks, how prompts are built and generated."""

    tasks: list[str] = Field(default_factory=list, description="Task names (see docs/tasks.md).")
    models: list[str] = Field(
        default_factory=lambda: ["base", "final"], description="ModelRefs or patterns: base, final, best, step-*."
    )
    allow_code_execution: bool = Field(False, description="Let code tasks run model-written code in the sandbox.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N items of each task.")
    split: str | None = Field(None, description="Task split to evaluate (default: each task's own).")
    backend: Literal["transformers", "openai", "vllm"] = "transformers"
    batch_size: int = Field(16, ge=1, description="Prompts per generation batch.")
    prompt: Literal["default", "zero-shot", "few-shot", "chain-of-thought"] = Field(
        "default", description="Prompt variant; default = each task's first."
    )
    style: Literal["auto", "chat", "completion"] = Field(
        "auto", description="auto = each task's default style for the prompt variant.")
    num_fewshot: int = Field(3, ge=0)
    enable_thinking: bool | None = Field(
        None, description="Thinking on/off for chat templates that have the switch (Qwen3); null = the template's "
        "default. Training renders its chats with the same value.")
    max_new_tokens: int | None = Field(None, ge=1, description="Override every task's max_new_tokens.")
    n: int | None = Field(None, ge=1, description="Generations per prompt (pass@k needs n >= k).")
    temperature: float | None = Field(None, ge=0.0, description="0 = greedy; default: the task's.")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int = 0
    bootstrap_resamples: int = Field(1000, ge=10)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    task_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-task options, e.g. {similarity: {dataset: my.jsonl}}."
    )
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    shared_cache: bool = Field(
        True, description="Reuse records other runs computed with the same model, task, items and settings (the shared "
                          "eval cache under $TUNELAB_CACHE/eval; TUNELAB_SHARED_CACHE=0 also switches it off).")


class CompareConfig(Section):
    """Base-vs-tuned views: next-token distributions, side-by-side generations, paired tests."""

    variants: list[str] = Field(
        default_factory=lambda: ["base", "final"],
        description="ModelRefs to compare: this run's base/final/best/step-N, or another run's (RUN_DIR:final, "
                    "labelled RUN:final, prompted with its own run's template); the first is the reference every "
                    "other is compared with.",
    )
    prompts: list[str] = Field(
        default_factory=list, description="User messages to compare on; default: the first n_prompts of the test split."
    )
    prompt_ids: list[str] = Field(
        default_factory=list,
        description="Examples to compare on by id (a row's `id`, e.g. `ts-instruct/test/0`, or its origin, e.g. `org/data[17]`), found in the run's test, "
                    "val or train split, with their reference replies; after `prompts`.",
    )
    n_prompts: int = Field(4, ge=0, description="Prompts taken from the run's test split when `prompts` and `prompt_ids` are empty.")
    top_k: int = Field(10, ge=1, description="Tokens shown per variant in the next-token view.")
    max_new_tokens: int = Field(128, ge=1, description="Length of the side-by-side generations (greedy, same for all).")
    near_duplicate: float = Field(
        0.8, gt=0.0, le=1.0, description="Character 5-gram Jaccard similarity at which a training prompt counts as a near duplicate."
    )
    baselines: list[Literal["zero-shot", "few-shot", "chain-of-thought"]] = Field(
        default_factory=list,
        description="Prompting baselines of the base model, run on every eval task that supports them.",
    )
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="Significance level of the paired tests.")
    power: float = Field(0.8, gt=0.0, lt=1.0, description="Power for the minimal detectable difference.")
    permutation_resamples: int = Field(10000, ge=100, description="Sign flips of the permutation test (exact below 2^16).")


class SearchRange(Section):
    """A numeric range Optuna samples one key from."""

    low: float
    high: float
    log: bool = Field(False, description="Sample on a log scale (learning rates).")
    step: float | None = Field(None, gt=0, description="Grid step inside the range; None = continuous.")
    integer: bool = Field(False, description="Integer values (LoRA r, batch size).")

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"low must be below high (got {self.low} and {self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("a range is either log or stepped, not both")
        return self


# Trade-off columns an objective may name besides TASK/METRIC; all are better when lower.
# device_seconds: GPU seconds of training on a GPU, else the training process's CPU seconds;
# cpu_seconds and train_tokens: as named. Unlike wall_time_s, other work on the machine (trials
# side by side) does not inflate them. All are per run, times its number of processes.
COST_OBJECTIVES = ("best_val_loss", "device_seconds", "cpu_seconds", "train_tokens", "wall_time_s", "peak_memory_mb",
                   "trainable_params", "device_hours", "cost")
SweepCost = Literal["device_seconds", "cpu_seconds", "train_tokens", "wall_time_s", "peak_memory_mb", "trainable_params",
                    "device_hours", "cost"]


class Objective(Section):
    """One value the study optimises, read from the trial's trade-off row when it finishes."""

    metric: str = Field(description="TASK/METRIC of the tuned variant, or best_val_loss, device_seconds, cpu_seconds, "
                                    "train_tokens, wall_time_s, peak_memory_mb, trainable_params, device_hours, cost.")
    direction: Literal["minimize", "maximize"] | None = Field(
        None, description="Which way is better; None = minimize for losses and costs (a task metric must say).")

    @model_validator(mode="after")
    def _direction(self) -> Objective:
        if self.direction is None:
            if self.metric not in COST_OBJECTIVES:
                raise ValueError(f"objective {self.metric!r}: set direction (maximize or minimize)")
            self.direction = "minimize"
        return self


class OptunaConfig(Section):
    """`sweep.search: optuna`: sampled trials, their objectives, and pruning of trials that fall behind."""

    sampler: Literal["tpe", "random"] = Field("tpe", description="TPE (learns from finished trials) or random.")
    n_trials: int = Field(10, ge=1, description="Settings to try in all (a re-run counts the ones already tried).")
    space: dict[str, SearchRange] = Field(
        default_factory=dict, description="Dotted key -> numeric range, e.g. {train.lr: {low: 1e-5, high: 1e-2, log: true}}; "
                                          "sweep.grid lists are categorical choices.")
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(metric="best_val_loss")], min_length=1,
        description="One or several objectives (several: a Pareto study).")
    enqueue: list[dict[str, Any]] = Field(default_factory=list, description="Settings to try first, e.g. a known-good one.")
    pruner: Literal["none", "median", "halving"] = Field(
        "median", description="Stop trials whose validation metric falls behind: median of finished trials, or "
                              "successive halving.")
    prune_metric: str = Field("loss", description="Key of the val rows of train/metrics.jsonl the pruner watches.")
    prune_direction: Literal["minimize", "maximize"] = "minimize"
    warmup_steps: int = Field(0, ge=0, description="No pruning before this training step.")
    startup_trials: int = Field(1, ge=0, description="Median pruner: trials that must finish before it prunes.")
    seed: int | None = Field(None, description="Sampler seed; None = the experiment's seed.")


_LABEL = re.compile(r"^[A-Za-z0-9._+-]+$")
_SWEEP_VARIANT = re.compile(r"^(?:[A-Za-z0-9._=,+-]+:)?(?:base|final|best|step-\d+)$")


class SweepConfig(Section):
    """Trials over config keys (a grid, zipped lists and seeds, or an Optuna search), run serially,
    side by side on this machine's devices, or as Ray tasks."""

    search: Literal["grid", "optuna"] = Field(
        "grid", description="grid: the listed trials (grid x zip x seeds); optuna: sampled (see sweep.optuna).")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="Dotted key -> values; every combination is a trial, e.g. {lora.r: [8, 16]}."
    )
    zip: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Dotted key -> values of equal length, taken together (r=8 with alpha=16, ...); crossed with grid.",
    )
    seeds: list[int] = Field(default_factory=list, description="Repeat every trial with these seeds; empty = the config's seed.")
    labels: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Swept key -> one short name per value, used in trial folder names instead of key=value, e.g. "
                    "{data.sources: [deep, diverse]} gives trials/deep and trials/diverse. A label on one key of "
                    "sweep.zip names its whole element (the zip's other keys leave the name).",
    )
    optuna: OptunaConfig = Field(default_factory=OptunaConfig)
    stages: list[Literal["data", "train", "eval", "compare", "report"]] = Field(
        default_factory=lambda: ["data", "train", "eval"], description="Stages of `tunelab run` each trial runs."
    )
    executor: Literal["local", "ray"] = Field(
        "local", description="local: trial processes on this machine; ray: one Ray task per trial.")
    max_concurrent: int | None = Field(
        None, ge=1, description="Trials at once; None = local: one per GPU group (1 on CPU), ray: as many as the cluster fits.")
    gpus_per_trial: int = Field(1, ge=0, description="GPUs each trial gets (CUDA_VISIBLE_DEVICES locally, num_gpus on Ray).")
    cpus_per_trial: int | None = Field(
        None, ge=1, description="CPU cores each trial gets; None = local: the cores split between concurrent trials, ray: 1.")
    ray_address: str | None = Field(
        None, description="Ray cluster to join (auto, ray://HOST:10001); None = start a local one for the sweep.")
    metric: str | None = Field(
        None, description="TASK/METRIC of the Pareto plot (default: first eval task's first metric, else best val loss)."
    )
    cost: SweepCost = Field(
        "device_seconds", description="Cost axis of the Pareto plot: device_seconds (GPU seconds of training on a GPU, "
        "else CPU seconds of the training process; machine load does not decide it), cpu_seconds, train_tokens, "
        "wall_time_s, peak_memory_mb, trainable_params, device_hours or cost (money: report.price_per_device_hour, "
        "plus an endpoint judge's eval.judge.price_per_million_tokens)."
    )
    compare: list[str] = Field(
        default_factory=list,
        description="Variants compared across trials once they finish, into SWEEP_DIR/compare/ and the sweep "
                    "report (side by side, next tokens, paired tests from each trial's eval results): final, best "
                    "or step-N = that variant of every finished trial; base = the base model (one, or one per "
                    "trial when trials differ in it); TRIAL:VARIANT = one trial's. The first is the reference; "
                    "the `compare` section's settings apply. Empty: no comparison across trials.",
    )
    compare_pairs: Literal["all", "reference"] = Field(
        "all", description="Paired tests across trials: all = every two compared variants; reference = each "
                           "against the first only.")

    @field_validator("compare")
    @classmethod
    def _compare_refs(cls, refs: list[str]) -> list[str]:
        for r in refs:
            if not _SWEEP_VARIANT.match(r):
                raise ValueError(f"'{r}' is not a trial variant: write base, final, best, step-N (N a number) "
                                 "or TRIAL:VARIANT (a trial's folder name)")
        if len(set(refs)) < len(refs):
            raise ValueError(f"a variant is listed twice: {refs}")
        return refs

    @model_validator(mode="after")
    def _same_lengths(self) -> SweepConfig:
        lengths = {k: len(v) for k, v in self.zip.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"sweep.zip lists must have the same length (got {lengths})")
        both = set(self.grid) & set(self.zip)
        if both:
            raise ValueError(f"keys in both sweep.grid and sweep.zip: {sorted(both)}")
        self._check_labels()
        if self.search == "optuna":
            if self.zip or self.seeds:
                raise ValueError("sweep.zip and sweep.seeds are for search: grid; an Optuna search samples "
                                 "sweep.grid (choices) and sweep.optuna.space (ranges)")
            both = set(self.grid) & set(self.optuna.space)
            if both:
                raise ValueError(f"keys in both sweep.grid and sweep.optuna.space: {sorted(both)}")
        return self


    def _check_labels(self) -> None:
        swept = {**self.grid, **self.zip}
        for key, labels in self.labels.items():
            if key not in swept:
                raise ValueError(f"sweep.labels.{key}: not a key of sweep.grid or sweep.zip"
                                 f"{did_you_mean(key, list(swept))}; swept keys: {', '.join(swept) or 'none'}")
            if len(labels) != len(swept[key]):
                raise ValueError(f"sweep.labels.{key}: {len(labels)} label(s) for {len(swept[key])} value(s); "
                                 "give one label per value, in the same order")
            for lab in labels:
                if not _LABEL.match(str(lab)):
                    raise ValueError(f"sweep.labels.{key}: '{lab}' is not a folder name: use letters, digits and . _ + -")
            if len(set(labels)) < len(labels):
                raise ValueError(f"sweep.labels.{key}: a label is used twice: {labels}")


class ReportConfig(Section):
    """The HTML/Markdown report and the cost it states."""

    enabled: bool = True
    price_per_device_hour: float | None = Field(
        None, ge=0.0, description="Price of one device (GPU, or the machine on CPU) per hour; turns wall time into money."
    )
    currency: str = Field("USD", description="Label of the price.")
    examples_per_category: int = Field(2, ge=0, description="Failure examples shown per failure category.")
    wins_per_task: int = Field(
        3, ge=0, description="Items shown per task where the tuned variant beats the reference, and as many where it loses."
    )
    max_chars: int = Field(1500, ge=100, description="Long texts (prompts, generations) are cut to this many characters.")


class Profile(Section):
    """A named set of overrides shipped in the config, applied with `--profile NAME`.

    A study config targets its real model and hub data; its `offline` profile swaps in the
    built-in stand-ins, so one flag runs it on a laptop CPU.
    """

    description: str = Field("", description="What the profile is for (shown by `tunelab config show`).")
    set: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted key -> value, applied before any --set, e.g. {model.name: builtin:tiny-code}.",
    )


class Experiment(Section):
    """A whole experiment: the single object every stage reads."""

    name: str = "experiment"
    seed: int = 0
    run_dir: str | None = Field(None, description="Default: runs/<name>.")
    model: ModelConfig
    lora: LoraConfig = Field(default_factory=LoraConfig)
    data: DataConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    profiles: dict[str, Profile] = Field(
        default_factory=dict, description="Named override sets, applied with `--profile NAME` (e.g. offline).")
    profile: str | None = Field(
        None, description="The profile applied when the config was loaded (set with --profile; in a run's "
                          "config.yaml a record: its settings are already in the values).")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def section_of(ann: Any) -> type[BaseModel] | None:
    """The section model inside a field's annotation (`LoraConfig | None` -> LoraConfig), if any."""
    stack = [ann]
    while stack:
        t = stack.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
        stack.extend(getattr(t, "__args__", ()))
    return None
