"""One trial as one `tunelab run` process: its command, its bookkeeping in trial.json, and how
it ends (done, failed with the reason, or pruned when the sweep asked it to stop).

A pruned trial is stopped through a file, `trials/<name>/stop`, which the process that waits on
the trial (a thread of the sweep, or a Ray task on another node) watches; so stopping works the
same wherever the trial runs, as long as the sweep directory is shared.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import Experiment, load_config
from tunelab.errors import TunelabError
from tunelab.runs import read_json, write_json
from tunelab.sweep.trials import Trial

# (cmd, log, on_start) -> exit code; -N: killed by signal N.
Launcher = Callable[[list[str], Path, Callable[[int], None]], int]
# Called every few seconds while a trial runs: a reason to prune it, or None to let it go on.
Watch = Callable[[], "str | None"]

STOP_FILE = "stop"
WATCH_EVERY_S = 0.25


def launch_process(cmd: list[str], log: Path, on_start: Callable[[int], None], env: dict[str, str] | None = None,
                   cpus: Sequence[int] | None = None) -> int:
    """Run `cmd` with its output appended to `log`; returns the exit code (-N: killed by signal N).

    Args:
        cmd: the command (a `tunelab run`).
        log: file the output is appended to.
        on_start: called with the pid once the process runs.
        env: variables set for this process on top of ours (its devices, its thread count).
        cpus: cores the process is pinned to (where the OS allows it).

    The process (its whole group) is terminated when a file `STOP_FILE` appears beside `log`.
    """
    stop_file = log.parent / STOP_FILE
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        # Its own process group, so that stopping it also stops what it started (accelerate, sandboxes).
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        if cpus and hasattr(os, "sched_setaffinity"):
            try:  # before the child imports torch, so its thread pool starts on these cores
                os.sched_setaffinity(proc.pid, set(cpus))
            except OSError:
                pass
        on_start(proc.pid)
        try:
            while True:
                try:
                    return proc.wait(timeout=WATCH_EVERY_S)
                except subprocess.TimeoutExpired:
                    if stop_file.exists():
                        return _stop(proc)
        except BaseException:
            _stop(proc)  # Ctrl-C: do not leave the trial running behind the sweep
            raise


def _stop(proc: subprocess.Popen, grace_s: float = 10.0) -> int:
    """SIGTERM to the trial's group, SIGKILL after `grace_s`; its exit code."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def running_trial(pid: int | None, tdir: Path) -> bool:
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


def tail(path: Path, lines: int = 15) -> str:
    """The last `lines` lines of a log ("" when unreadable)."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def exit_reason(rc: int) -> str:
    """"exit code N" or "killed by SIGNAME"."""
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def _say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False)


def run_trial(t: Trial, tdir: Path, config: Path, overrides: list[str], exp: Experiment, launch: Launcher,
              console: Console, tag: str, watch: Watch | None = None, where: str = "") -> str:
    """Run one trial in `tdir` (or skip it when done, leave it when still running); its status:
    done, failed, pruned or running. `watch` decides on pruning while it runs."""
    state_file = tdir / "trial.json"
    state = read_json(state_file) if state_file.is_file() else {}
    if state and tuple(state.get("overrides", ())) != t.overrides:
        raise TunelabError(f"{tdir} belongs to another trial ({state.get('overrides')}); refusing to overwrite it")
    if state.get("status") in ("done", "pruned"):
        _say(console, f"{tag} {t.name}: {state['status']}, skipped")
        return state["status"]
    if state.get("status") == "running" and running_trial(state.get("pid"), tdir):
        _say(console, f"{tag} {t.name}: still running as pid {state['pid']}, left alone")
        return "running"
    try:  # a bad value fails this trial in milliseconds instead of in a child process
        load_config(config, overrides + list(t.overrides))
    except TunelabError as e:
        tdir.mkdir(parents=True, exist_ok=True)
        write_json(state_file, {**_base_state(t, state), "status": "failed", "error": str(e)})
        _say(console, f"{tag} {t.name}: invalid config: {e}")
        return "failed"
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / STOP_FILE).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "tunelab.cli", "run", str(config), "--run-dir", str(tdir),
           "--only", ",".join(exp.sweep.stages)]
    for o in overrides + list(t.overrides):
        cmd += ["--set", o]
    base = {**_base_state(t, state), "attempts": int(state.get("attempts", 0)) + 1, "command": cmd,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json(state_file, {**base, "status": "running", "pid": None})
    _say(console, f"{tag} {t.name}: running{where} (log: {tdir / 'trial.log'})")
    t0 = time.time()
    pruned: list[str] = []
    watcher = _Watcher(watch, tdir / STOP_FILE, pruned) if watch else None
    try:
        rc = launch(cmd, tdir / "trial.log", lambda pid: write_json(state_file, {**base, "status": "running", "pid": pid}))
    finally:
        if watcher:
            watcher.finish()
    done = {**base, "returncode": rc, "seconds": round(time.time() - t0, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if pruned and rc != 0:
        write_json(state_file, {**done, "status": "pruned", "reason": pruned[0]})
        _say(console, f"{tag} {t.name}: pruned ({pruned[0]})")
        return "pruned"
    if rc == 0:
        write_json(state_file, {**done, "status": "done"})
        _say(console, f"{tag} {t.name}: done")
        return "done"
    why = exit_reason(rc)
    write_json(state_file, {**done, "status": "failed", "error": why, "log_tail": tail(tdir / "trial.log")})
    _say(console, f"{tag} {t.name}: failed ({why}); the sweep goes on. Re-run the sweep to resume it.")
    return "failed"


class _Watcher:
    """Calls `watch` while the trial runs; on its first reason, writes the stop file."""

    def __init__(self, watch: Watch, stop_file: Path, reasons: list[str]) -> None:
        self.watch, self.stop_file, self.reasons = watch, stop_file, reasons
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.ended.wait(WATCH_EVERY_S):
            if self._check():
                return

    def _check(self) -> bool:
        reason = self.watch()
        if reason:
            self.reasons.append(reason)
            self.stop_file.write_text(reason + "\n", encoding="utf-8")
        return bool(reason)

    def finish(self) -> None:
        self.ended.set()
        self.thread.join()
        if not self.reasons:
            self.watch()  # rows written since the last look are still reported (too late to stop)


def _base_state(t: Trial, old: dict[str, Any]) -> dict[str, Any]:
    out = {"name": t.name, "overrides": list(t.overrides), "values": t.values, "attempts": old.get("attempts", 0)}
    return out if t.number is None else {**out, "optuna_trial": t.number}
