"""The run directory: one folder per experiment holding everything it produced.

    RUN_DIR/
      config.yaml            resolved Experiment (Experiment.to_yaml())
      env.json               versions, hardware, git sha, seed, command line
      data/                  split manifests and stats (written by the data layer)
      train/metrics.jsonl    one JSON object per logged step (split: train / val / test)
      train/summary.json     what the training run ended with
      checkpoints/step-N/    PEFT adapter + trainer_state.pt + state.json
      final/                 PEFT adapter of the last step

JSON files are written atomically (tmp file + os.replace), so a crash never leaves half a
file; metrics.jsonl is appended and flushed line by line.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tunelab.config import Experiment
from tunelab.errors import TrainingError

# Config keys that do not change what training computes: they may differ on --resume.
# Everything else (model, lora, data, seed, optimisation, schedule, eval_every / early stopping,
# which decide the best checkpoint and when to stop) must match the saved config.yaml.
RESUME_SAFE_KEYS = (
    "name",
    "run_dir",
    "tracking",
    "train.generation_metric",
    "eval",
    "compare",
    "sweep",
    "report",
    "train.log_every",
    "train.save_every",
    "train.keep_last",
    "train.keep_best",
    "train.num_workers",
    "train.eval_batch_size",
    "train.compile",
    "model.device",
    "model.attn_implementation",
)
# Keys under a safe section that training reads all the same: chat templates with a thinking
# switch render the training chats with `eval.enable_thinking` (one setting, trained as scored).
RESUME_UNSAFE_KEYS = ("eval.enable_thinking",)


@dataclass(frozen=True)
class RunPaths:
    """Every path of the run-directory layout, so no other module spells a file name."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def env(self) -> Path:
        return self.root / "env.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def metrics(self) -> Path:
        return self.root / "train" / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "train" / "summary.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def final(self) -> Path:
        return self.root / "final"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step}"

    def generations(self, step: int) -> Path:
        """The in-training generation metric's replies at `step`."""
        return self.train / "generations" / f"step-{step}.jsonl"


def default_run_dir(exp: Experiment) -> Path:
    """`exp.run_dir` if set, else `runs/<name>` under the working directory."""
    return Path(exp.run_dir) if exp.run_dir else Path("runs") / exp.name


# --------------------------------------------------------------------------------------------
# Atomic files
# --------------------------------------------------------------------------------------------


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-able object (canonical JSON: sorted keys), for cache keys.

    Values JSON cannot hold (paths, enums) are hashed by their `str`. Hashing a file's bytes is
    another thing; this is for settings and records.
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write `text` to `path` so that readers see the old file or the new one, never half.

    `durable=False` skips the fsync: for many small files that can be recomputed (cache records).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's own temporary (process and thread): concurrent writers never share one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    """Atomic, pretty JSON (non-finite floats are written as null)."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def append_jsonl(path: Path, obj: dict[str, Any]) -> None:
    """Append one JSON line and flush it, so a killed run loses at most the line in flight."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(json_safe(obj)) + "\n")
        f.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete lines of a JSONL file; a torn last line (killed mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_metrics(path: Path, after_step: int) -> int:
    """Drop metric lines with step > `after_step` (resume re-logs them); returns lines dropped."""
    rows = read_jsonl(path)
    kept = [r for r in rows if r.get("step", 0) <= after_step]
    if len(kept) != len(rows) or (path.exists() and not rows):
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
    return len(rows) - len(kept)


def json_safe(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every reader can parse the file."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------------
# Environment capture
# --------------------------------------------------------------------------------------------


def capture_env(seed: int, world_size: int = 1) -> dict[str, Any]:
    """Versions, hardware, git sha and command line: what is needed to reproduce a run."""
    import torch

    env: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        "seed": seed,
        "world_size": world_size,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {"torch": torch.__version__},
        "gpu": None,
        "git_sha": _git_sha(),
    }
    for name in ("tunelab", "transformers", "peft", "accelerate", "datasets"):
        try:
            env["versions"][name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is just not recorded
            env["versions"][name] = None
    if torch.cuda.is_available():
        env["gpu"] = {
            "name": torch.cuda.get_device_name(0),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
        }
    return env


def peak_memory(device) -> dict[str, Any]:
    """Peak memory of this process: CUDA allocator peak on a GPU, else the process's peak RSS."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return {"peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "peak_memory_kind": "cuda_max_allocated"}
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        mb = peak / 2**20 if sys.platform == "darwin" else peak / 1024
        return {"peak_memory_mb": round(mb, 1), "peak_memory_kind": "cpu_peak_rss"}
    except (ImportError, OSError):
        import psutil

        return {"peak_memory_mb": round(psutil.Process().memory_info().rss / 2**20, 1), "peak_memory_kind": "cpu_rss"}


def _git_sha() -> str | None:
    """The tunelab checkout's commit (with '-dirty' if it has local changes), if in a repo."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------------
# Starting or resuming a run
# --------------------------------------------------------------------------------------------


def add_stage_seconds(entry: dict[str, Any], seconds: float) -> None:
    """Account one session of a stage in its pipeline.json entry: `seconds` of this session,
    `seconds_total` over all sessions (what the report's cost adds up), `sessions` counted."""
    entry["seconds"] = round(seconds, 2)
    entry["seconds_total"] = round(entry.get("seconds_total", 0.0) + entry["seconds"], 2)
    entry["sessions"] = entry.get("sessions", 0) + 1


@contextmanager
def accounted(run_dir: Path | None, stage: str) -> Iterator[None]:
    """Time a stand-alone stage command (`tunelab eval RUN`, `tunelab compare RUN`) and add it to
    the run's pipeline.json like a `tunelab run` session, failed or not (the time was spent)."""
    t0, ok = time.time(), False
    try:
        yield
        ok = True
    finally:
        if run_dir is not None and (Path(run_dir) / "config.yaml").is_file():
            path = Path(run_dir) / "pipeline.json"
            try:
                state = read_json(path) if path.is_file() else {"stages": {}}
            except (OSError, ValueError):
                state = {"stages": {}}
            new = {"status": "done" if ok else "failed", "note": f"tunelab {stage} RUN_DIR", "seconds_total": 0.0}
            entry = state.setdefault("stages", {}).setdefault(stage, new)
            add_stage_seconds(entry, time.time() - t0)
            write_json(path, state)


def has_checkpoints(paths: RunPaths) -> bool:
    """Whether a finished `checkpoints/step-N/` exists (`step-N.tmp` leftovers do not count)."""
    return paths.checkpoints.is_dir() and any(
        p.is_dir() and re.fullmatch(r"step-\d+", p.name) for p in paths.checkpoints.iterdir()
    )


def prepare_run_dir(
    exp: Experiment, run_dir: Path, resume: bool, world_size: int = 1, write: bool = True
) -> RunPaths:
    """Create or re-open a run directory; write config.yaml and env.json.

    A directory that already holds checkpoints is only reused with `resume=True`, and then the
    saved config.yaml must agree with `exp` on every key that changes results. Every process
    runs the checks (so all of them fail together); only the one with `write=True` writes.
    """
    paths = RunPaths(Path(run_dir))
    if has_checkpoints(paths) and not resume:
        raise TrainingError(
            f"run directory {paths.root} already holds checkpoints; pass --resume to continue "
            "that run, or choose another --run-dir"
        )
    if resume and paths.config.exists():
        check_resume_config(yaml.safe_load(paths.config.read_text(encoding="utf-8")), exp, warn=write)
    if not write:
        return paths
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.train.mkdir(exist_ok=True)
    env = capture_env(exp.seed, world_size)
    if resume and paths.config.exists():
        if paths.env.exists():
            old = read_json(paths.env)
            old.setdefault("resumes", []).append(
                {k: env[k] for k in ("time", "command", "world_size", "git_sha")}
            )
            env = old
    atomic_write_text(paths.config, exp.to_yaml())
    write_json(paths.env, env)
    return paths


def check_resume_config(saved: dict[str, Any], exp: Experiment, warn: bool = True) -> None:
    """Compare a run's saved config with the one given on --resume.

    Differences in keys that change results raise `TrainingError` naming each key; differences
    elsewhere (logging, tracking, later stages) only warn.
    """
    current = exp.model_dump(mode="json")
    try:
        # A key added to tunelab after the run was made is missing from its config.yaml: it
        # ran with that key's default, so the saved config is compared with defaults filled in.
        saved = type(exp).model_validate(saved).model_dump(mode="json")
    except ValueError:
        pass  # a config an older or newer tunelab cannot read: compare it as it is
    diffs = config_diff(saved, current)
    if not diffs:
        return
    fatal = {k: v for k, v in diffs.items() if not _resume_safe(k)}
    lines = [f"  {k}: {a!r} -> {b!r}" for k, (a, b) in diffs.items()]
    if fatal:
        shown = "\n".join(f"  {k}: {a!r} (run) -> {b!r} (now)" for k, (a, b) in fatal.items())
        raise TrainingError(
            "cannot resume: the config differs from the run's config.yaml in keys that change "
            f"results:\n{shown}\nrestore them, or start a new run with another --run-dir"
        )
    if warn:
        warnings.warn("resuming with a changed config (keys that do not change results):\n" + "\n".join(lines),
                      stacklevel=2)


def config_diff(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two nested config dicts, with (old, new)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for key in list(old) + [k for k in new if k not in old]:
            out.update(config_diff(old.get(key), new.get(key), f"{prefix}{key}."))
        return out
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        old, new = list(old), list(new)
    return {} if old == new else {prefix.rstrip("."): (old, new)}


def _resume_safe(key: str) -> bool:
    if key in RESUME_UNSAFE_KEYS:
        return False
    return any(key == k or key.startswith(k + ".") for k in RESUME_SAFE_KEYS)
