"""models.lora: presets per family, target validation, parameter counts, standard PEFT files."""

from __future__ import annotations

import json

import pytest
import torch

from tunelab.config import LoraConfig, ModelConfig
from tunelab.errors import ModelError
from tunelab.models.lora import LORA_PRESETS, attach_lora, count_parameters, target_modules_for
from tunelab.models.loading import load_model

IDS = torch.tensor([[5, 17, 300, 42, 7, 1000, 8000, 11]])


def _base(path) -> torch.nn.Module:
    return load_model(ModelConfig(name=str(path)), "cpu")


def _randomise_lora_b(model: torch.nn.Module) -> None:
    """LoRA initialises B to zero (a no-op adapter); give it values so it changes outputs."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


@pytest.mark.parametrize("arch", ["qwen2", "llama", "qwen3", "phi3"])
def test_auto_preset_targets_exist_on_each_family(arch, tiny_model_dir):
    model = _base(tiny_model_dir(arch))
    preset = LORA_PRESETS[arch]
    targets = target_modules_for(model, LoraConfig())
    assert targets == preset["attention"] + preset["mlp"]
    leaf_names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    assert set(targets) <= leaf_names
    peft_model = attach_lora(model, LoraConfig(r=4))
    adapted = {n.rsplit(".", 1)[-1] for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == set(targets)


def test_smollm_and_gemma_families_have_presets():
    assert LORA_PRESETS["smollm"] == LORA_PRESETS["llama"]
    for family in ("qwen2", "qwen3", "llama", "mistral", "phi3", "gemma", "gemma2", "gemma3"):
        assert LORA_PRESETS[family]["attention"] and LORA_PRESETS[family]["mlp"]


def test_attention_only_and_all_linear(tiny_model_dir):
    phi3 = _base(tiny_model_dir("phi3"))
    assert target_modules_for(phi3, LoraConfig(target_modules="attention")) == ["qkv_proj", "o_proj"]
    model = attach_lora(phi3, LoraConfig(r=2, target_modules="all-linear"))
    adapted = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}  # peft leaves lm_head out


def test_unknown_family_falls_back_to_all_linear(tiny_qwen2_dir, caplog):
    model = _base(tiny_qwen2_dir)
    model.config.model_type = "brand-new-family"
    with caplog.at_level("INFO"):
        assert target_modules_for(model, LoraConfig()) == "all-linear"
    assert "brand-new-family" in caplog.text


def test_explicit_targets_are_validated_with_a_suggestion(tiny_qwen2_dir):
    model = _base(tiny_qwen2_dir)
    assert target_modules_for(model, LoraConfig(target_modules=["q_proj", "v_proj"])) == ["q_proj", "v_proj"]
    with pytest.raises(ModelError) as e:
        target_modules_for(model, LoraConfig(target_modules=["v_proj", "q_prj"]))
    msg = str(e.value)
    assert "'q_prj'" in msg and "did you mean 'q_proj'" in msg and "down_proj, gate_proj, k_proj" in msg


def test_trainable_parameters_match_the_lora_formula(tiny_qwen2_dir):
    # Tiny qwen2: hidden 64, 4 heads of 16, 2 kv heads (k/v out = 32), MLP 128, 2 layers.
    # A LoRA on a Linear(in, out) adds r * (in + out) parameters.
    model = _base(tiny_qwen2_dir)
    _, base_total = count_parameters(model)
    r = 8
    shapes = {"q": (64, 64), "k": (64, 32), "v": (64, 32), "o": (64, 64), "gate": (64, 128), "up": (64, 128), "down": (128, 64)}
    expected = 2 * sum(r * (i + o) for i, o in shapes.values())
    assert expected == 16384
    peft_model = attach_lora(model, LoraConfig(r=r, alpha=16))
    trainable, total = count_parameters(peft_model)
    assert trainable == expected
    assert total == base_total + expected
    assert (trainable, total) == peft_model.get_nb_trainable_parameters()


def test_lora_settings_reach_peft(tiny_llama_dir):
    model = attach_lora(_base(tiny_llama_dir), LoraConfig(r=4, alpha=8, dropout=0.1, bias="lora_only", use_rslora=True))
    cfg = model.peft_config["default"]
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.bias, cfg.use_rslora) == (4, 8, 0.1, "lora_only", True)
    assert cfg.task_type == "CAUSAL_LM"


def test_disabled_lora_is_full_fine_tuning(tiny_llama_dir):
    model = _base(tiny_llama_dir)
    for p in model.parameters():
        p.requires_grad_(False)
    same = attach_lora(model, LoraConfig(enabled=False))
    assert same is model
    trainable, total = count_parameters(same)
    assert trainable == total == sum(p.numel() for p in model.parameters())


def test_saved_adapter_is_plain_peft_and_reproduces_logits(tmp_path, tiny_qwen2_dir):
    from peft import PeftModel

    base_logits = _base(tiny_qwen2_dir)(IDS).logits
    model = attach_lora(_base(tiny_qwen2_dir), LoraConfig(r=4))
    _randomise_lora_b(model)
    model.eval()
    with torch.no_grad():
        tuned_logits = model(IDS).logits
    # An adapter with non-zero B must change what the model says.
    assert not torch.allclose(tuned_logits, base_logits, atol=1e-4)

    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 4 and saved["peft_type"] == "LORA" and saved["task_type"] == "CAUSAL_LM"

    # Plain transformers + peft, no tunelab involved.
    from transformers import AutoModelForCausalLM

    fresh = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir, dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(IDS).logits, tuned_logits, atol=1e-5)


def test_trainable_tokens_train_only_those_embedding_rows_and_survive_a_reload(tmp_path, tiny_qwen2_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunelab.models.loading import load_tokenizer

    tok = load_tokenizer(ModelConfig(name=str(tiny_qwen2_dir)))
    special = [t for t in tok.all_special_tokens][:2]
    ids = sorted({tok.convert_tokens_to_ids(t) for t in special})
    model = attach_lora(_base(tiny_qwen2_dir), LoraConfig(r=4, trainable_tokens=special), tok)
    extra = [n for n, p in model.named_parameters() if p.requires_grad and "lora_" not in n]
    assert len(extra) == 1 and "trainable_tokens_delta" in extra[0]
    delta = dict(model.named_parameters())[extra[0]]
    assert delta.shape[0] == len(ids)
    # Training them changes the embedding of those tokens and of no other.
    before = model.get_input_embeddings()(torch.arange(40)).detach().clone()
    with torch.no_grad():
        delta.add_(1.0)
    after = model.get_input_embeddings()(torch.arange(40)).detach()
    changed = [i for i in range(40) if not torch.allclose(before[i], after[i])]
    assert changed == [i for i in ids if i < 40]
    model.eval()
    probe = torch.tensor([[ids[0], 5, 17, ids[-1], 9]])
    with torch.no_grad():
        tuned = model(probe).logits
    model.save_pretrained(tmp_path / "adapter")
    fresh = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir, dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(probe).logits, tuned, atol=1e-5)


def test_an_unknown_trainable_token_is_a_clear_error(tiny_qwen2_dir):
    from tunelab.models.loading import load_tokenizer

    tok = load_tokenizer(ModelConfig(name=str(tiny_qwen2_dir)))
    with pytest.raises(ModelError, match=r"lora.trainable_tokens: '<\|nope\|>' is not a token.*special tokens: "):
        attach_lora(_base(tiny_qwen2_dir), LoraConfig(trainable_tokens=["<|nope|>"]), tok)
