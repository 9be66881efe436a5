"""models.adapters + models.ref: run variants (base, final, best, step-N, adapter path) over a hand-made run dir."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from tunelab.config import ModelConfig
from tunelab.errors import ModelError
from tunelab.models.adapters import list_variants
from tunelab.models.loading import load_model
from tunelab.models.ref import ModelRef

IDS = torch.tensor([[5, 17, 300, 42, 7, 1000, 8000, 11]])


def load_variant(ref, run_dir=None, model_cfg=None):
    """(model, tokenizer) of a ref, as every caller loads one."""
    model, tok, _ = ModelRef.parse(ref, run_dir, base=model_cfg).load()
    return model, tok


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def _save_adapter(tiny_adapter, base_dir: Path, out: Path, seed: int) -> torch.Tensor:
    """Save a LoRA adapter with seeded non-zero B (each one changes outputs differently); its
    logits as plain peft computes them (never through the loader under test)."""
    from peft import PeftModel

    tiny_adapter(base_dir, out, seed)
    return _logits(PeftModel.from_pretrained(load_model(ModelConfig(name=str(base_dir)), "cpu"), out).eval())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_qwen2_dir, tiny_adapter):
    """A run directory as training leaves it: config.yaml, two checkpoints, final, summary."""
    run = tmp_path_factory.mktemp("run")
    config = {"name": "t", "model": {"name": str(tiny_qwen2_dir), "device": "cpu"},
              "data": {"sources": [{"builtin": "anything"}]}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    expected = {
        "step-2": _save_adapter(tiny_adapter, tiny_qwen2_dir, run / "checkpoints" / "step-2", seed=2),
        "step-10": _save_adapter(tiny_adapter, tiny_qwen2_dir, run / "checkpoints" / "step-10", seed=10),
        "final": _save_adapter(tiny_adapter, tiny_qwen2_dir, run / "final", seed=99),
        "base": _logits(load_model(ModelConfig(name=str(tiny_qwen2_dir)), "cpu")),
    }
    (run / "checkpoints" / "step-7-partial").mkdir()  # not a checkpoint: ignored
    (run / "train").mkdir()
    (run / "train" / "summary.json").write_text(json.dumps({"best_step": 2, "best_val_loss": 1.0}))
    return run, expected


def test_list_variants_orders_steps_numerically(run_dir):
    run, _ = run_dir
    assert list_variants(run) == ["base", "final", "best", "step-2", "step-10"]


@pytest.mark.parametrize(("ref", "which"), [("final", "final"), ("step-2", "step-2"), ("step-10", "step-10"), ("best", "step-2")])
def test_run_refs_load_the_right_adapter_in_eval_mode(run_dir, ref, which):
    from peft import PeftModel

    run, expected = run_dir
    model, tok = load_variant(ref, run_dir=run)
    assert isinstance(model, PeftModel) and not model.training
    assert tok.pad_token_id == 3
    assert torch.allclose(_logits(model), expected[which], atol=1e-5)
    assert not torch.allclose(_logits(model), expected["base"], atol=1e-4)


def test_base_ref_is_the_run_base_model(run_dir):
    run, expected = run_dir
    model, _ = load_variant("base", run_dir=run)
    assert not model.training
    assert torch.allclose(_logits(model), expected["base"], atol=1e-5)


def test_best_from_best_checkpoint_key(tmp_path, run_dir):
    run, expected = run_dir
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / "train" / "summary.json").write_text(json.dumps({"best_checkpoint": "checkpoints/step-10"}))
    model, _ = load_variant("best", run_dir=copy)
    assert torch.allclose(_logits(model), expected["step-10"], atol=1e-5)
    (copy / "train" / "summary.json").write_text(json.dumps({"final_loss": 1.0}))
    assert "best" not in list_variants(copy)
    with pytest.raises(ModelError, match="no best checkpoint recorded"):
        load_variant("best", run_dir=copy)


def test_missing_ref_lists_what_exists(run_dir):
    run, _ = run_dir
    with pytest.raises(ModelError) as e:
        load_variant("step-20", run_dir=run)
    msg = str(e.value)
    assert "did you mean 'step-2" in msg and "available: base, final, best, step-2, step-10" in msg
    with pytest.raises(ModelError, match="needs a run directory"):
        load_variant("final")
    with pytest.raises(ModelError, match="unknown model ref"):
        load_variant("latest", run_dir=run)


def test_adapter_path_inside_a_run_uses_that_runs_base(run_dir):
    run, expected = run_dir
    model, _ = load_variant(run / "checkpoints" / "step-10")
    assert torch.allclose(_logits(model), expected["step-10"], atol=1e-5)


def test_standalone_adapter_uses_its_recorded_base_or_the_given_one(tmp_path, run_dir, tiny_qwen2_dir):
    run, expected = run_dir
    lone = shutil.copytree(run / "final", tmp_path / "lone-adapter")
    model, _ = load_variant(lone)  # base from adapter_config.json's base_model_name_or_path
    assert torch.allclose(_logits(model), expected["final"], atol=1e-5)
    model, _ = load_variant(str(lone), model_cfg=ModelConfig(name=str(tiny_qwen2_dir), device="cpu"))
    assert torch.allclose(_logits(model), expected["final"], atol=1e-5)


def test_full_fine_tuned_checkpoint_loads_as_a_whole_model(tmp_path, run_dir, tiny_qwen2_dir):
    run, expected = run_dir
    copy = shutil.copytree(run, tmp_path / "run")
    shutil.rmtree(copy / "final")
    shutil.copytree(tiny_qwen2_dir, copy / "final")  # lora.enabled: false saves whole models
    assert "final" in list_variants(copy)
    model, tok = load_variant("final", run_dir=copy)
    assert torch.allclose(_logits(model), expected["base"], atol=1e-5) and tok.eos_token_id == 0
