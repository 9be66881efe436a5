"""`tunelab run CONFIG`: data -> train -> eval -> compare -> report in one run directory.

Each stage is skippable (`--skip`, `--only`) and safe to run again, so a re-run after a crash
continues where it stopped:

    data     tokenize and write data/ (skipped when done for the same data settings)
    train    resumes from the newest checkpoint; returns at once when training had finished
    eval     every eval.tasks x eval.models; finished samples come from the per-sample cache;
             then best-checkpoint selection when there are several checkpoints to choose from
    compare  model views are reused while their fingerprint holds; file-based views recomputed
    report   re-rendered from the files (cheap)

pipeline.json records each stage's status, seconds of the last run and seconds over all runs
(the report's cost section adds them up), and under "startup" the import of the model libraries
(torch, transformers, peft: seconds on a cold start), done once before the first stage's clock
starts, so a stage run alone (`--only eval`) is timed as it is inside a whole run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from tunelab.config import Experiment
from tunelab.data.holdout import Holdout
from tunelab.errors import ConfigError
from tunelab.runs import (RunPaths, add_stage_seconds, atomic_write_text, check_resume_config, fingerprint, read_json,
                          write_json)

STAGES = ("data", "train", "eval", "compare", "report")
MODEL_STAGES = {"data", "train", "eval", "compare"}  # these load a tokenizer or a model


def parse_stages(only: Sequence[str] | None, skip: Sequence[str] | None) -> list[str]:
    """The stages to run, in pipeline order, from `--only` / `--skip` lists (comma-separated ok)."""
    def names(items: Sequence[str] | None) -> list[str]:
        out = [x.strip() for item in items or [] for x in item.split(",") if x.strip()]
        bad = [x for x in out if x not in STAGES]
        if bad:
            from tunelab.errors import did_you_mean

            raise ConfigError(f"unknown stage '{bad[0]}'{did_you_mean(bad[0], STAGES)}; stages: {', '.join(STAGES)}")
        return out

    chosen, skipped = names(only), names(skip)
    return [s for s in STAGES if (not chosen or s in chosen) and s not in skipped]


def run_pipeline(exp: Experiment, run_dir: Path, stages: Sequence[str] = STAGES,
                 console: Console | None = None) -> dict[str, Any]:
    """Run `stages` of `exp` into `run_dir`; returns pipeline.json's content."""
    console = console or Console(stderr=True)
    paths = RunPaths(Path(run_dir))
    _open_run_dir(exp, paths)
    state_file = paths.root / "pipeline.json"
    state = read_json(state_file) if state_file.is_file() else {"stages": {}}
    if set(stages) & MODEL_STAGES:
        t0 = time.time()
        import_model_stack()
        add_stage_seconds(state.setdefault("startup", {"seconds_total": 0.0}), time.time() - t0)
    for stage in STAGES:
        entry = state["stages"].setdefault(stage, {"status": "pending", "seconds_total": 0.0})
        if stage not in stages:
            if entry["status"] != "done":
                entry.update(status="skipped")
            continue
        console.rule(f"[bold]{stage}")
        entry.update(status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_json(state_file, state)
        t0 = time.time()
        try:
            note = STAGE_FUNCS[stage](exp, paths, console)
        except BaseException as e:
            entry.update(status="failed", error=f"{type(e).__name__}: {e}"[:2000])
            _account(entry, t0)
            write_json(state_file, state)
            raise
        entry.update(status="done", note=note or "", error=None)
        _account(entry, t0)
        write_json(state_file, state)
    console.print(f"run directory: {paths.root}" + (f"; report: {paths.root / 'report.html'}"
                                                    if (paths.root / "report.html").is_file() else ""))
    return state


def import_model_stack() -> None:
    """Import the libraries the model stages load models with, before any stage's clock starts.
    Otherwise whichever stage runs first includes them (peft alone pulls in much of
    torch.distributed and transformers), and the same eval takes seconds longer on its own than
    after training."""
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM  # noqa: F401  (lazy module: the model classes)


def _account(entry: dict[str, Any], t0: float) -> None:
    add_stage_seconds(entry, time.time() - t0)


def _open_run_dir(exp: Experiment, paths: RunPaths) -> None:
    """Create the run directory; an existing one must hold a compatible config (keys that change
    results equal), which is then updated so later stages and commands see the current one."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.config.is_file():
        check_resume_config(yaml.safe_load(paths.config.read_text(encoding="utf-8")) or {}, exp)
    atomic_write_text(paths.config, exp.to_yaml())


# ---- stages -------------------------------------------------------------------------------------


def stage_data(exp: Experiment, paths: RunPaths, console: Console) -> str:
    from tunelab.data.pipeline import prepare, write_manifest
    from tunelab.models.loading import load_tokenizer

    holdout = _holdout(exp, paths)
    spec = {"data": exp.data.model_dump(mode="json"), "model": exp.model.name, "revision": exp.model.revision,
            "seed": exp.seed, **({"held_out": sorted(holdout.ids)} if holdout is not None else {})}
    if exp.eval.enable_thinking is not None:  # how a thinking-switch template renders the chats
        spec["enable_thinking"] = exp.eval.enable_thinking
    key = fingerprint(spec)
    stamp = paths.data / "fingerprint.txt"
    if (paths.data / "stats.json").is_file() and stamp.is_file() and stamp.read_text().strip() == key:
        return "data unchanged; kept"
    prepared = prepare(exp, load_tokenizer(exp.model), holdout)
    write_manifest(prepared, paths.data)
    atomic_write_text(stamp, key + "\n")
    counts = {s: len(prepared.examples(s)) for s in ("train", "val", "test")}
    note = ", ".join(f"{k} {v}" for k, v in counts.items())
    held = prepared.stats.get("held_out")
    if held:
        note += f"; {held['n_removed']} training row(s) held out for {held['reason']}"
        console.print(f"data: {held['n_removed']} training row(s) held out: {held['reason']} "
                      f"({held['n_items']} items, {held['rule']})", markup=False, highlight=False)
    return note


def _holdout(exp: Experiment, paths: RunPaths) -> Holdout | None:
    """The training rows the run's own checkpoint selection needs kept out (its carved val
    items); once training has started, the ones it started with (data/stats.json)."""
    from tunelab.data.holdout import recorded_holdout
    from tunelab.evaluation.selection import training_holdout
    from tunelab.runs import has_checkpoints

    if has_checkpoints(paths) or paths.summary.is_file():
        return recorded_holdout(paths.data / "stats.json")
    return training_holdout(exp)


def stage_train(exp: Experiment, paths: RunPaths, console: Console) -> str:
    from tunelab.runs import has_checkpoints
    from tunelab.training.loop import FINISHED, train

    if paths.summary.is_file():
        done = read_json(paths.summary)
        if done.get("stop_reason") in FINISHED:  # not even re-opened: env.json keeps no empty "resume"
            from tunelab.errors import TrainingError
            from tunelab.models.identity import base_identity, same_base

            now = base_identity(exp.model)
            if not same_base(done.get("base_model"), now):
                raise TrainingError(f"{paths.root} was trained on other weights of {exp.model.name} than the ones "
                                    f"installed now ({done['base_model']} vs {now}); its adapters do not fit them: "
                                    "start a new run with another --run-dir")
            return f"already finished ({done['stop_reason']} at step {done.get('steps')})"
    resume = has_checkpoints(paths) or paths.summary.is_file()
    summary = train(exp, paths.root, resume=resume, holdout=_holdout(exp, paths))
    return f"{summary.get('stop_reason')} at step {summary.get('steps')}"


def stage_eval(exp: Experiment, paths: RunPaths, console: Console) -> str:
    if not exp.eval.tasks:
        return "no eval.tasks set; nothing to evaluate"
    from tunelab.evaluation.console import print_results, selection_lines
    from tunelab.evaluation.context import EvalContext
    from tunelab.evaluation.engine import check_code_execution, evaluate_run, make_tasks
    from tunelab.evaluation.selection import is_own_checkpoint, select_checkpoint
    from tunelab.evaluation.variants import expand_models
    from tunelab.evaluation.task import EvalError
    from tunelab.models.adapters import list_variants

    variants = expand_models(exp.eval.models, list_variants(paths.root))
    key = _eval_fingerprint(exp, paths, variants)
    stamp = paths.root / "eval" / "fingerprint.txt"
    if stamp.is_file() and stamp.read_text().strip() == key and _own_summaries_current(exp, paths, variants):
        # Same settings, weights, task versions and items: the results on disk are current.
        # (Re-summarising every task would redo its bootstrap CIs, seconds for corpus metrics.)
        # Only the run's own summary.json files count: a one-off `tunelab eval` with other
        # settings writes summary@KEY.json beside them.
        return "eval settings and weights unchanged, task versions and items too; results kept"
    tasks = make_tasks(exp.eval, (paths.root, exp))
    check_code_execution(tasks, exp.eval.allow_code_execution)  # before the context opens a sandbox
    # One context for the test evaluation and checkpoint selection: one sandbox, and the model
    # evaluated last on test is scored on the selection split without loading it again.
    with EvalContext(exp.eval, tasks, paths.root, exp) as ectx:
        results = evaluate_run(paths.root, exp, exp.eval, console=console, run_eval=exp.eval, tasks=tasks, ectx=ectx)
        print_results(results, console)
        note = f"{len(results)} variants x {len(exp.eval.tasks)} tasks"
        candidates = [v for v in variants if is_own_checkpoint(v)]
        if len(candidates) > 1:
            try:
                chosen = select_checkpoint(paths.root, exp, exp.eval, console=console, run_eval=exp.eval, ectx=ectx)
                for line in selection_lines(chosen):
                    console.print(line, markup=False, highlight=False)
                where = chosen["selection_split"] + (" (carved)" if chosen.get("carved") else "")
                note += (f"; selected {chosen['best']} on {where}" if chosen["decision"] == "best" else
                         f"; selection on {where}: no difference between checkpoints, best resolves to {chosen['resolved']}")
            except EvalError as e:  # e.g. the task has no validation split: evaluation itself succeeded
                note += f"; no checkpoint selection ({e})"
    atomic_write_text(stamp, key + "\n")
    return note


def _own_summaries_current(exp: Experiment, paths: RunPaths, variants: list[str]) -> bool:
    """Whether every summary.json of the run's own variants x tasks that exists covers the items
    the run's own settings score (a one-off eval of older tunelab versions wrote over them)."""
    from tunelab.evaluation.engine import items_fingerprint, load_samples, make_tasks, task_label
    from tunelab.evaluation.variants import variant_folder
    from tunelab.runs import read_json

    ev = exp.eval
    for task in make_tasks(ev, (paths.root, exp)):
        split = ev.split or task.default_split
        want = items_fingerprint(load_samples(task, split, ev.limit))
        for v in variants:
            path = paths.root / "eval" / variant_folder(v, paths.root, exp) / task_label(task, split) / "summary.json"
            if path.is_file() and read_json(path).get("items", want) != want:
                return False
    return True


def _eval_fingerprint(exp: Experiment, paths: RunPaths, variants: list[str]) -> str:
    """What the eval stage's results depend on: settings, the variants' weights, and each task's
    name, version, options and items (ids + content) on every split the stage scores, so a task
    version bump or re-shipped data is evaluated again."""
    from tunelab.evaluation.engine import items_fingerprint, load_samples, make_tasks
    from tunelab.evaluation.variants import split_prompting
    from tunelab.models.ref import ModelRef

    ev, tasks = exp.eval, []
    for task in make_tasks(ev, (paths.root, exp)):
        splits = {ev.split or task.default_split}
        if task.name == (ev.selection.task or ev.tasks[0]):  # checkpoint selection scores two more
            task = _selection_view(task, exp)  # with its carved val split, where it has one
            splits |= {s for s in (ev.selection.split, ev.selection.report_split) if s in task.splits}
        tasks.append({"name": task.name, "version": task.version, "options": task.options(),
                      "items": {s: items_fingerprint(load_samples(task, s, ev.limit)) for s in sorted(splits)}})
    weights = [ModelRef.parse(split_prompting(v)[0], paths.root, base=exp.model).identity() for v in variants]
    # Whether records may come from the shared cache, and what a judge's tokens cost, change no result.
    settings = ev.model_dump(mode="json", exclude={"shared_cache": True, "judge": {"price_per_million_tokens"}})
    return fingerprint({"eval": settings, "variants": variants, "weights": weights,
                        "tasks": tasks, "data_template": exp.data.chat_template})


def _selection_view(task: Any, exp: Experiment) -> Any:
    """The task as checkpoint selection sees it (a carved val split), or itself where selection
    would refuse (it says why when it runs)."""
    from tunelab.evaluation.holdout import selection_task
    from tunelab.evaluation.task import EvalError

    try:
        return selection_task(task, exp.eval.selection, exp.seed)
    except EvalError:
        return task


def stage_compare(exp: Experiment, paths: RunPaths, console: Console) -> str:
    from tunelab.compare import run_compare

    return ", ".join(sorted(run_compare(paths.root, exp, console)))


def stage_report(exp: Experiment, paths: RunPaths, console: Console) -> str:
    if not exp.report.enabled:
        return "report.enabled is false"
    from tunelab.report import write_report

    return str(write_report([paths.root]))


STAGE_FUNCS: dict[str, Callable[[Experiment, RunPaths, Console], str]] = {
    "data": stage_data, "train": stage_train, "eval": stage_eval, "compare": stage_compare, "report": stage_report,
}
