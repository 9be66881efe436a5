"""The loop in-process on the smoke config: loss normalisation, packing, trackers, finished runs."""

import builtins
import json
from pathlib import Path

import pytest

from tunelab.config import load_config
from tunelab.errors import TrainingError
from tunelab.runs import read_jsonl
from tunelab.training.loop import train

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def run(tmp_path: Path, name: str, *overrides: str) -> tuple[dict, list[dict]]:
    exp = load_config(SMOKE, ["train.max_steps=6", "train.log_every=1", "train.eval_every=6",
                              "train.save_every=6", *overrides])
    summary = train(exp, tmp_path / name)
    return summary, read_jsonl(tmp_path / name / "train" / "metrics.jsonl")


def losses(rows, split="train"):
    return [r["loss"] for r in rows if r["split"] == split]


def test_grad_accumulation_normalises_by_all_label_tokens(tmp_path):
    """batch 4 x accum 1 and batch 2 x accum 2 see the same examples per step (the data order
    is per micro-batch), so with sum-of-token-losses / token-count normalisation they must
    train identically; a mean of per-micro-batch means would not."""
    a, rows_a = run(tmp_path, "a", "train.batch_size=4", "train.grad_accum=1")
    b, rows_b = run(tmp_path, "b", "train.batch_size=2", "train.grad_accum=2")
    assert losses(rows_a) == pytest.approx(losses(rows_b), rel=1e-5)
    assert a["final_val_loss"] == pytest.approx(b["final_val_loss"], rel=1e-5)
    assert a["tokens_seen"] == b["tokens_seen"] and a["epochs"] == b["epochs"]


def test_gradient_checkpointing_changes_memory_not_losses(tmp_path):
    _, plain = run(tmp_path, "plain")
    _, ckpt = run(tmp_path, "gc", "train.gradient_checkpointing=true")
    assert losses(ckpt) == pytest.approx(losses(plain), rel=1e-5)


def test_bf16_mixed_precision_on_cpu_autocasts_with_float32_weights(tmp_path):
    _, plain = run(tmp_path, "plain")
    summary, mixed = run(tmp_path, "bf16", "train.mixed_precision=bf16")
    assert losses(mixed) != losses(plain)  # the forward pass really ran in bfloat16 ...
    assert losses(mixed) == pytest.approx(losses(plain), rel=0.05)  # ... to within its rounding
    assert summary["stop_reason"] == "max_steps"
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "bf16" / "final" / "adapter_model.safetensors")
    assert {str(t.dtype) for t in weights.values()} == {"torch.float32"}  # master weights stay float32


def test_fp16_mixed_precision_needs_cuda(tmp_path):
    from tunelab.errors import ConfigError

    with pytest.raises(ConfigError, match="train.mixed_precision: fp16 needs a CUDA device"):
        run(tmp_path, "fp16", "train.mixed_precision=fp16", "model.device=cpu")


def test_packed_data_trains_and_logs_every_split(tmp_path):
    summary, rows = run(tmp_path, "p", "data.packing=true", "data.max_seq_len=128")
    assert summary["stop_reason"] == "max_steps" and summary["steps"] == 6
    assert summary["padding_free"] is False  # rows are packed already
    assert summary["base_model"].startswith("base:builtin:tiny-random-qwen2@None#")  # the weights it trained on
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    val = [r for r in rows if r["split"] == "val"][-1]
    assert val["per_source"]["smoke"]["loss"] == pytest.approx(val["loss"])


def test_tensorboard_tracker_writes_events(tmp_path):
    pytest.importorskip("tensorboard")
    run(tmp_path, "tb", "tracking.tensorboard=true")
    assert list((tmp_path / "tb" / "train" / "tensorboard").glob("events.out.tfevents.*"))


def test_missing_mlflow_is_a_clear_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow":
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(TrainingError, match=r"pip install 'tunelab\[tracking\]'"):
        run(tmp_path, "ml", "tracking.mlflow=true")


def test_resuming_a_finished_run_returns_its_summary(tmp_path):
    summary, _ = run(tmp_path, "done")
    exp = load_config(SMOKE, ["train.max_steps=6", "train.log_every=1", "train.eval_every=6", "train.save_every=6"])
    again = train(exp, tmp_path / "done", resume=True)
    assert again == json.loads((tmp_path / "done" / "train" / "summary.json").read_text())
    assert again["steps"] == summary["steps"]


def test_mlflow_tracker_logs_params_and_metrics(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is in the tracking extra (make test installs it)")
    # A local file store keeps the test hermetic; newer MLflow asks for this opt-in.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    run(tmp_path, "ml", "tracking.mlflow=true", f"tracking.mlflow_tracking_uri={uri}")
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("smoke")
    (found,) = client.search_runs([exp.experiment_id])
    assert found.data.params["lora.r"] == "8"
    keys = set(found.data.metrics)
    assert any("loss" in k and "val" in k for k in keys), keys
    assert any("loss" in k and "train" in k for k in keys), keys
    assert found.info.status == "FINISHED"


def test_train_lines_log_token_accuracy_over_the_whole_logging_window(tmp_path):
    """Accuracy comes from the same token_stats call as the loss, summed over every micro-batch
    of every step since the last log line, so it is logged beside each train loss."""
    _, rows = run(tmp_path, "acc", "train.log_every=2", "train.batch_size=2", "train.grad_accum=2")
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [2, 4, 6]
    assert all(0.0 <= r["token_accuracy"] <= 1.0 for r in train_rows)


def test_a_window_saved_before_accuracy_was_counted_logs_no_accuracy():
    from accelerate import Accelerator

    from tunelab.training.batches import DataOrder
    from tunelab.training.loop import LoopState, _flush_window, _from_dict, _to_dict

    state = LoopState(step=2, window=[[2.0, 4.0, 10.0]] * 2)  # [loss_sum, labels, inputs] per step
    resumed = _from_dict(_to_dict(state))
    row, bad = _flush_window(resumed, Accelerator(cpu=True), DataOrder(8, 2, 0, 1, 0))
    assert bad is None and row["loss"] == pytest.approx(0.5) and row["token_accuracy"] is None


def test_cpu_seconds_and_tokens_add_up_over_the_sessions_of_a_resumed_run(tmp_path):
    """train/summary.json's load-independent costs count every session: a resumed run adds its
    own to what the checkpoint it resumed from had counted."""
    import shutil
    import time

    import torch

    exp = load_config(SMOKE, ["train.max_steps=6", "train.log_every=3", "train.eval_every=6", "train.save_every=3"])
    whole = train(exp, tmp_path / "whole")
    assert whole["cpu_time_s"] > 0 and whole["device_time_s"] is None  # no GPU here: CPU seconds only
    run = tmp_path / "resumed"
    train(exp, run)
    # As if killed after step 3, in a session that had counted 1000 CPU seconds and 2000 s of wall time.
    state_file = run / "checkpoints" / "step-3" / "trainer_state.pt"
    state = torch.load(state_file, weights_only=False)
    assert 0 < state["loop"]["cpu_time"] <= whole["cpu_time_s"]
    state["loop"].update(cpu_time=1000.0, wall_time=2000.0)
    torch.save(state, state_file)
    for gone in ("checkpoints/step-6", "final"):
        shutil.rmtree(run / gone)
    (run / "train" / "summary.json").unlink()
    c0 = time.process_time()
    again = train(exp, run, resume=True)
    session = time.process_time() - c0
    assert again["steps"] == 6 and again["tokens_seen"] == whole["tokens_seen"]
    assert 1000.0 < again["cpu_time_s"] <= 1000.0 + session + 0.05
    assert again["wall_time_s"] > 2000.0
    assert json.loads((run / "train" / "summary.json").read_text())["cpu_time_s"] == again["cpu_time_s"]
