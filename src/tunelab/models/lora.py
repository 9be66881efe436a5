"""LoRA adapters: which modules each model family adapts, and attaching them with PEFT.

`target_modules: auto` picks the attention and MLP projections of the model's family, the
usual QLoRA-paper choice that adapts every linear layer inside the blocks but not the
embeddings or the output head. Families without a preset fall back to peft's `all-linear`.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from tunelab.config import LoraConfig
from tunelab.errors import ModelError, did_you_mean

log = logging.getLogger(__name__)

_LLAMA_LIKE = {
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mlp": ["gate_proj", "up_proj", "down_proj"],
}
# model_type (config.json) -> projection names. SmolLM 1/2 ship as model_type "llama";
# SmolLM3 has its own type with the same names. Gemma 3 text-only checkpoints are "gemma3_text".
LORA_PRESETS: dict[str, dict[str, list[str]]] = {
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "llama": _LLAMA_LIKE,
    "smollm": _LLAMA_LIKE,
    "smollm3": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    # Phi-3 fuses q/k/v and gate/up into single linear layers.
    "phi3": {"attention": ["qkv_proj", "o_proj"], "mlp": ["gate_up_proj", "down_proj"]},
}
ALL_LINEAR = "all-linear"


def _model_type(model: torch.nn.Module) -> str | None:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None)


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Sorted leaf names of the model's linear layers (`q_proj`, `lm_head`, ...)."""
    return sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if _is_linear(mod)})


def _is_linear(mod: torch.nn.Module) -> bool:
    # bitsandbytes' Linear4bit subclasses nn.Linear, so QLoRA bases are covered too.
    return isinstance(mod, torch.nn.Linear)


def _matches(module_names: list[str], target: str) -> bool:
    """peft's rule for a list entry: the full module name or its dotted suffix equals it."""
    return any(n == target or n.endswith("." + target) for n in module_names)


def target_modules_for(model: torch.nn.Module, lora_cfg: LoraConfig) -> list[str] | str:
    """The `target_modules` to give peft for this model and config.

    Returns:
        A list of module names, or the string "all-linear".

    Raises:
        ModelError: an explicit name matches no module, or "attention" is asked for a family
            whose attention projections cannot be found.
    """
    spec = lora_cfg.target_modules
    if spec == ALL_LINEAR:
        return ALL_LINEAR
    module_names = [n for n, _ in model.named_modules()]
    if isinstance(spec, list):
        for target in spec:
            if not _matches(module_names, target):
                linear = linear_module_names(model)
                raise ModelError(
                    f"lora.target_modules: '{target}' matches no module of this model"
                    f"{did_you_mean(target, linear)}; its linear layers are: {', '.join(linear)}"
                )
        return list(spec)
    model_type = _model_type(model)
    preset = LORA_PRESETS.get(model_type or "")
    if spec == "attention":
        wanted = preset["attention"] if preset else _LLAMA_LIKE["attention"]
        found = [t for t in wanted if _matches(module_names, t)]
        if not found:
            raise ModelError(
                f"lora.target_modules: attention: no attention projections known for model type "
                f"'{model_type}'; give an explicit list from: {', '.join(linear_module_names(model))}"
            )
        return found
    # spec == "auto"
    if preset is None:
        log.info("no LoRA preset for model type '%s': adapting all linear layers", model_type)
        return ALL_LINEAR
    found = [t for t in preset["attention"] + preset["mlp"] if _matches(module_names, t)]
    if not found:
        # The family's module names changed in this transformers version: stay usable.
        log.warning("LoRA preset for '%s' matches no module: adapting all linear layers", model_type)
        return ALL_LINEAR
    return found


def attach_lora(model: torch.nn.Module, lora_cfg: LoraConfig, tokenizer: Any = None) -> torch.nn.Module:
    """Wrap `model` in a PEFT LoRA model, or unfreeze everything when LoRA is disabled.

    With `lora.enabled: false` every parameter is trainable (full fine-tuning) and the model is
    returned unwrapped. `lora.trainable_tokens` (token strings, looked up in `tokenizer`) also
    trains those rows of the input embedding (and of a tied output layer): LoRA alone cannot
    move an embedding row, so a base model whose end-of-turn token was never trained cannot
    learn to emit it.
    """
    if not lora_cfg.enabled:
        if getattr(model, "is_loaded_in_4bit", False):
            raise ModelError("full fine-tuning (lora.enabled: false) cannot train a 4-bit model; "
                             "set model.load_in_4bit: false or enable LoRA")
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    alpha = lora_cfg.alpha
    peft_cfg = PeftLoraConfig(
        r=lora_cfg.r,
        # Whole-number alphas are written as ints so adapter_config.json looks like everyone's.
        lora_alpha=int(alpha) if float(alpha).is_integer() else alpha,
        lora_dropout=lora_cfg.dropout,
        target_modules=target_modules_for(model, lora_cfg),
        bias=lora_cfg.bias,
        use_rslora=lora_cfg.use_rslora,
        task_type="CAUSAL_LM",
        trainable_token_indices=token_indices(lora_cfg.trainable_tokens, tokenizer) or None,
    )
    return get_peft_model(model, peft_cfg)


def token_indices(tokens: list[str], tokenizer: Any) -> list[int]:
    """Ids of `lora.trainable_tokens`; each must be one token of the tokenizer."""
    if not tokens:
        return []
    if tokenizer is None:
        raise ModelError("lora.trainable_tokens needs the tokenizer to look the tokens up")
    ids = []
    vocab = tokenizer.get_vocab()
    for t in tokens:
        if t not in vocab:
            specials = ", ".join(tokenizer.all_special_tokens) or "none"
            raise ModelError(f"lora.trainable_tokens: '{t}' is not a token of this tokenizer "
                             f"(its special tokens: {specials})")
        ids.append(vocab[t])
    return sorted(set(ids))


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """Return (trainable, total) parameter counts; tied weights count once.

    4-bit (bitsandbytes) weights are stored packed two per byte, so they are counted by the
    number of values they hold, not by storage elements.
    """
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        if p.__class__.__name__ == "Params4bit":
            n *= 2 * getattr(getattr(p, "quant_storage", None), "itemsize", 1)
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total
