"""Sweeps on real trials of the smoke setup: two trials side by side on CPU, an Optuna search
that prunes the useless learning rate before its last step, and Ray (a local 2-CPU cluster)
surviving a trial killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _sweep(config: str, sweep_dir: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tunelab.cli", "sweep", str(ROOT / "configs" / config), "--run-dir", str(sweep_dir),
           "--set", "eval.limit=4", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow  # two real trials (~15 s); .ci/run runs this whole file with --runslow after the default suite
def test_two_cpu_trials_run_side_by_side(tmp_path):
    proc = _sweep("sweep-lora.yaml", tmp_path, "--set", "sweep.max_concurrent=2")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    states = [json.loads(p.read_text()) for p in sorted((tmp_path / "trials").glob("*/trial.json"))]
    assert len(states) == 2 and all(s["status"] == "done" for s in states)
    first, second = sorted(states, key=lambda s: s["started"])
    assert second["started"] < first["finished"]  # they overlapped
    logs = " ".join(out.split())
    assert "on cores" in logs or os.cpu_count() == 1
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert all(r["best_val_loss"] and r["trainable_params"] for r in sweep["table"])


@pytest.mark.slow  # two real trials one after the other: minutes on a shared CPU
def test_optuna_prunes_the_useless_learning_rate_before_its_last_step(tmp_path):
    pytest.importorskip("optuna")
    # The sweep reads metrics.jsonl while the trial trains: 150 steps (eval every 10) leave a
    # fast machine far more than the watcher's poll interval between the verdict and the end.
    proc = _sweep("sweep-optuna.yaml", tmp_path, "--set", "train.max_steps=150")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    by_lr = {t["values"]["train.lr"]: t for t in sweep["trials"]}
    assert by_lr[0.001]["status"] == "done", out
    assert by_lr[1e-7]["status"] == "pruned", out
    rows = [json.loads(x) for x in (tmp_path / "trials" / by_lr[1e-7]["name"] / "train" / "metrics.jsonl").open()]
    assert max(r["step"] for r in rows) < 150
    html = (tmp_path / "report.html").read_text()
    assert "pruned" in html and "fell behind" in html and "Searched with Optuna" in html


@pytest.mark.slow  # a Ray cluster starts, and two trials train on it: over a minute on 2 cores
def test_ray_runs_the_sweep_and_survives_a_killed_trial(tmp_path):
    pytest.importorskip("ray")
    first = tmp_path / "trials" / "lora.r=4,lora.alpha=8"
    proc = _sweep("sweep-lora.yaml", tmp_path, "--set", "sweep.executor=ray", "--set", "train.max_steps=200",
                  "--set", "train.eval_every=100", "--set", "train.save_every=10", "--set", "sweep.cpus_per_trial=1")
    deadline = time.time() + 400
    while time.time() < deadline:
        state = json.loads((first / "trial.json").read_text()) if (first / "trial.json").is_file() else {}
        if state.get("pid") and (first / "checkpoints" / "step-10").is_dir():
            os.kill(state["pid"], signal.SIGKILL)
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.1)
    else:
        pytest.fail("trial 1 never wrote a checkpoint")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [t["status"] for t in sweep["trials"]] == ["failed", "done"], out
    killed = json.loads((first / "trial.json").read_text())
    assert killed["error"] == "killed by SIGKILL"
    done = {r["name"]: r for r in sweep["table"]}["lora.r=16,lora.alpha=32"]
    assert done["trainable_params"] and done["best_val_loss"] and done["scores"]["loss/loss"]["value"]
