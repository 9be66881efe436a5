"""Sweep wall time: 4 trials one after another vs 2 side by side, same trials, same machine.

    python bench/sweep_parallel.py [--concurrent 2] [--steps 20]

The 4-trial sweep is configs/sweep-lora.yaml with four (r, alpha) pairs. The serial sweep is
what a user gets without `sweep.max_concurrent` (one trial at a time, every core its own); the
concurrent one runs `--concurrent` trials at once, the cores split between them (affinity and
OMP_NUM_THREADS per trial). Both run in this one invocation, each in a fresh sweep directory;
the ratio is serial / concurrent wall time. A trial of a small model spends much of its time in
one-core work (starting Python, imports, data, evaluation), which a second trial overlaps.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZIP = "sweep.zip={lora.r: [2, 4, 8, 16], lora.alpha: [4, 8, 16, 32]}"


def sweep_seconds(sweep_dir: Path, concurrent: int, steps: int) -> float:
    """Wall time of one whole `tunelab sweep` (4 trials) with `concurrent` trials at once."""
    cmd = [sys.executable, "-m", "tunelab.cli", "sweep", str(ROOT / "configs" / "sweep-lora.yaml"),
           "--run-dir", str(sweep_dir), "--set", ZIP, "--set", f"train.max_steps={steps}",
           "--set", f"sweep.max_concurrent={concurrent}", "--set", "report.enabled=false"]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"sweep failed:\n{res.stdout}\n{res.stderr}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        serial = sweep_seconds(Path(tmp) / "serial", 1, args.steps)
        side = sweep_seconds(Path(tmp) / "concurrent", args.concurrent, args.steps)
    print(f"4-trial sweep on {cores} cores, {args.steps} steps per trial")
    print(f"  serial (1 at a time):           {serial:7.1f} s")
    print(f"  side by side ({args.concurrent} at a time):    {side:7.1f} s")
    print(f"  ratio serial / side by side:    {serial / side:7.2f}x")


if __name__ == "__main__":
    main()
