"""models.loading: naming models, picking device/dtype, loading with clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tunelab.config import ModelConfig
from tunelab.errors import ModelError
from tunelab.models import loading, tiny
from tunelab.models.loading import (
    list_builtin_models,
    load_base,
    load_model,
    load_tokenizer,
    pick_device,
    pick_dtype,
    resolve_model_path,
)

PACKAGE_TINY_CODE = Path(tiny.__file__).resolve().parents[1] / "builtin" / "models" / "tiny-code"


@pytest.fixture
def fake_builtin_root(tmp_path, monkeypatch):
    """A stand-in for the package's builtin/models folder holding a tokenizer-only tiny-code."""
    root = tmp_path / "builtin-models"
    (root / "tiny-code").mkdir(parents=True)
    for name in tiny.TOKENIZER_FILES:
        if (PACKAGE_TINY_CODE / name).is_file():
            shutil.copy(PACKAGE_TINY_CODE / name, root / "tiny-code" / name)
    monkeypatch.setattr(loading, "builtin_models_dir", lambda: root)
    return root / "tiny-code"


# ---- resolve_model_path -----------------------------------------------------------------------


def test_tiny_random_builds_once_into_the_cache_with_seed0_weights(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    path = Path(resolve_model_path("builtin:tiny-random-llama"))
    assert path == tmp_path / "cache" / "models" / "tiny-random-llama"
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert Path(resolve_model_path("builtin:tiny-random-llama")) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime  # not rebuilt
    ref = load_file(tiny.build_tiny_model("llama", tmp_path / "ref", seed=0) / "model.safetensors")
    got = load_file(path / "model.safetensors")
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_tiny_random_with_a_stale_stamp_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    path = Path(resolve_model_path("builtin:tiny-random-qwen3"))
    (path / tiny.STAMP_FILE).write_text(json.dumps({"builder_version": -1}))
    (path / "model.safetensors").unlink()
    assert Path(resolve_model_path("builtin:tiny-random-qwen3")) == path
    assert (path / "model.safetensors").is_file()


def test_unknown_builtin_lists_known_names_and_suggests():
    with pytest.raises(ModelError) as e:
        resolve_model_path("builtin:tiny-random-lama")
    msg = str(e.value)
    assert "did you mean 'tiny-random-llama'" in msg
    assert all(n in msg for n in ("tiny-code", "tiny-random-qwen2", "tiny-random-phi3", "tiny-random-qwen3"))


def test_builtin_tiny_code_is_the_package_folder():
    assert Path(resolve_model_path("builtin:tiny-code", need_weights=False)) == PACKAGE_TINY_CODE


def test_builtin_without_weights_says_so_but_gives_its_tokenizer(fake_builtin_root):
    with pytest.raises(ModelError, match="tokenizer but no weights yet"):
        resolve_model_path("builtin:tiny-code")
    with pytest.raises(ModelError, match="no weights"):
        load_model(ModelConfig(name="builtin:tiny-code"), "cpu")
    tok = load_tokenizer(ModelConfig(name="builtin:tiny-code"))
    assert tok.eos_token_id == 0 and tok.pad_token_id == 3


def test_bfloat16_builtin_is_upcast_to_float32_on_cpu(fake_builtin_root, tiny_qwen2_dir):
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir, dtype=torch.bfloat16).save_pretrained(fake_builtin_root)
    model = load_model(ModelConfig(name="builtin:tiny-code"), "cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    kept = load_model(ModelConfig(name="builtin:tiny-code", dtype="bfloat16"), "cpu")
    assert {p.dtype for p in kept.parameters()} == {torch.bfloat16}


def test_local_dir_is_itself(tiny_qwen2_dir):
    assert resolve_model_path(str(tiny_qwen2_dir)) == str(tiny_qwen2_dir)


@pytest.mark.parametrize("name", ["./missing-model", "/no/such/model", "~/no-such-model", "models/a/b"])
def test_missing_local_path_is_an_error(name):
    with pytest.raises(ModelError, match="model folder not found"):
        resolve_model_path(name)


@pytest.mark.parametrize("name", ["Qwen/Qwen2.5-0.5B-Instruct", "HuggingFaceTB/SmolLM2-135M", "gpt2"])
def test_hub_like_names_pass_through(name):
    assert resolve_model_path(name) == name


def test_list_builtin_models_names_sizes_and_cards(fake_builtin_root, tiny_qwen2_dir):
    models = {m["name"]: m for m in list_builtin_models()}
    assert set(models) == {"tiny-code", "tiny-random-qwen2", "tiny-random-llama", "tiny-random-qwen3", "tiny-random-phi3"}
    assert models["tiny-code"]["available"] is False and "not built" in models["tiny-code"]["description"]
    built = load_model(ModelConfig(name=str(tiny_qwen2_dir)), "cpu")
    assert models["tiny-random-qwen2"]["parameters"] == sum(p.numel() for p in built.parameters())
    # Once the pretrained weights land: size from pretrain_meta.json, description from the card.
    for f in ("model.safetensors", "config.json"):
        shutil.copy(tiny_qwen2_dir / f, fake_builtin_root / f)
    (fake_builtin_root / "pretrain_meta.json").write_text(json.dumps({"step": 10, "val_loss": 2.5, "parameters": 1234}))
    (fake_builtin_root / "README.md").write_text("# tiny-code\n\nA small Python code model.\nTrained offline.\n\nMore.")
    code = {m["name"]: m for m in list_builtin_models()}["tiny-code"]
    assert code["available"] and code["parameters"] == 1234 and code["ref"] == "builtin:tiny-code"
    assert code["description"] == "A small Python code model. Trained offline."
    assert code["card"].startswith("# tiny-code")


# ---- device and dtype -------------------------------------------------------------------------


def _fake_hardware(monkeypatch, cuda: bool, mps: bool = False, bf16: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"), [(False, False, "cpu"), (True, False, "cuda"), (True, True, "cuda"), (False, True, "mps")]
)
def test_pick_device_auto_prefers_cuda_then_mps(monkeypatch, cuda, mps, expected):
    _fake_hardware(monkeypatch, cuda=cuda, mps=mps)
    assert pick_device("auto").type == expected


@pytest.mark.parametrize("pref", ["cuda", "mps"])
def test_pick_device_missing_accelerator_is_an_error(monkeypatch, pref):
    _fake_hardware(monkeypatch, cuda=False, mps=False)
    with pytest.raises(ModelError, match=pref):
        pick_device(pref)
    assert pick_device("cpu").type == "cpu"


@pytest.mark.parametrize(
    ("device", "bf16", "expected"),
    [("cpu", True, torch.float32), ("mps", True, torch.float32), ("cuda", True, torch.bfloat16), ("cuda", False, torch.float16)],
)
def test_pick_dtype_auto(monkeypatch, device, bf16, expected):
    _fake_hardware(monkeypatch, cuda=True, bf16=bf16)
    assert pick_dtype("auto", torch.device(device)) == expected


def test_pick_dtype_explicit(monkeypatch):
    _fake_hardware(monkeypatch, cuda=True, bf16=False)
    assert pick_dtype("float16", "cuda") == torch.float16
    assert pick_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ModelError, match="bfloat16"):
        pick_dtype("bfloat16", "cuda")


# ---- tokenizer and model ----------------------------------------------------------------------


def test_tokenizer_without_pad_uses_eos_and_pads_right(tmp_path, tiny_qwen2_dir):
    path = shutil.copytree(tiny_qwen2_dir, tmp_path / "nopad")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        cfg = json.loads((path / name).read_text())
        cfg.pop("pad_token", None)
        cfg["padding_side"] = "left"
        (path / name).write_text(json.dumps(cfg))
    tok = load_tokenizer(ModelConfig(name=str(path)))
    assert tok.pad_token == tok.eos_token == "<|endoftext|>" and tok.pad_token_id == 0
    assert tok.padding_side == "right"


@pytest.mark.parametrize("arch", ["qwen2", "llama", "phi3"])
def test_tokenizer_is_exactly_the_folders_tokenizer_json(arch, tiny_model_dir):
    # transformers 5 swaps in Qwen2Tokenizer for model_type qwen2, which re-splits digits and
    # whitespace; the built-in tokenizer must encode as it did in pretraining.
    from tokenizers import Tokenizer

    path = tiny_model_dir(arch)
    text = "def f(x):\n    return x**2  # 123456 caf\u00e9\n<|im_start|>user"
    raw = Tokenizer.from_file(str(path / "tokenizer.json")).encode(text).ids
    assert load_tokenizer(ModelConfig(name=str(path)))(text).input_ids == raw


def test_load_base_on_cpu_in_float32_with_pad_ids(tiny_llama_dir):
    model, tok = load_base(ModelConfig(name=str(tiny_llama_dir), device="cpu"))
    assert model.device.type == "cpu" and next(model.parameters()).dtype == torch.float32
    assert model.config.pad_token_id == tok.pad_token_id == 3
    assert not model.training


def test_model_lands_on_the_requested_device(tiny_llama_dir):
    # "meta" stands in for an accelerator: it shows the weights are moved where asked.
    model = load_model(ModelConfig(name=str(tiny_llama_dir)), "meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.parametrize("trust", [False, True])
def test_trust_remote_code_revision_and_attention_are_passed_through(monkeypatch, tiny_qwen2_dir, trust):
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    seen: dict[str, dict] = {}

    def spy(cls, key):
        original = cls.from_pretrained

        def wrapped(path, **kwargs):
            seen.setdefault(key, kwargs)  # the outer call: AutoTokenizer delegates to the class it picks
            return original(path, **{k: v for k, v in kwargs.items() if k != "revision"})

        monkeypatch.setattr(cls, "from_pretrained", wrapped)

    spy(AutoModelForCausalLM, "model")
    spy(AutoTokenizer, "tokenizer")
    spy(PreTrainedTokenizerFast, "tokenizer")
    cfg = ModelConfig(name=str(tiny_qwen2_dir), trust_remote_code=trust, revision="v1", attn_implementation="eager")
    load_base(cfg, "cpu")
    assert seen["model"]["trust_remote_code"] is trust and seen["tokenizer"]["trust_remote_code"] is trust
    assert seen["model"]["revision"] == seen["tokenizer"]["revision"] == "v1"
    assert seen["model"]["attn_implementation"] == "eager" and seen["model"]["dtype"] == torch.float32


def test_load_in_4bit_without_cuda_is_a_clear_error(tiny_qwen2_dir):
    with pytest.raises(ModelError, match="load_in_4bit needs a CUDA GPU and bitsandbytes"):
        load_model(ModelConfig(name=str(tiny_qwen2_dir), load_in_4bit=True), "cpu")


def test_unreachable_hub_names_the_id_and_offline_mode(monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="'someone/not-a-model'.*HF_HUB_OFFLINE"):
        load_model(ModelConfig(name="someone/not-a-model"), "cpu")
    with pytest.raises(ModelError, match="someone/not-a-model"):
        load_tokenizer(ModelConfig(name="someone/not-a-model"))


def test_network_failure_suggests_hf_hub_offline(monkeypatch):
    import huggingface_hub.constants as hub
    from transformers import AutoModelForCausalLM

    def no_network(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_network)
    with pytest.raises(ModelError, match="'org/model'.*unreachable.*HF_HUB_OFFLINE=1"):
        load_model(ModelConfig(name="org/model"), "cpu")


def test_remote_code_model_explains_the_switch(monkeypatch):
    from transformers import AutoModelForCausalLM

    def needs_code(*args, **kwargs):
        raise ValueError("The repository org/model contains custom code ... pass `trust_remote_code=True`")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", needs_code)
    with pytest.raises(ModelError, match="model.trust_remote_code: true"):
        load_model(ModelConfig(name="org/model"), "cpu")


def test_adapter_or_empty_folder_as_base_is_explained(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="is a PEFT adapter"):
        load_model(ModelConfig(name=str(tmp_path / "adapter")), "cpu")
    with pytest.raises(ModelError, match="no config.json"):
        load_model(ModelConfig(name=str(tmp_path)), "cpu")


def test_loading_off_a_terminal_draws_no_transformers_bars(tiny_qwen2_dir, capfd):
    # A sweep trial's log or CI output would get one line of carriage returns per load.
    from tunelab.config import ModelConfig
    from tunelab.models.loading import load_model

    load_model(ModelConfig(name=str(tiny_qwen2_dir)), "cpu")
    assert "Loading weights" not in capfd.readouterr().err
