"""`tunelab sweep CONFIG`: many trials of one experiment, and the table of what each cost and gave.

    SWEEP_DIR/                      the experiment's run_dir (or --run-dir)
      sweep.json                    trials, their status, the trade-off table, the Pareto front
                                    (computed here once; the report renders them)
      trials/<name>/                one ordinary run directory per trial (tunelab run)
      trials/<name>/trial.json      the trial's overrides, status, pid, return code, error tail
      trials/<name>/trial.log       the trial's output
      report.html, report.md        the sweep report (when report.enabled)

Trials are the product of `sweep.grid` (every combination), `sweep.zip` (lists taken element by
element) and `sweep.seeds`, applied as `--set key=value` overrides, so any config key sweeps,
list indices included (`data.sources.0.weight`). A trial's folder name is made from its own
overrides, so adding a value never renames or overwrites another trial. Each trial runs as its
own `tunelab run` process: a crash, OOM or kill of one trial is recorded and the sweep moves
on, and peak memory is measured per trial. A re-run skips finished trials and resumes the rest
(training continues from its last checkpoint, evaluation from its per-sample cache).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import Experiment, SweepConfig, load_config
from tunelab.errors import ConfigError, TunelabError
from tunelab.progress import track
from tunelab.report import write_report
from tunelab.runs import default_run_dir, read_json, write_json
from tunelab.tradeoff import pareto_points, tradeoff_rows


@dataclass(frozen=True)
class Trial:
    """One point of the sweep: its folder name, `key=value` overrides and the values by key."""

    name: str
    overrides: tuple[str, ...]
    values: dict[str, Any]


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def trial_name(values: dict[str, Any]) -> str:
    """A readable, filesystem-safe folder name from the trial's values (hashed if long)."""
    text = ",".join(f"{k}={_show(v)}" for k, v in values.items())
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text).strip("-") or "trial"
    if len(safe) > 80 or safe != text:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        safe = f"{safe[:70].rstrip('-,')}-{digest}"
    return safe


def expand_trials(sweep: SweepConfig) -> list[Trial]:
    """grid (product) x zip (element-wise) x seeds, in config order."""
    grid = [[(k, v) for v in vals] for k, vals in sweep.grid.items()]
    n_zip = len(next(iter(sweep.zip.values()))) if sweep.zip else 0
    zipped = [[(k, vals[i]) for k, vals in sweep.zip.items()] for i in range(n_zip)] or [[]]
    seeds = [[("seed", s)] for s in sweep.seeds] or [[]]
    trials, seen = [], set()
    for combo in itertools.product(*grid, zipped, seeds):
        values = dict(pair for part in combo for pair in (part if isinstance(part, list) else [part]))
        if not values:
            continue
        name = trial_name(values)
        if name in seen:
            raise ConfigError(f"sweep: two trials would share the folder '{name}'; make the swept values distinct")
        seen.add(name)
        trials.append(Trial(name, tuple(f"{k}={_show(v)}" for k, v in values.items()), values))
    return trials


# ---- running ------------------------------------------------------------------------------------

Launcher = Callable[[list[str], Path, Callable[[int], None]], int]


def launch_process(cmd: list[str], log: Path, on_start: Callable[[int], None]) -> int:
    """Run `cmd` with its output appended to `log`; returns the exit code (-N: killed by signal N)."""
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        on_start(proc.pid)
        try:
            return proc.wait()
        except BaseException:
            proc.terminate()  # Ctrl-C: do not leave the trial running behind the sweep
            proc.wait()
            raise


def _running_trial(pid: int | None, tdir: Path) -> bool:
    """Whether `pid` is alive and (where /proc tells) still the `tunelab run` of this trial,
    not a process that reused the number after the trial died with its sweep."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.is_file():
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            return False
        return not text or str(tdir) in text  # empty: between fork and exec; count it as running
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_sweep(config: Path, overrides: Sequence[str] = (), sweep_dir: Path | None = None,
              console: Console | None = None, launch: Launcher = launch_process) -> dict[str, Any]:
    """Run every trial of `config`'s sweep section (see the module docstring); returns sweep.json."""
    console = console or Console(stderr=True)
    exp = load_config(config, list(overrides))
    from tunelab.evaluation.registry import validate_eval_config

    # A misspelt task or a missing code opt-in fails here, not in every trial after its training.
    validate_eval_config(exp.eval, runs_tasks="eval" in exp.sweep.stages)
    trials = expand_trials(exp.sweep)
    if not trials:
        raise ConfigError("the sweep is empty: set sweep.grid, sweep.zip or sweep.seeds in the config")
    root = Path(sweep_dir) if sweep_dir else default_run_dir(exp)
    (root / "trials").mkdir(parents=True, exist_ok=True)
    status: dict[str, str] = {}
    for i, t in enumerate(track(trials, "sweep trials", console), 1):
        tdir = root / "trials" / t.name
        status[t.name] = _run_trial(t, tdir, config, list(overrides), exp, launch, console, f"[{i}/{len(trials)}]")
    result = summarize_sweep(root, exp, trials, status, config, console)
    failed = [n for n, s in status.items() if s != "done"]
    console.print(f"sweep: {len(trials) - len(failed)}/{len(trials)} trials done; table in {root / 'sweep.json'}"
                  + (f"; not done: {', '.join(failed)}" if failed else ""), markup=False, highlight=False)
    return result


def _run_trial(t: Trial, tdir: Path, config: Path, overrides: list[str], exp: Experiment, launch: Launcher,
               console: Console, tag: str) -> str:
    state_file = tdir / "trial.json"
    state = read_json(state_file) if state_file.is_file() else {}
    if state and tuple(state.get("overrides", ())) != t.overrides:
        raise TunelabError(f"{tdir} belongs to another trial ({state.get('overrides')}); refusing to overwrite it")
    if state.get("status") == "done":
        console.print(f"{tag} {t.name}: done, skipped", markup=False, highlight=False)
        return "done"
    if state.get("status") == "running" and _running_trial(state.get("pid"), tdir):
        console.print(f"{tag} {t.name}: still running as pid {state['pid']}, left alone", markup=False, highlight=False)
        return "running"
    try:  # a bad value fails this trial in milliseconds instead of in a child process
        load_config(config, overrides + list(t.overrides))
    except TunelabError as e:
        tdir.mkdir(parents=True, exist_ok=True)
        write_json(state_file, {**_base_state(t, state), "status": "failed", "error": str(e)})
        console.print(f"{tag} {t.name}: invalid config: {e}", markup=False, highlight=False)
        return "failed"
    tdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "tunelab.cli", "run", str(config), "--run-dir", str(tdir),
           "--only", ",".join(exp.sweep.stages)]
    for o in overrides + list(t.overrides):
        cmd += ["--set", o]
    base = {**_base_state(t, state), "attempts": int(state.get("attempts", 0)) + 1, "command": cmd,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json(state_file, {**base, "status": "running", "pid": None})
    console.print(f"{tag} {t.name}: running (log: {tdir / 'trial.log'})", markup=False, highlight=False)
    t0 = time.time()
    rc = launch(cmd, tdir / "trial.log", lambda pid: write_json(state_file, {**base, "status": "running", "pid": pid}))
    done = {**base, "returncode": rc, "seconds": round(time.time() - t0, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if rc == 0:
        write_json(state_file, {**done, "status": "done"})
        return "done"
    why = _exit_reason(rc)
    write_json(state_file, {**done, "status": "failed", "error": why, "log_tail": _tail(tdir / "trial.log")})
    console.print(f"{tag} {t.name}: failed ({why}); the sweep goes on. Re-run the sweep to resume it.",
                  markup=False, highlight=False)
    return "failed"


def _exit_reason(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def _base_state(t: Trial, old: dict[str, Any]) -> dict[str, Any]:
    return {"name": t.name, "overrides": list(t.overrides), "values": t.values, "attempts": old.get("attempts", 0)}


# ---- the table and the report ------------------------------------------------------------------


def summarize_sweep(root: Path, exp: Experiment, trials: Sequence[Trial], status: dict[str, str],
                    config: Path, console: Console | None = None) -> dict[str, Any]:
    """Write sweep.json, the one computation of the trade-off table and Pareto front, from the
    trial folders; then the sweep report from it (when report.enabled)."""
    rows = tradeoff_rows([root / "trials" / t.name for t in trials], exp.report.price_per_device_hour)
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    result = {
        "name": exp.name, "config": str(config), "sweep": exp.sweep.model_dump(mode="json"),
        "price_per_device_hour": exp.report.price_per_device_hour, "currency": exp.report.currency,
        "trials": [{"name": t.name, "values": t.values, "status": status.get(t.name)} for t in trials],
        "table": rows, "pareto": pareto_points(rows, exp.sweep.metric, exp.sweep.cost),
        "total_device_hours": sum(r["device_hours"] or 0.0 for r in rows),
        "total_cost": sum(costs) if costs else None,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
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
