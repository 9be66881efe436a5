"""Best-checkpoint selection: chosen on one split, reported on another, and only when it is one.

Choosing the checkpoint on the test split and reporting its test score overstates it (the max
of noisy scores is biased upward), so the choice is made on `eval.selection.split` (val) and the
chosen variant is then scored on `eval.selection.report_split` (test), beside the base model
with a paired bootstrap of the difference. A task without a val split chooses on items carved
from its train split and kept out of training (`holdout.py`); choosing on `train` itself is
refused unless `eval.selection.allow_train_split` says so, and then recorded as such.

The decision: the candidate with the best value on the selection split ("top") is compared with
every other candidate by a paired test on the same items (`pairing.paired_test`: exact McNemar
for pass/fail, permutation otherwise; a paired bootstrap for corpus metrics). It is named
`best` ("decision": "best") only if it is better than each of them at `eval.selection.alpha`
(all tests must reject, so no multiplicity correction is needed). Otherwise ("decision":
"no_difference") no candidate is named best: the scores do not tell them apart. `best` model
refs then resolve to the candidate that trained longest among the top and those the tests
could not tell from it (`final` when it is one of them): the checkpoint a run without selection
would use, rather than one picked by noise. `resolved` and `resolved_because` record it.

Everything goes through the engine, so per-sample results and caching are the same as for
`tunelab eval`. Written: run_dir/eval/selection.json for the run's own settings (its
config.yaml); a selection with other ones (task, metric, splits, candidates, the task's result
settings) goes beside it as selection@KEY.json, recording what differs.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import EvalConfig, Experiment
from tunelab.errors import TunelabError
from tunelab.evaluation import pairing, stats
from tunelab.evaluation.context import EvalContext
from tunelab.evaluation.engine import (
    SessionFactory, check_code_execution, evaluate_run, load_samples, run_eval_config, task_label,
)
from tunelab.evaluation.variants import expand_models
from tunelab.data.holdout import Holdout
from tunelab.evaluation.holdout import CarvedTask, holdout_of, selection_task, trained_on
from tunelab.evaluation.registry import get_task
from tunelab.evaluation.results import cap_text, key_name, result_settings, summary_records
from tunelab.evaluation.task import EvalError, Metric, Task
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
                      console: Console | None = None, run_eval: EvalConfig | None = None,
                      ectx: EvalContext | None = None) -> dict[str, Any]:
    """Compare `cfg.models` (minus base/best) on the selection split, decide whether one is best,
    report the resolved one on the report split against base; writes and returns selection.json's
    content (or selection@KEY.json's when the settings differ from `run_eval`, the run's own:
    default read from its config.yaml). Both evaluations work in one `EvalContext` (`ectx`, the
    caller's open one, or one opened here), so the model evaluated last on the selection split
    is reported without being loaded again."""
    from tunelab.models.adapters import list_variants

    sel = cfg.selection
    task_name = sel.task or (cfg.tasks[0] if cfg.tasks else None)
    if task_name is None:
        raise EvalError("no selection task: set eval.selection.task or pass --tasks")
    options = cfg.task_options.get(task_name, {})
    task = selection_task(get_task(task_name, **options).bind_run(run_dir, exp), sel, exp.seed)
    metric = task.metric(sel.metric or task.metrics[0].name)
    load_samples(task, sel.split, None)  # fail early on a missing split, naming the task's splits
    load_samples(task, sel.report_split, None)
    if isinstance(task, CarvedTask):
        _check_not_trained_on(run_dir, exp, task)
    available = list_variants(run_dir)
    candidates = _candidates(cfg, available)
    if not candidates:
        raise EvalError(f"no checkpoints to choose from in {cfg.models}; this run has: {', '.join(available)}")

    own = run_eval if run_eval is not None else run_eval_config(run_dir)
    keyed = _differing(cfg, own, task_name, available)
    one_task = {"tasks": [task_name], "task_options": {task_name: options} if options else {}}
    check_code_execution([task], cfg.allow_code_execution)  # before the context opens a sandbox
    opened = contextlib.nullcontext(ectx) if ectx is not None else EvalContext(cfg, [task], run_dir, exp, session_factory)
    with opened as ectx:
        on_val = evaluate_run(run_dir, exp, cfg.model_copy(update={**one_task, "models": candidates}),
                              split=sel.split, console=console, run_eval=own, tasks=[task], ectx=ectx)
        val_label = task_label(task, sel.split)
        val = {v: on_val[v][val_label] for v in candidates}
        scored = [(v, val[v]["metrics"][metric.name]) for v in candidates]
        top = pick_best([(v, m["value"]) for v, m in scored], metric.higher_is_better)
        comparisons = [_compare(run_dir / "eval", val_label, task, metric, v, top, val, cfg)
                       for v in candidates if v != top]
        decision = decide(top, candidates, comparisons)
        report_models = [decision["resolved"]] + (["base"] if "base" in available else [])
        on_test = evaluate_run(run_dir, exp, cfg.model_copy(update={**one_task, "models": report_models}),
                               split=sel.report_split, console=console, run_eval=own, tasks=[task], ectx=ectx)
    test_label = task_label(task, sel.report_split)
    first, reported = val[candidates[0]], on_test[report_models[0]][test_label]
    result: dict[str, Any] = {
        "task": task.name, "version": task.version, "options": task.options(), "metric": metric.name,
        "higher_is_better": metric.higher_is_better, "selection_split": sel.split,
        "report_split": sel.report_split, **decision, "alpha": sel.alpha,
        "candidates": [{"variant": v, **m} for v, m in scored], "comparisons": comparisons,
        "report": {v: on_test[v][test_label]["metrics"][metric.name] for v in report_models},
        "difference_vs_base": None, "keyed": keyed or None,
        "carved": task.carved.record() if isinstance(task, CarvedTask) else None,
        "on_training_items": sel.split == "train",
        "cap": {"limit": cfg.limit, "n": first.get("n"), "n_total": first.get("n_total"), "report_n": reported.get("n"),
                "report_n_total": reported.get("n_total")} if cap_text(first) or cap_text(reported) else None,
    }
    if "base" in report_models and metric.aggregation == "mean":
        result["difference_vs_base"] = _paired(run_dir / "eval", test_label, "base", decision["resolved"], metric.name,
                                               cfg, {v: on_test[v][test_label] for v in report_models})
    write_json(run_dir / "eval" / (f"selection@{key_name(keyed)}.json" if keyed else "selection.json"), result)
    return result


def decide(top: str, candidates: list[str], comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    """`decision`, `best`, `top`, `resolved` and `resolved_because` from the paired tests of the
    top candidate against every other (`comparisons`, each with `variant`, `better` and
    `significant`): see the module docstring."""
    if not comparisons:
        return {"decision": "best", "best": top, "top": top, "resolved": top,
                "resolved_because": f"{top} is the only candidate", "tied_with_top": []}
    beaten = [c for c in comparisons if c.get("significant") and c.get("better")]
    if len(beaten) == len(comparisons):
        return {"decision": "best", "best": top, "top": top, "resolved": top, "tied_with_top": [],
                "resolved_because": f"{top} is better than every other candidate at the significance level"}
    tied = [c["variant"] for c in comparisons if c not in beaten]
    pool = [v for v in candidates if v == top or v in tied]
    resolved = latest(pool)
    return {"decision": "no_difference", "best": None, "top": top, "resolved": resolved, "tied_with_top": tied,
            "resolved_because": (f"{top} (the top score) is not better beyond the noise than {', '.join(tied)}, "
                                 f"and {resolved} trained longest among them")}


def latest(variants: list[str]) -> str:
    """The variant trained longest: `final`, else the step-N with the largest N."""
    if "final" in variants:
        return "final"
    return max(variants, key=lambda v: int(STEP.match(v).group(1)) if STEP.match(v) else -1)


def _compare(eval_dir: Path, label: str, task: Any, metric: Metric, other: str, top: str,
             summaries: dict[str, dict[str, Any]], cfg: EvalConfig) -> dict[str, Any]:
    """The paired test of `top` against `other` (top - other) on the items both scored."""
    kw = dict(higher_is_better=metric.higher_is_better, alpha=cfg.selection.alpha, confidence=cfg.confidence,
              n_resamples=cfg.bootstrap_resamples, seed=cfg.seed)
    row: dict[str, Any] = {"variant": other, "of": f"{top} - {other}"}
    unpaired = {**row, "n": 0, "test": None, "significant": False, "better": None, "note": "no shared items"}
    if metric.aggregation == "mean":
        xa, xb = _paired_values(eval_dir, label, other, top, metric.name, summaries)
        return {**row, "n": len(xa), **pairing.paired_test(xa, xb, **kw)} if xa else unpaired
    ra = {str(r["id"]): r for r in summary_records(eval_dir / other / label, summaries[other])}
    rb = {str(r["id"]): r for r in summary_records(eval_dir / top / label, summaries[top])}
    items = {s.id: s for s in task.load(summaries[top].get("split"))}
    ids = [i for i in ra if i in rb and i in items]
    if not ids:
        return unpaired
    return {**row, "n": len(ids), **pairing.paired_corpus(task, metric.name, [items[i] for i in ids],
                                                          [ra[i] for i in ids], [rb[i] for i in ids], **kw)}


def _check_not_trained_on(run_dir: Path, exp: Experiment, task: CarvedTask) -> None:
    """Refuse a carved val split whose items the run trained on."""
    try:
        hits = trained_on(run_dir, exp, task)
    except TunelabError as e:
        raise EvalError(f"checkpoint selection on task '{task.name}': cannot check its carved val items against "
                        f"the run's training data ({e})") from None
    if hits:
        c = task.carved
        raise EvalError(
            f"checkpoint selection on task '{task.name}': it has no val split (its splits: "
            f"{', '.join(task.inner.splits)}), so {len(c.ids)} of its {c.n_from} train items were carved off to "
            f"choose on ({c.rule}), but the run trained on {len(hits)} of them ({', '.join(hits[:3])}"
            f"{', ...' if len(hits) > 3 else ''}): choosing on them picks the checkpoint that memorised best. "
            f"Fix: train again with this config (`tunelab run` and `tunelab train` keep the carved items out of "
            f"training; data/stats.json held_out lists them), or choose by another task (eval.selection.task); "
            f"to choose on training items knowingly, set eval.selection.split: train and "
            f"eval.selection.allow_train_split: true")


def _paired(eval_dir: Path, label: str, a: str, b: str, metric: str, cfg: EvalConfig,
            summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Paired bootstrap of b - a over the items both have a value for (the records each summary
    was computed from: the caches also hold other settings' records)."""
    xa, xb = _paired_values(eval_dir, label, a, b, metric, summaries)
    res = stats.paired_bootstrap(xa, xb, confidence=cfg.confidence, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed)
    return {"of": f"{b} - {a}", **res}


def _paired_values(eval_dir: Path, label: str, a: str, b: str, metric: str,
                   summaries: dict[str, dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Per-item values of `metric` of variants a and b on the items both have one for."""
    va = {r["id"]: r["values"].get(metric) for r in summary_records(eval_dir / a / label, summaries[a])}
    vb = {r["id"]: r["values"].get(metric) for r in summary_records(eval_dir / b / label, summaries[b])}
    ids = [i for i in va if i in vb and va[i] is not None and vb[i] is not None]
    return [va[i] for i in ids], [vb[i] for i in ids]


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


# ---- what the run's own selection needs kept out of training ------------------------------------


def own_selection_task(exp: Experiment) -> Task | CarvedTask | None:
    """The task the run's own checkpoint selection chooses on (carved where it has to be), or
    None when the run selects nothing: no eval task, or eval.models names at most one of the
    run's checkpoints (and no pattern such as `step-*`), or selection would refuse its settings."""
    from fnmatch import fnmatchcase

    from tunelab.models.ref import split_prompting

    ev = exp.eval
    name = ev.selection.task or (ev.tasks[0] if ev.tasks else None)
    weights = [split_prompting(m)[0] for m in ev.models]
    globs = any(fnmatchcase("step-1", w) for w in weights if any(c in w for c in "*?["))
    if name is None or not (globs or sum(map(is_own_checkpoint, weights)) > 1):
        return None
    try:
        return selection_task(get_task(name, **ev.task_options.get(name, {})).bind_run(None, exp), ev.selection, exp.seed)
    except TunelabError:  # refused settings, unreadable task data: selection says so when it runs
        return None


def training_holdout(exp: Experiment) -> Holdout | None:
    """What `tunelab run` and `tunelab train` keep out of training: the items the run's own
    checkpoint selection chooses on when they are carved from the task's train split, else None."""
    task = own_selection_task(exp)
    return holdout_of(task) if isinstance(task, CarvedTask) else None
