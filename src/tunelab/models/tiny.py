"""Tiny random-init models for tests and smoke runs.

Each is a real transformers architecture (Qwen2, Llama, Qwen3, Phi-3) shrunk to a few hundred
thousand parameters, with the built-in 8192-token tokenizer, so the code paths that load a hub
model (from_pretrained, chat template, PEFT) run unchanged on it in about a second.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from tunelab.errors import ModelError, did_you_mean
from tunelab.models.paths import builtin_models_dir

ARCHS: tuple[str, ...] = ("qwen2", "llama", "qwen3", "phi3")

# Files copied from the built-in tokenizer folder next to the random weights.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")

# Written next to the weights; the cache in loading.py rebuilds a model whose stamp differs
# (a new builder version, other sizes, a changed tokenizer).
STAMP_FILE = "tunelab_tiny.json"
# The sizes of the `builtin:tiny-random-*` models (about 0.6M parameters, most in embeddings).
DEFAULT_SIZES = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128}
BUILDER_VERSION = 1


def tokenizer_dir() -> Path:
    """The folder of the built-in tokenizer (shared with `builtin:tiny-code`)."""
    return builtin_models_dir() / "tiny-code"


def tiny_config(
    arch: str,
    hidden_size: int = DEFAULT_SIZES["hidden_size"],
    num_layers: int = DEFAULT_SIZES["num_layers"],
    num_heads: int = DEFAULT_SIZES["num_heads"],
    num_kv_heads: int = DEFAULT_SIZES["num_kv_heads"],
    intermediate_size: int = DEFAULT_SIZES["intermediate_size"],
    max_position_embeddings: int = 2048,
):
    """A transformers config for a tiny `arch` model sized to the built-in tokenizer.

    Raises:
        ModelError: `arch` is not one of `ARCHS`, or the sizes do not divide into heads.
    """
    from tokenizers import Tokenizer
    from transformers import AutoConfig

    if arch not in ARCHS:
        raise ModelError(f"unknown tiny architecture '{arch}'{did_you_mean(arch, ARCHS)}; known: {', '.join(ARCHS)}")
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ModelError(
            f"tiny {arch}: hidden_size ({hidden_size}) must divide by num_heads ({num_heads}) "
            f"and num_heads by num_kv_heads ({num_kv_heads})"
        )
    # Token ids come from the tokenizer itself so that model and tokenizer cannot disagree.
    tok = Tokenizer.from_file(str(tokenizer_dir() / "tokenizer.json"))
    return AutoConfig.for_model(
        arch,
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        # Qwen3 defaults head_dim to 128 regardless of hidden_size; keep it consistent.
        head_dim=hidden_size // num_heads,
        max_position_embeddings=max_position_embeddings,
        # All four architectures support tied input/output embeddings; it halves the size.
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.token_to_id("<|endoftext|>"),
        pad_token_id=tok.token_to_id("<|pad|>"),
    )


def build_spec(arch: str, seed: int = 0, **sizes: int) -> dict[str, Any]:
    """What determines a tiny model's files: used as its cache stamp."""
    tok_hash = hashlib.sha256((tokenizer_dir() / "tokenizer.json").read_bytes()).hexdigest()[:16]
    return {"builder_version": BUILDER_VERSION, "arch": arch, "seed": seed, "sizes": sizes, "tokenizer": tok_hash}


def build_tiny_model(
    arch: str,
    out_dir: str | Path,
    seed: int = 0,
    hidden_size: int = DEFAULT_SIZES["hidden_size"],
    num_layers: int = DEFAULT_SIZES["num_layers"],
    num_heads: int = DEFAULT_SIZES["num_heads"],
    num_kv_heads: int = DEFAULT_SIZES["num_kv_heads"],
    intermediate_size: int = DEFAULT_SIZES["intermediate_size"],
) -> Path:
    """Build a random-init `arch` model with the built-in tokenizer and save it to `out_dir`.

    The weights depend only on (`arch`, `seed`, sizes): the same arguments give the same files.
    The caller's torch RNG state is left untouched.

    Returns:
        `out_dir` as a Path, loadable with `AutoModelForCausalLM.from_pretrained`.
    """
    from transformers import AutoModelForCausalLM

    sizes = {
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "num_kv_heads": num_kv_heads,
        "intermediate_size": intermediate_size,
    }
    config = tiny_config(arch, **sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir() / name).is_file():
            shutil.copy(tokenizer_dir() / name, out / name)
    (out / STAMP_FILE).write_text(json.dumps(build_spec(arch, seed, **sizes), indent=2) + "\n")
    return out


def count_config_parameters(config) -> int:
    """Parameters of a model built from `config`, counted without allocating weights."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    # parameters() yields a tied embedding once, matching what from_pretrained loads.
    return sum(p.numel() for p in model.parameters())
