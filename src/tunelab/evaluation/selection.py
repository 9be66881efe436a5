"""Best-checkpoint selection: chosen on one split, reported on another.

Choosing the checkpoint on the test split and reporting its test score overstates it (the max
of noisy scores is biased upward), so the choice is made on `eval.selection.split` (val) and the
chosen variant is then scored on `eval.selection.report_split` (test), beside the base model
with a paired bootstrap of the difference. Everything goes through the engine, so per-sample
results and caching are the same as for `tunelab eval`. Written: run_dir/eval/selection.json for
the run's own settings (its config.yaml); a selection with other ones (task, metric, splits,
candidates, the task's result settings) goes beside it as selection@KEY.json, recording what differs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import EvalConfig, Experiment
from tunelab.evaluation import stats
from tunelab.evaluation.registry import get_task
from tunelab.evaluation.engine import (SessionFactory, evaluate_run, expand_models, load_samples, run_eval_config,
                                      task_label)
from tunelab.evaluation.results import key_name, result_settings, summary_records
from tunelab.evaluation.task import EvalError
from tunelab.models.adapters import STEP
from tunelab.runs import write_json


def pick_best(values: list[tuple[str, float]], higher_is_better: bool) -> str:
    """The variant with the best finite value; ties go to the earliest (fewest steps)."""
    finite = [(v, x) for v, x in values if not math.isnan(x)]
    if not finite:
        raise EvalError("no candidate has a finite score on the selection split")
    best = finite[0]
    for v, x in finite[1:]:
        if (x > best[1]) if higher_is_better else (x < best[1]):
            best = (v, x)
    return best[0]


def select_checkpoint(run_dir: Path, exp: Experiment, cfg: EvalConfig, session_factory: SessionFactory | None = None,
                      console: Console | None = None, run_eval: EvalConfig | None = None) -> dict[str, Any]:
    """Pick the best of `cfg.models` (minus base/best) on the selection split, report it on the
    report split against base; writes and returns selection.json's content (or selection@KEY.json's
    when the settings differ from `run_eval`, the run's own: default read from its config.yaml)."""
    from tunelab.models.adapters import list_variants

    sel = cfg.selection
    if sel.split == sel.report_split:
        raise EvalError(f"selection and report splits are both '{sel.split}': the reported score would be biased")
    task_name = sel.task or (cfg.tasks[0] if cfg.tasks else None)
    if task_name is None:
        raise EvalError("no selection task: set eval.selection.task or pass --tasks")
    options = cfg.task_options.get(task_name, {})
    task = get_task(task_name, **options)
    metric = task.metric(sel.metric or task.metrics[0].name)
    load_samples(task, sel.split, None)  # fail early on a missing split, naming the task's splits
    load_samples(task, sel.report_split, None)
    available = list_variants(run_dir)
    candidates = _candidates(cfg, available)
    if not candidates:
        raise EvalError(f"no checkpoints to choose from in {cfg.models}; this run has: {', '.join(available)}")

    own = run_eval if run_eval is not None else run_eval_config(run_dir)
    keyed = _differing(cfg, own, task_name, available)
    one_task = {"tasks": [task_name], "task_options": {task_name: options} if options else {}}
    on_val = evaluate_run(run_dir, exp, cfg.model_copy(update={**one_task, "models": candidates}),
                          session_factory, split=sel.split, console=console, run_eval=own)
    val_label = task_label(task, sel.split)
    scored = [(v, on_val[v][val_label]["metrics"][metric.name]) for v in candidates]
    best = pick_best([(v, m["value"]) for v, m in scored], metric.higher_is_better)

    report_models = [best] + (["base"] if "base" in available else [])
    on_test = evaluate_run(run_dir, exp, cfg.model_copy(update={**one_task, "models": report_models}),
                           session_factory, split=sel.report_split, console=console, run_eval=own)
    test_label = task_label(task, sel.report_split)
    result: dict[str, Any] = {
        "task": task.name, "version": task.version, "options": task.options(), "metric": metric.name,
        "higher_is_better": metric.higher_is_better, "selection_split": sel.split,
        "report_split": sel.report_split, "best": best,
        "candidates": [{"variant": v, **m} for v, m in scored],
        "report": {v: on_test[v][test_label]["metrics"][metric.name] for v in report_models},
        "difference_vs_base": None, "keyed": keyed or None,
    }
    if "base" in report_models and metric.aggregation == "mean":
        result["difference_vs_base"] = _paired(run_dir / "eval", test_label, "base", best, metric.name, cfg,
                                               {v: on_test[v][test_label] for v in report_models})
    write_json(run_dir / "eval" / (f"selection@{key_name(keyed)}.json" if keyed else "selection.json"), result)
    return result


def _paired(eval_dir: Path, label: str, a: str, b: str, metric: str, cfg: EvalConfig,
            summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Paired bootstrap of b - a over the items both have a value for (the records each summary
    was computed from: the caches also hold other settings' records)."""
    va = {r["id"]: r["values"].get(metric) for r in summary_records(eval_dir / a / label, summaries[a])}
    vb = {r["id"]: r["values"].get(metric) for r in summary_records(eval_dir / b / label, summaries[b])}
    ids = [i for i in va if i in vb and va[i] is not None and vb[i] is not None]
    res = stats.paired_bootstrap([va[i] for i in ids], [vb[i] for i in ids], confidence=cfg.confidence,
                                 n_resamples=cfg.bootstrap_resamples, seed=cfg.seed)
    return {"of": f"{b} - {a}", **res}


def _candidates(cfg: EvalConfig, available: list[str]) -> list[str]:
    """Checkpoints only: not base, best or a prompting variant (base+cot is base's weights)."""
    return [v for v in expand_models(cfg.models, available) if is_own_checkpoint(v)]


def is_own_checkpoint(variant: str) -> bool:
    """`final` or `step-N` of the run itself: what checkpoint selection chooses among (not base,
    best, a prompting variant, another run's variant or a folder outside the run)."""
    return variant == "final" or bool(STEP.match(variant))


def _differing(cfg: EvalConfig, own: EvalConfig | None, task: str, available: list[str]) -> dict[str, Any] | None:
    """What of this selection differs from the run's own one ({} = the same); None when the run's
    own configuration selects nothing (no task), so there is no own selection.json to protect."""
    own_task = (own.selection.task or (own.tasks[0] if own.tasks else None)) if own is not None else None
    if own is None or own_task is None:
        return None

    def settings(c: EvalConfig, name: str) -> dict[str, Any]:
        return {**result_settings(c, name), **c.selection.model_dump(mode="json"), "task": name,
                "candidates": _candidates(c, available)}

    mine, theirs = settings(cfg, task), settings(own, own_task)
    return {k: {"run": theirs.get(k), "here": v} for k, v in mine.items() if theirs.get(k) != v}
