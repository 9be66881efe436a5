"""The generation layer: prompts in, new text out, for every part of tunelab that generates.

Below training (its generation metric), evaluation, compare and serve; above models. Every
backend implements `generate(prompts, settings) -> settings.n continuations per prompt`, new
text only, cut before the first stop sequence.

    types.py                  Prompt, GenerationSettings, cut_at_stop, unfence
    transformers_backend.py   TransformersGenerator: batched, in process (the default)
    vllm_backend.py           VLLMGenerator (optional extra, CUDA)
    openai_backend.py         OpenAIGenerator: any OpenAI-compatible HTTP server
    text.py                   generate_text: one prompt from any ModelRef (`tunelab generate`)
"""

from tunelab.generation.openai_backend import OpenAIGenerator
from tunelab.generation.text import generate_text
from tunelab.generation.transformers_backend import TransformersGenerator
from tunelab.generation.types import GenerationSettings, Prompt, cut_at_stop, unfence
from tunelab.generation.vllm_backend import VLLMGenerator

__all__ = ["GenerationSettings", "OpenAIGenerator", "Prompt", "TransformersGenerator", "VLLMGenerator",
           "cut_at_stop", "generate_text", "unfence"]
