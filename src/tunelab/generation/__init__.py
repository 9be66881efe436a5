"""The generation layer: prompts in, new text out, for every part of tunelab that generates.

Below training (its generation metric), evaluation, compare and serve; above models. Every
backend implements `generate(prompts, settings) -> settings.n continuations per prompt`, new
text only, cut before the first stop sequence.

    types.py                  Prompt, GenerationSettings, cut_at_stop, unfence, strip_reasoning,
                              answer_texts
    transformers_backend.py   TransformersGenerator: batched, in process (the default)
    vllm_backend.py           VLLMGenerator (optional extra, CUDA)
    openai_backend.py         OpenAIGenerator: any OpenAI-compatible HTTP server
    text.py                   generate_text: one prompt from any ModelRef (`tunelab generate`)
"""

from importlib import import_module
from typing import Any

from tunelab.generation.types import GenerationSettings, Prompt, answer_texts, cut_at_stop, strip_reasoning, unfence

# The backends import torch/transformers (seconds): loaded on first use, so code that only needs
# the prompt types (task definitions, config checks, `tunelab config show`) stays fast.
_LAZY = {
    "OpenAIGenerator": "tunelab.generation.openai_backend",
    "TransformersGenerator": "tunelab.generation.transformers_backend",
    "VLLMGenerator": "tunelab.generation.vllm_backend",
    "generate_text": "tunelab.generation.text",
}

__all__ = ["GenerationSettings", "OpenAIGenerator", "Prompt", "TransformersGenerator", "VLLMGenerator", "answer_texts",
           "cut_at_stop", "generate_text", "strip_reasoning", "unfence"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tunelab.generation' has no attribute {name!r}")
