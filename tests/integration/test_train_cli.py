"""`tunelab train` end to end on the smoke config: files, plain-PEFT adapters, kill -9 + resume,
non-finite loss, early stopping, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"
# Long enough (about 2 s of steps) that a run can be killed between two checkpoints.
ARGS = ["--set", "train.max_steps=120", "--set", "train.save_every=20", "--set", "train.eval_every=60",
        "--set", "train.log_every=10"]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def train_cmd(run_dir: Path, *extra: str, config: Path = SMOKE) -> list[str]:
    return [sys.executable, "-m", "tunelab.cli", "train", str(config), "--run-dir", str(run_dir), *extra]


def tunelab_train(run_dir: Path, *extra: str, config: Path = SMOKE, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(train_cmd(run_dir, *extra, config=config), cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "train" / "metrics.jsonl").read_text().splitlines()]


def curve(run_dir: Path) -> dict[tuple[int, str], float]:
    """(step, split) -> loss; also asserts no (step, split) is logged twice."""
    rows = metrics(run_dir)
    keys = [(r["step"], r["split"]) for r in rows]
    assert len(keys) == len(set(keys)), f"duplicate metric lines: {keys}"
    return {(r["step"], r["split"]): r["loss"] for r in rows}


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "train" / "summary.json").read_text())


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("train") / "baseline"
    tunelab_train(run_dir, *ARGS)
    return run_dir


def test_run_directory_holds_everything(baseline):
    for name in ("config.yaml", "env.json", "data/stats.json", "data/train.manifest.jsonl",
                 "train/metrics.jsonl", "train/summary.json", "final/adapter_model.safetensors",
                 "final/adapter_config.json"):
        assert (baseline / name).is_file(), name
    env_json = json.loads((baseline / "env.json").read_text())
    assert env_json["seed"] == 0 and env_json["world_size"] == 1 and env_json["versions"]["peft"]

    rows = metrics(baseline)
    train = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train] == list(range(10, 121, 10))
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "epoch"} <= set(train[0])
    for split in ("val", "test"):
        evals = [r for r in rows if r["split"] == split]
        assert [r["step"] for r in evals] == [0, 60, 120]  # step 0: the base model
        assert 0.0 <= evals[-1]["token_accuracy"] <= 1.0 and "smoke" in evals[-1]["per_source"]

    s = summary(baseline)
    assert s["stop_reason"] == "max_steps" and s["steps"] == 120 and s["world_size"] == 1
    for key in ("wall_time_s", "peak_memory_mb", "trainable_params", "total_params", "tokens_seen",
                "tokens_per_s", "epochs", "best_step", "best_val_loss", "final_val_loss",
                "final_test_loss", "final_val_token_accuracy", "final_test_token_accuracy"):
        assert s[key] is not None, key
    assert 0 < s["trainable_params"] < s["total_params"]
    assert s["final_val_loss"] == pytest.approx([r for r in rows if r["split"] == "val"][-1]["loss"])

    # keep_last 2, plus the best checkpoint; each a plain PEFT adapter with resume state.
    steps = sorted(int(p.name.split("-")[1]) for p in (baseline / "checkpoints").iterdir())
    assert steps[-2:] == [100, 120] and s["best_step"] in steps and len(steps) <= 3
    for step in steps:
        ckpt = baseline / "checkpoints" / f"step-{step}"
        assert {"adapter_model.safetensors", "adapter_config.json", "trainer_state.pt", "state.json"} <= {
            p.name for p in ckpt.iterdir()}


def test_adapter_loads_in_plain_peft_and_changes_the_logits(baseline):
    from tunelab.models.loading import resolve_model_path

    script = """
import sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base = AutoModelForCausalLM.from_pretrained(sys.argv[1])
ids = torch.tensor([[10, 200, 3000, 40, 5]])
with torch.no_grad():
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, sys.argv[2])
    after = tuned(ids).logits
assert not any(m.startswith("tunelab") for m in sys.modules), "tunelab was imported"
print((after - before).abs().max().item())
"""
    base = resolve_model_path("builtin:tiny-random-qwen2")
    proc = subprocess.run([sys.executable, "-c", script, base, str(baseline / "final")], env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert float(proc.stdout.strip().splitlines()[-1]) > 1e-4


def test_same_config_and_seed_give_identical_losses(baseline, tmp_path):
    tunelab_train(tmp_path / "again", *ARGS)
    assert curve(tmp_path / "again") == curve(baseline)


def test_kill_9_then_resume_ends_like_an_uninterrupted_run(baseline, tmp_path):
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(run_dir, *ARGS), cwd=ROOT, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = run_dir / "checkpoints" / "step-20" / "state.json"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run_dir / "final").exists() and not (run_dir / "train" / "summary.json").exists()

    refused = tunelab_train(run_dir, *ARGS, ok=False)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    tunelab_train(run_dir, *ARGS, "--resume")
    assert curve(run_dir) == curve(baseline)  # exact on CPU, and no duplicated steps
    a, b = summary(run_dir), summary(baseline)
    for key in ("final_val_loss", "final_test_loss", "final_val_token_accuracy", "best_step", "tokens_seen", "epochs"):
        assert a[key] == b[key], key
    env_json = json.loads((run_dir / "env.json").read_text())
    assert len(env_json["resumes"]) == 1


def test_resume_refuses_a_changed_learning_rate(baseline, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(baseline, run_dir)
    proc = tunelab_train(run_dir, *ARGS, "--set", "train.lr=0.01", "--resume", ok=False)
    assert proc.returncode == 2
    assert "train.lr" in proc.stderr and "another --run-dir" in proc.stderr


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tunelab.cli import app
    from tunelab.errors import TrainingError
    from tunelab.training import metrics as metrics_module

    real = metrics_module.token_stats
    calls = {"train": 0}

    def poisoned(logits, labels, shifted=False, accuracy=True):
        out = real(logits, labels, shifted=shifted, accuracy=accuracy)
        if torch.is_grad_enabled():  # a training forward pass (evaluation runs without gradients)
            calls["train"] += 1
            if calls["train"] >= 13:
                return (out[0] * float("nan"), *out[1:])
        return out

    monkeypatch.setattr(metrics_module, "token_stats", poisoned)
    run_dir = tmp_path / "nan"
    result = CliRunner().invoke(app, ["train", str(SMOKE), "--run-dir", str(run_dir)])
    assert isinstance(result.exception, TrainingError)
    msg = str(result.exception)
    assert "loss became nan at step 13" in msg and "last good checkpoint: step-10" in msg and "train.lr" in msg
    assert (run_dir / "checkpoints" / "step-10" / "adapter_model.safetensors").exists()
    assert not (run_dir / "checkpoints" / "step-15").exists() and not (run_dir / "final").exists()
    assert summary(run_dir)["stop_reason"] == "nan"
    assert max(r["step"] for r in metrics(run_dir)) <= 10


def test_early_stopping_keeps_the_best_checkpoint(tmp_path):
    """Full fine-tuning of the tiny model on 16 examples overfits within ~60 steps."""
    config = tmp_path / "overfit.yaml"
    text = SMOKE.read_text().replace("path: data/smoke.jsonl", f"path: {ROOT / 'configs/data/smoke.jsonl'}")
    config.write_text(text.replace("      format: alpaca", "      format: alpaca\n      max_examples: 16"))
    run_dir = tmp_path / "es"
    tunelab_train(run_dir, "--set", "lora.enabled=false", "--set", "train.lr=0.003", "--set", "train.max_steps=200",
                  "--set", "train.warmup_steps=0", "--set", "train.scheduler=constant", "--set", "train.eval_every=10",
                  "--set", "train.save_every=100", "--set", "train.early_stopping.patience=1", config=config)
    s = summary(run_dir)
    assert s["stop_reason"] == "early_stopping" and s["steps"] < 200
    vals = {r["step"]: r["loss"] for r in metrics(run_dir) if r["split"] == "val"}
    assert s["steps"] == max(vals) and vals[s["steps"]] > s["best_val_loss"] == min(vals.values())
    best = run_dir / "checkpoints" / f"step-{s['best_step']}"
    assert (best / "model.safetensors").exists()  # full fine-tuning saves the whole model
    assert (run_dir / "final" / "model.safetensors").exists()
