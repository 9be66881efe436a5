"""Checkpoints: plain PEFT files, exact round trip, half-written saves never picked up, pruning."""

import random

import numpy as np
import pytest
import torch

from tunelab.config import LoraConfig, ModelConfig, TrainConfig
from tunelab.runs import RunPaths
from tunelab.training import checkpoint as ckpt
from tunelab.training.schedule import build_optimizer, build_scheduler


def make(lora: bool = True):
    from tunelab.models.loading import load_model
    from tunelab.models.lora import attach_lora

    torch.manual_seed(0)
    model = attach_lora(load_model(ModelConfig(name="builtin:tiny-random-qwen2"), "cpu"), LoraConfig(r=4, enabled=lora))
    cfg = TrainConfig(lr=1e-2)
    opt = build_optimizer(model, cfg)
    return model, opt, build_scheduler(opt, cfg, total=10)


def train_a_step(model, opt, sched):
    ids = torch.arange(10, 30)[None]
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    sched.step()
    opt.zero_grad()


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_round_trip_restores_weights_optimizer_rng(tmp_path, lora):
    paths = RunPaths(tmp_path)
    model, opt, sched = make(lora)
    train_a_step(model, opt, sched)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    out = ckpt.save_checkpoint(paths, 1, model, opt, sched, {"step": 1, "x": [1.5]}, {"val_loss": 2.0})
    expected = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    weight_file = "adapter_model.safetensors" if lora else "model.safetensors"
    assert (out / weight_file).exists() and (out / "trainer_state.pt").exists()
    assert (out / ("adapter_config.json" if lora else "config.json")).exists()
    assert ckpt.checkpoint_info(out) == {"step": 1, "val_loss": 2.0}

    fresh, opt2, sched2 = make(lora)
    loop = ckpt.load_checkpoint(out, fresh, opt2, sched2)
    assert loop == {"step": 1, "x": [1.5]}
    for a, b in zip(expected, [p for p in fresh.parameters() if p.requires_grad]):
        assert torch.equal(a, b)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws
    assert sched2.get_last_lr() == sched.get_last_lr()
    # One more identical step on each keeps them identical: optimizer moments came back too.
    train_a_step(model, opt, sched)
    train_a_step(fresh, opt2, sched2)
    for a, b in zip([p for p in model.parameters() if p.requires_grad], [p for p in fresh.parameters() if p.requires_grad]):
        assert torch.equal(a, b)


def test_adapter_loads_in_plain_peft(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunelab.models.loading import resolve_model_path

    model, opt, sched = make()
    ckpt.save_weights(model, tmp_path / "final")
    base = AutoModelForCausalLM.from_pretrained(resolve_model_path("builtin:tiny-random-qwen2"))
    loaded = PeftModel.from_pretrained(base, str(tmp_path / "final"))
    assert ckpt.fingerprint([p for n, p in loaded.named_parameters() if "lora" in n]) == ckpt.fingerprint(
        [p for p in model.parameters() if p.requires_grad])


def test_partial_saves_are_ignored_and_cleaned(tmp_path):
    paths = RunPaths(tmp_path)
    model, opt, sched = make()
    ckpt.save_checkpoint(paths, 10, model, opt, sched, {}, {})
    (paths.checkpoints / "step-20.tmp").mkdir()  # killed while writing step 20
    (paths.checkpoints / "step-20.tmp" / "adapter_model.safetensors").write_bytes(b"half")
    (paths.checkpoints / "step-30").mkdir()  # no state.json: not complete
    assert [s for s, _ in ckpt.list_checkpoints(paths)] == [10]
    assert ckpt.latest_checkpoint(paths)[0] == 10
    ckpt.remove_partial(paths)
    assert not (paths.checkpoints / "step-20.tmp").exists()
    # Saving a step that exists (a resumed run) replaces it whole.
    ckpt.save_checkpoint(paths, 10, model, opt, sched, {"again": True}, {})
    assert torch.load(paths.checkpoint(10) / "trainer_state.pt", weights_only=False)["loop"] == {"again": True}
    assert sorted(p.name for p in paths.checkpoints.iterdir()) == ["step-10", "step-30"]


def test_prune_keeps_last_k_and_best(tmp_path):
    paths = RunPaths(tmp_path)
    model, opt, sched = make()
    for step in (10, 20, 30, 40, 50):
        ckpt.save_checkpoint(paths, step, model, opt, sched, {}, {})
    assert ckpt.prune_checkpoints(paths, keep_last=2, best_step=20) == [10, 30]
    assert [s for s, _ in ckpt.list_checkpoints(paths)] == [20, 40, 50]
    assert ckpt.prune_checkpoints(paths, keep_last=None, best_step=None) == []


def test_final_is_replaced_whole(tmp_path):
    full, _, _ = make(lora=False)
    ckpt.save_final(full, None, tmp_path / "final")
    assert (tmp_path / "final" / "model.safetensors").exists()
    lora, _, _ = make(lora=True)
    ckpt.save_final(lora, None, tmp_path / "final")  # e.g. a re-run that switched to LoRA
    names = {p.name for p in (tmp_path / "final").iterdir()}
    assert "adapter_model.safetensors" in names and "model.safetensors" not in names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_resume_onto_other_base_weights_is_refused_naming_both(tmp_path):
    """Checkpoints record the base they were trained on; --resume over other weights of the
    same model name stops instead of pairing the adapter with a base it does not fit."""
    from pathlib import Path

    from tunelab.config import load_config
    from tunelab.errors import TrainingError
    from tunelab.models.identity import base_identity
    from tunelab.models.tiny import build_tiny_model
    from tunelab.runs import read_json
    from tunelab.training.loop import train

    smoke = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
    base = build_tiny_model("qwen2", tmp_path / "base", seed=0)
    exp = load_config(smoke, [f"model.name={base}", "train.max_steps=2", "train.save_every=1", "train.eval_every=2",
                              "train.log_every=1"])
    run = tmp_path / "run"
    train(exp, run)
    trained_on = base_identity(exp.model)
    assert read_json(run / "checkpoints" / "step-2" / "state.json")["base_model"] == trained_on
    assert read_json(run / "final" / "state.json")["base_model"] == trained_on
    (run / "train" / "summary.json").unlink()  # as if killed after the last checkpoint

    build_tiny_model("qwen2", base, seed=1)  # other weights under the same name
    now = base_identity(exp.model)
    assert now != trained_on
    with pytest.raises(TrainingError, match="cannot resume") as e:
        train(exp, run, resume=True)
    assert trained_on in str(e.value) and now in str(e.value)

    build_tiny_model("qwen2", base, seed=0)  # the original weights again: resuming works
    assert train(exp, run, resume=True)["steps"] == 2
