"""Text generation from any model ref (used by `tunelab generate`).

The one-prompt path a person uses to look at a model: resolve the ref, template the prompt
as the run's training did, decode with the same generator evaluation uses.
"""

from __future__ import annotations

from pathlib import Path

from tunelab.generation.transformers_backend import TransformersGenerator
from tunelab.generation.types import GenerationSettings, Prompt
from tunelab.models.ref import ModelRef


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

    Args:
        model: any model ref (`final`, `runs/x/checkpoints/step-40`, `builtin:tiny-code`, ...).
        run_dir: the run bare variants (`final`, `step-N`) point into.

    Uses the evaluation generator and the chat template of the run the ref belongs to, so a
    person sees exactly what evaluation scores (same template, same stop at the end-of-turn
    marker). Returns prompt + continuation, or the reply alone with `chat=True`.
    """
    lm, tok, template = ModelRef.parse(model, run_dir).load()
    gen = TransformersGenerator(lm, tok, batch_size=1, chat_template=template)
    request = Prompt(messages=[{"role": "user", "content": prompt}]) if chat else Prompt(text=prompt)
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature if sample else 0.0,
                                  top_p=top_p, seed=seed)
    (text,) = gen.generate([request], settings)[0]
    return text if chat else prompt + text
