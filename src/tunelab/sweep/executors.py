"""Where trials run: side by side on this machine, each pinned to its own devices, or as Ray tasks.

Both hand out *slots*: a slot is one launcher (one trial at a time), and the sweep runs one
worker thread per slot, so `max_concurrent` trials run at once. Locally a slot owns a group of
GPUs (CUDA_VISIBLE_DEVICES) or, on CPU, a share of the cores (affinity + OMP_NUM_THREADS); on
Ray a slot submits its trial as a task with its resource request, and Ray places it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tunelab.config import SweepConfig
from tunelab.errors import ConfigError, TunelabError
from tunelab.sweep.launch import STOP_FILE, Launcher, launch_process

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class Slot:
    """One place a trial runs: its launcher and a label for the log ("GPUs 2,3", "cores 0-7")."""

    launch: Launcher
    label: str = ""


def visible_gpus() -> list[str]:
    """The GPU ids this process may use (CUDA_VISIBLE_DEVICES when set, else every CUDA device)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in (x.strip() for x in env.split(",")) if g and g != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def usable_cores() -> list[int]:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def local_slots(sweep: SweepConfig, n_trials: int, gpus: list[str] | None = None, cores: list[int] | None = None) -> list[Slot]:
    """Slots on this machine: one per group of `gpus_per_trial` GPUs, or on CPU a share of the
    cores each (see the module docstring).

    Args:
        sweep: the sweep section (max_concurrent, gpus_per_trial, cpus_per_trial).
        n_trials: trials to run (no more slots than that).
        gpus: GPU ids to share (default: the visible ones); cores: likewise for CPU cores.
    """
    gpus = visible_gpus() if gpus is None else gpus
    cores = usable_cores() if cores is None else cores
    k = sweep.gpus_per_trial
    if gpus and k:
        if k > len(gpus):
            raise ConfigError(f"sweep.gpus_per_trial={k} but this machine shows {len(gpus)} GPU(s)")
        groups = [gpus[i:i + k] for i in range(0, len(gpus) - k + 1, k)]
        n = min(sweep.max_concurrent or len(groups), len(groups), max(n_trials, 1))
        per_cpu = sweep.cpus_per_trial or max(1, len(cores) // n)
        return [Slot(functools.partial(launch_process, env={"CUDA_VISIBLE_DEVICES": ",".join(g),
                                                            **dict.fromkeys(THREAD_VARS, str(per_cpu))}),
                     f" on GPU {','.join(g)}") for g in groups[:n]]
    n = min(sweep.max_concurrent or 1, max(n_trials, 1))
    per = sweep.cpus_per_trial or max(1, len(cores) // n)
    slots = []
    for i in range(n):
        share = cores[i * per:(i + 1) * per] or cores[(i * per) % len(cores):][:per] or cores
        env = dict.fromkeys(THREAD_VARS, str(len(share)))
        if gpus:  # a CPU trial on a GPU machine (gpus_per_trial: 0) sees no GPU
            env["CUDA_VISIBLE_DEVICES"] = ""
        label = f" on cores {share[0]}-{share[-1]}" if n > 1 else ""
        slots.append(Slot(functools.partial(launch_process, env=env, cpus=share if n > 1 else None), label))
    return slots


# ---- Ray -----------------------------------------------------------------------------------------


def _ray():
    try:
        import ray
    except ImportError as e:
        raise TunelabError("sweep.executor=ray needs Ray: pip install 'tunelab[sweep]' (or pip install ray)") from e
    return ray


def _trial_task(cmd: list[str], log: str, state_file: str, base: dict) -> int:
    """Runs on a Ray worker: the trial's `tunelab run` with this node's Python, the pid written
    to trial.json (the sweep directory is shared), stopped when its stop file appears."""
    from tunelab.runs import write_json

    def on_start(pid: int) -> None:
        write_json(Path(state_file), {**base, "status": "running", "pid": pid, "node": os.uname().nodename})

    return launch_process([sys.executable, *cmd[1:]], Path(log), on_start)


class RayCluster:
    """A connection to a Ray cluster for one sweep: `ray_address`, or a local one it starts."""

    def __init__(self, sweep: SweepConfig) -> None:
        self.ray, self.sweep = _ray(), sweep
        self.started = not self.ray.is_initialized()
        if self.started:
            env = {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}  # a source checkout on workers
            kwargs = {"address": sweep.ray_address} if sweep.ray_address else {"num_cpus": len(usable_cores())}
            self.ray.init(**kwargs, include_dashboard=False, log_to_driver=False,
                          runtime_env={"env_vars": env} if env else None)
        cpus = sweep.cpus_per_trial or 1
        gpus = sweep.gpus_per_trial if self.ray.cluster_resources().get("GPU") else 0
        self.task = self.ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_trial_task)
        self.resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}

    def slots(self, n_trials: int) -> list[Slot]:
        """One slot per trial the cluster holds at once (or `max_concurrent`)."""
        have = self.ray.cluster_resources()
        fits = min(int(have.get(k, 0) // v) for k, v in self.resources.items())
        if fits < 1:
            raise TunelabError(f"the Ray cluster ({have}) cannot hold one trial ({self.resources})")
        n = min(self.sweep.max_concurrent or fits, max(n_trials, 1))
        return [Slot(self._launch, " on Ray") for _ in range(n)]

    def _launch(self, cmd: list[str], log: Path, on_start: Callable[[int], None]) -> int:
        from tunelab.runs import read_json

        state_file = log.parent / "trial.json"
        ref = self.task.remote(cmd, str(log), str(state_file), read_json(state_file))
        try:
            return int(self.ray.get(ref))
        except self.ray.exceptions.RayError as e:  # the worker or its node died
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"\nRay: {type(e).__name__}: {e}\n")
            return 1
        except BaseException:
            (log.parent / STOP_FILE).write_text("sweep interrupted\n", encoding="utf-8")
            self.ray.cancel(ref)
            raise

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
