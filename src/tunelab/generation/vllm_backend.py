"""Generation with vLLM (optional extra, CUDA only): a base model plus an optional LoRA adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunelab.data.tokenize import template_kwargs
from tunelab.errors import EvalError
from tunelab.generation.types import GenerationSettings, Prompt, cut_at_stop


class VLLMGenerator:
    """Generation with vLLM (optional extra, CUDA): base model plus an optional LoRA adapter.

    Args:
        model_path: base model folder or hub id; adapter_path: PEFT adapter folder or None.
    """

    def __init__(self, model_path: str, adapter_path: str | None = None, chat_template: str | None = None,
                 max_lora_rank: int = 64, enable_thinking: bool | None = None, **llm_kwargs: Any) -> None:
        try:
            import vllm
            from vllm.lora.request import LoRARequest
        except ImportError:
            raise EvalError("the vllm backend needs vLLM (a CUDA GPU): pip install vllm; or use "
                            "backend: transformers / openai") from None
        self._vllm = vllm
        self.llm = vllm.LLM(model=model_path, enable_lora=adapter_path is not None,
                            max_lora_rank=max_lora_rank, **llm_kwargs)
        self.lora = LoRARequest("adapter", 1, adapter_path) if adapter_path else None
        self.chat_template = chat_template
        self.template_kwargs = template_kwargs(enable_thinking)

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees: chat template + generation prompt, or the raw text."""
        if prompt.messages is None:
            return prompt.text or ""
        return self.llm.get_tokenizer().apply_chat_template(
            list(prompt.messages), tokenize=False, add_generation_prompt=True, chat_template=self.chat_template,
            **self.template_kwargs)

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[list[str]]:
        params = self._vllm.SamplingParams(
            n=settings.n, temperature=settings.temperature, top_p=settings.top_p if not settings.greedy else 1.0,
            max_tokens=settings.max_new_tokens, stop=list(settings.stop) or None, seed=settings.seed,
        )
        texts = [self.render(p) for p in prompts]
        results = self.llm.generate(texts, params, lora_request=self.lora)
        return [[cut_at_stop(o.text, settings.stop) for o in r.outputs] for r in results]
