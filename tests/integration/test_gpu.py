"""GPU paths: bf16 LoRA training, CUDA peak memory, QLoRA. Opt-in: `pytest --rungpu` on a CUDA box."""

import math
from pathlib import Path

import pytest

from tunelab.config import load_config
from tunelab.runs import read_jsonl
from tunelab.training.loop import train

pytestmark = pytest.mark.gpu
SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


@pytest.fixture(autouse=True)
def _need_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")


def test_bf16_lora_training_on_cuda(tmp_path):
    exp = load_config(SMOKE, ["model.device=cuda", "model.dtype=bfloat16", "train.max_steps=10"])
    summary = train(exp, tmp_path / "run")
    assert summary["peak_memory_kind"] == "cuda_max_allocated" and summary["peak_memory_mb"] > 0
    # GPU seconds of the steps and evaluations (CUDA events): positive, and within the wall time.
    assert 0 < summary["device_time_s"] <= summary["wall_time_s"] and summary["cpu_time_s"] > 0
    rows = read_jsonl(tmp_path / "run" / "train" / "metrics.jsonl")
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert (tmp_path / "run" / "final" / "adapter_model.safetensors").is_file()


def test_qlora_4bit_training_on_cuda(tmp_path):
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (pip install 'tunelab[qlora]')")
    exp = load_config(SMOKE, ["model.device=cuda", "model.load_in_4bit=true", "train.max_steps=6"])
    summary = train(exp, tmp_path / "run")
    assert summary["steps"] == 6 and math.isfinite(summary["final_val_loss"])
