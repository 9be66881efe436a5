"""`tunelab sweep CONFIG`: many trials of one experiment, and the table of what each cost and gave.

    SWEEP_DIR/                      the experiment's run_dir (or --run-dir)
      sweep.json                    trials, why each ended, what was searched, the trade-off
                                    table, the Pareto front (computed here once; the report renders them)
      optuna.journal                the Optuna study (search: optuna), continued by a re-run
      trials/<name>/                one ordinary run directory per trial (tunelab run)
      trials/<name>/trial.json      the trial's overrides, status, pid, return code, error or prune reason
      trials/<name>/trial.log       the trial's output
      compare/                      the trials compared with each other (when sweep.compare is set):
                                    side-by-side generations, next tokens, paired tests (`compare`)
      report.html, report.md        the sweep report (when report.enabled)

Trials are the product of `sweep.grid` (every combination), `sweep.zip` (lists taken element by
element) and `sweep.seeds`, or sampled by Optuna (`sweep.search: optuna`, see `search`),
applied as `--set key=value` overrides, so any config key sweeps, list indices included
(`data.sources.0.weight`). A trial's folder name is made from its own overrides, so adding a
value never renames or overwrites another trial. Each trial runs as its own `tunelab run`
process, up to `sweep.max_concurrent` at once, each on its own devices or cores, or as a Ray
task (`executors`): a crash, OOM or kill of one trial is recorded and the sweep moves on, and
peak memory is measured per trial. A re-run skips finished (and pruned) trials and resumes the
rest (training continues from its last checkpoint, evaluation from its per-sample cache).
Once no trial is left to run, `sweep.compare` compares the finished trials' variants with each
other (`tunelab.sweep.compare`), from their weights and eval results; its model views are cached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import COST_OBJECTIVES, Experiment, load_config
from tunelab.errors import ConfigError, TunelabError
from tunelab.progress import Progress
from tunelab.report import write_report
from tunelab.runs import default_run_dir, read_json, write_json
from tunelab.sweep.compare import check_compare_trials, compare_trials
from tunelab.sweep.executors import RayCluster, Slot, local_slots
from tunelab.sweep.launch import STOP_FILE, Launcher, launch_process, run_trial
from tunelab.sweep.trials import Trial, expand_trials, trial_name
from tunelab.tradeoff import pareto_points, tradeoff_rows

__all__ = ["Trial", "expand_trials", "launch_process", "run_sweep", "summarize_sweep", "trial_name"]


def run_sweep(config: Path, overrides: Sequence[str] = (), sweep_dir: Path | None = None,
              console: Console | None = None, launch: Launcher | None = None) -> dict[str, Any]:
    """Run every trial of `config`'s sweep section (see the module docstring); returns sweep.json.

    Args:
        config: the experiment YAML with its `sweep` section.
        overrides: `key=value` overrides for every trial.
        sweep_dir: the sweep directory (default: the experiment's run dir).
        launch: runs one trial's command instead of the executor's launcher (tests).
    """
    console = console or Console(stderr=True)
    exp = load_config(config, list(overrides))
    from tunelab.evaluation.registry import validate_eval_config

    # A misspelt task or a missing code opt-in fails here, not in every trial after its training.
    validate_eval_config(exp.eval, runs_tasks="eval" in exp.sweep.stages)
    root = Path(sweep_dir) if sweep_dir else default_run_dir(exp)
    search = None
    if exp.sweep.search == "optuna":
        if not exp.sweep.grid and not exp.sweep.optuna.space:
            raise ConfigError("the Optuna search is empty: set sweep.grid (choices) or sweep.optuna.space (ranges)")
        (root / "trials").mkdir(parents=True, exist_ok=True)
        from tunelab.sweep.search import OptunaSearch

        search = OptunaSearch(root, exp)
        n = exp.sweep.optuna.n_trials
        jobs = _optuna_jobs(search)
    else:
        trials = expand_trials(exp.sweep)
        if not trials:
            raise ConfigError("the sweep is empty: set sweep.grid, sweep.zip or sweep.seeds in the config")
        (root / "trials").mkdir(parents=True, exist_ok=True)
        check_compare_trials(exp, trials)
        n = len(trials)
        jobs = iter([(t, None) for t in trials])
    cluster = RayCluster(exp.sweep) if exp.sweep.executor == "ray" and launch is None else None
    try:
        if launch is not None:
            slots = [Slot(launch)] * min(exp.sweep.max_concurrent or 1, n)
        else:
            slots = cluster.slots(n) if cluster else local_slots(exp.sweep, n)
        status = _run_all(jobs, slots, root, config, list(overrides), exp, search, console, n)
    finally:
        if cluster:
            cluster.close()
    if search is not None:
        trials = [_trial_of(root, folder, number) for folder, number in search.folders()]
        trials = [t for t in trials if t is not None]
    cross = _compare(root, exp, trials, console) if exp.sweep.compare else None
    result = summarize_sweep(root, exp, trials, status, config, console,
                             search=search.summary() if search else _grid_summary(exp), compare=cross)
    statuses = [t["status"] for t in result["trials"]]
    not_done = [t["name"] for t in result["trials"] if t["status"] not in ("done", "pruned")]
    pruned = statuses.count("pruned")
    console.print(f"sweep: {statuses.count('done')}/{len(statuses)} trials done"
                  + (f", {pruned} pruned" if pruned else "") + f"; table in {root / 'sweep.json'}"
                  + (f"; not done: {', '.join(not_done)}" if not_done else ""), markup=False, highlight=False)
    return result


def _compare(root: Path, exp: Experiment, trials: Sequence[Trial], console: Console) -> dict[str, Any]:
    """The comparison across trials; a mistake in it (a variant a trial lacks) is recorded and
    said, and the sweep's table and report are still written."""
    try:
        return compare_trials(root, exp, list(trials), console)
    except TunelabError as e:
        console.print(f"sweep: the comparison across trials failed: {e}", markup=False, highlight=False)
        return {"error": str(e)}


def _optuna_jobs(search: Any):
    while (job := search.next_trial()) is not None:
        yield job


def _run_all(jobs: Any, slots: list[Slot], root: Path, config: Path, overrides: list[str], exp: Experiment,
             search: Any, console: Console, n: int) -> dict[str, str]:
    """One worker thread per slot, each taking the next trial until none is left; the status of
    every trial run. The first error that is not a trial's own (a folder of another trial)
    stops handing out trials and is raised once the running ones end."""
    status: dict[str, str] = {}
    lock, errors, running = threading.Lock(), [], set()
    count = iter(range(1, 10**9))

    def worker(slot: Slot) -> None:
        while not errors:
            with lock:
                job = next(jobs, None)
                i = next(count)
            if job is None:
                return
            t, handle = job
            tdir = root / "trials" / t.name
            running.add(tdir)
            try:
                watch = search.watch(handle, tdir) if search and exp.sweep.optuna.pruner != "none" else None
                s = run_trial(t, tdir, config, overrides, exp, slot.launch, console, f"[{i}/{n}]", watch, slot.label)
                status[t.name] = s
                if search:
                    search.finish(handle, s, _row(tdir, exp) if s == "done" else None)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                errors.append(e)
                if search:
                    search.finish(handle, "failed", None)
            finally:
                running.discard(tdir)
                with lock:
                    bar.advance(tid)

    threads = [threading.Thread(target=worker, args=(s,), name=f"sweep-slot-{i}") for i, s in enumerate(slots)]
    with Progress(console) as bar:  # trials done, with ETA; plain lines when not a terminal
        tid = bar.add_task("sweep trials", total=n)
        for th in threads:
            th.start()
        try:
            for th in threads:
                th.join()
        except BaseException:  # Ctrl-C: stop every running trial, then leave
            errors.append(KeyboardInterrupt())
            for tdir in list(running):
                (tdir / STOP_FILE).write_text("sweep interrupted\n", encoding="utf-8")
            for th in threads:
                th.join()
            raise
    if errors:
        raise errors[0]
    return status


def _row(tdir: Path, exp: Experiment) -> dict[str, Any]:
    return tradeoff_rows([tdir], exp.report.price_per_device_hour)[0]


def _trial_of(root: Path, folder: str, number: int) -> Trial | None:
    state_file = root / "trials" / folder / "trial.json"
    if not state_file.is_file():
        return None
    state = read_json(state_file)
    return Trial(folder, tuple(state.get("overrides") or ()), state.get("values") or {}, number)


def _grid_summary(exp: Experiment) -> dict[str, Any]:
    s = exp.sweep
    return {"method": "grid", "grid": s.grid, "zip": s.zip, "seeds": s.seeds}


def _state(tdir: Path) -> dict[str, Any]:
    try:
        return read_json(tdir / "trial.json") if (tdir / "trial.json").is_file() else {}
    except (OSError, ValueError):
        return {}


def _why(state: dict[str, Any]) -> str:
    """Why a trial ended, in words, from its trial.json."""
    status = state.get("status")
    if status == "done":
        return "finished"
    if status == "pruned":
        return "pruned: " + str(state.get("reason") or "")
    if status == "running":
        return "still running"
    return "failed: " + str(state.get("error") or "") if status == "failed" else str(status or "not started")


# ---- the table and the report ------------------------------------------------------------------


def summarize_sweep(root: Path, exp: Experiment, trials: Sequence[Trial], status: dict[str, str],
                    config: Path, console: Console | None = None, search: dict[str, Any] | None = None,
                    compare: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write sweep.json, the one computation of the trade-off table and Pareto front, from the
    trial folders; then the sweep report from it (when report.enabled).

    Args:
        trials: every trial of the sweep; status: the status of those run now (the others'
            comes from their trial.json); search: what was searched (for the report);
            compare: what the comparison across trials wrote (`compare_trials`), if it ran.
    """
    rows = tradeoff_rows([root / "trials" / t.name for t in trials], exp.report.price_per_device_hour)
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    states = {t.name: _state(root / "trials" / t.name) for t in trials}
    objectives = exp.sweep.optuna.objectives if exp.sweep.search == "optuna" else []
    scores = [o.metric for o in objectives if "/" in o.metric]
    metric = exp.sweep.metric or (scores[0] if scores else None)
    # Several objectives: the front is over all of them; the plot's cost axis is the first
    # cost among them (else sweep.cost).
    cost = next((o.metric for o in objectives if o.metric in COST_OBJECTIVES and o.metric != "best_val_loss"),
                exp.sweep.cost) \
        if len(objectives) >= 2 else exp.sweep.cost
    front_over = [(o.metric, o.direction) for o in objectives] if len(objectives) >= 2 else []
    result = {
        "name": exp.name, "config": str(config), "sweep": exp.sweep.model_dump(mode="json"),
        "search": search or _grid_summary(exp),
        "price_per_device_hour": exp.report.price_per_device_hour, "currency": exp.report.currency,
        "trials": [{"name": t.name, "values": t.values, "status": status.get(t.name) or states[t.name].get("status"),
                    "why": _why(states[t.name]), **({"optuna_trial": t.number} if t.number is not None else {})}
                   for t in trials],
        "table": rows, "pareto": pareto_points(rows, metric, cost, front_over),
        "total_device_hours": sum(r["device_hours"] or 0.0 for r in rows),
        "total_cost": sum(costs) if costs else None,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "report": exp.report.model_dump(mode="json"),
    }
    if compare is not None:
        result["compare"] = compare
    write_json(root / "sweep.json", result)
    if exp.report.enabled:
        _write_report(root, console or Console(stderr=True))
    return result


def _write_report(root: Path, console: Console) -> None:
    """The sweep report, rendered from sweep.json and the trials' files; a failure to render
    leaves them intact and says how to re-render."""
    try:
        write_report([root])
    except TunelabError as e:
        console.print(f"sweep report failed ({e}); sweep.json is complete, re-render with "
                      f"`tunelab report {root}`", markup=False, highlight=False)
