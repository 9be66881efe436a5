"""tiny.build_tiny_model: real architectures, built-in tokenizer, deterministic weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tunelab.errors import ModelError
from tunelab.models.tiny import ARCHS, STAMP_FILE, build_tiny_model


@pytest.mark.parametrize("arch", ARCHS)
def test_each_arch_loads_with_tokenizer_and_tied_embeddings(arch, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir(arch)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == arch
    assert model.config.vocab_size == len(tok) == 8192
    assert model.config.eos_token_id == tok.eos_token_id == 0
    assert model.config.pad_token_id == tok.pad_token_id == 3
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert (path / "model.safetensors").is_file() and json.loads((path / STAMP_FILE).read_text())["arch"] == arch
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, return_tensors="pt").input_ids
    assert model(ids).logits.shape == (1, ids.shape[1], 8192)


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    a = load_file(build_tiny_model("llama", tmp_path / "a", seed=0) / "model.safetensors")
    b = load_file(build_tiny_model("llama", tmp_path / "b", seed=0) / "model.safetensors")
    c = load_file(build_tiny_model("llama", tmp_path / "c", seed=1) / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_build_leaves_caller_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model("qwen2", tmp_path / "m", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_sizes_are_configurable(tmp_path):
    from transformers import AutoConfig

    path = build_tiny_model("qwen3", tmp_path / "m", hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1)
    cfg = AutoConfig.from_pretrained(path)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.head_dim) == (32, 1, 16)


def test_unknown_arch_suggests_the_closest(tmp_path):
    with pytest.raises(ModelError, match="did you mean 'llama'"):
        build_tiny_model("lama", tmp_path / "m")
