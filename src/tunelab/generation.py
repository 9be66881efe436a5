"""Text generation from any model variant (used by `tunelab generate`).

The evaluation layer brings batched generation; this is the one-prompt path a person uses to
look at a model: resolve the variant, template the prompt like training did, decode.
"""

from __future__ import annotations

from pathlib import Path


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
    """Continue `prompt` (or answer it as a user message with `chat=True`).

    Uses the evaluation layer's generator, so a person sees exactly what evaluation scores
    (same template, same stop at the end-of-turn marker). Returns prompt + continuation, or
    the reply alone with `chat=True`.
    """
    from tunelab.evaluation.generation import TransformersGenerator
    from tunelab.evaluation.task import GenerationSettings, Prompt

    lm, tok = load_any(model, run_dir)
    chat_template = "auto"
    if run_dir is not None and (Path(run_dir) / "config.yaml").is_file():
        from tunelab.config import load_config

        chat_template = load_config(Path(run_dir) / "config.yaml").data.chat_template
    gen = TransformersGenerator(lm, tok, batch_size=1, chat_template=chat_template)
    request = Prompt(messages=[{"role": "user", "content": prompt}]) if chat else Prompt(text=prompt)
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature if sample else 0.0,
                                  top_p=top_p, seed=seed)
    (text,) = gen.generate([request], settings)[0]
    return text if chat else prompt + text
