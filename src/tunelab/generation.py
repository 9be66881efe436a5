"""Text generation from any model variant (used by `tunelab generate`).

The evaluation layer brings batched generation; this is the one-prompt path a person uses to
look at a model: resolve the variant, template the prompt like training did, decode.
"""

from __future__ import annotations

from pathlib import Path

import torch


def load_any(model: str, run_dir: Path | None = None):
    """Load a ModelRef (`base`, `final`, `best`, `step-N` with a run dir; an adapter directory)
    or a plain model name (`builtin:NAME`, hub id, local model dir). Returns (model, tokenizer)."""
    from tunelab.config import ModelConfig
    from tunelab.models.adapters import load_variant
    from tunelab.models.loading import load_base

    if run_dir is not None:
        return load_variant(model, run_dir=run_dir)
    if (Path(model) / "adapter_config.json").is_file():
        return load_variant(model)
    m, tok = load_base(ModelConfig(name=model))
    m.eval()
    return m, tok


@torch.no_grad()
def generate_text(
    model: str,
    prompt: str,
    run_dir: Path | None = None,
    max_new_tokens: int = 64,
    chat: bool = False,
    sample: bool = False,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int = 0,
) -> str:
    """Continue `prompt` (or answer it as a user message with `chat=True`); returns prompt + continuation."""
    lm, tok = load_any(model, run_dir)
    if chat:
        from tunelab.data.tokenize import resolve_chat_template

        resolve_chat_template(tok, "auto")
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    else:
        text = prompt
    enc = tok(text, return_tensors="pt", add_special_tokens=False).to(lm.device)
    torch.manual_seed(seed)
    kwargs = {"do_sample": True, "temperature": temperature, "top_p": top_p} if sample else {"do_sample": False}
    stop = [t for t in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")) if isinstance(t, int) and t >= 0]
    out = lm.generate(
        **enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=stop or None, **kwargs
    )
    new = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return (prompt + new) if not chat else new
