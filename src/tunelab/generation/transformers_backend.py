"""In-process batched generation with a transformers model (a plain or a PEFT model).

The one generation path of eval, `tunelab generate`, compare and the training-time metric:
`generate(prompts, settings) -> n continuations per prompt`, new text only, cut before the
first stop sequence.

Batching: prompts are sorted by length (less padding), padded on the LEFT so that every row's
last prompt token sits at the same position and new tokens are appended in step (right
padding would put pad tokens between a short prompt and its continuation), and decoded with
the KV cache. Greedy output is the same batched or one by one (checked by
`bench/generation_batching.py`); sampled output is reproducible for the same seed, prompts and
batch size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import StoppingCriteriaList

from tunelab.data.tokenize import end_of_turn, resolve_chat_template, template_kwargs
from tunelab.generation.types import GenerationSettings, Prompt, cut_at_stop


class TransformersGenerator:
    """Batched generation with a loaded transformers model (a plain or a PEFT model).

    Args:
        model, tokenizer: as returned by `models.ref.ModelRef.load`.
        batch_size: prompts per forward batch (each expands to `settings.n` rows when sampling).
        chat_template: the data layer's template mode ("auto", "chatml", "plain"); use the run's
            `data.chat_template` so prompts are rendered exactly as in training.
        on_progress: called with the number of prompts finished after each batch.
        enable_thinking: the thinking switch of templates that have one (Qwen3); None = the
            template's default (`eval.enable_thinking`, which training renders with too).
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, chat_template: str = "auto",
                 on_progress: Callable[[int], None] | None = None, enable_thinking: bool | None = None) -> None:
        self.model, self.tok, self.batch_size = model, tokenizer, batch_size
        self.template_kwargs = template_kwargs(enable_thinking)
        self.on_progress = on_progress
        self.template = resolve_chat_template(tokenizer, chat_template)
        self.end_of_turn = end_of_turn(tokenizer)
        if tokenizer.pad_token_id is None:  # base models often have no pad token; any id works under the mask
            tokenizer.pad_token = tokenizer.eos_token
        self.stats = {"prompts": 0, "new_tokens": 0, "seconds": 0.0}

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees: chat template + generation prompt, or the raw text."""
        if prompt.messages is None:
            return prompt.text or ""
        return self.tok.apply_chat_template(list(prompt.messages), tokenize=False, add_generation_prompt=True,
                                            **self.template_kwargs)

    def _eos_ids(self, chat: bool) -> list[int]:
        ids = []
        for cand in (self.tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            ids.extend(cand if isinstance(cand, list) else [cand])
        if chat and self.end_of_turn:
            eot = self._single_token(self.end_of_turn)
            if eot is not None:
                ids.append(eot)
        return sorted({i for i in ids if isinstance(i, int) and i >= 0})

    def _single_token(self, text: str) -> int | None:
        """The id of `text` if it is one token of the vocabulary, else None."""
        tid = self.tok.convert_tokens_to_ids(text)
        return tid if isinstance(tid, int) and tid >= 0 and tid != self.tok.unk_token_id else None

    def _encode(self, prompt: Prompt) -> list[int]:
        # A chat template writes its own special tokens (bos included); raw text gets the
        # tokenizer's usual ones (bos for Llama, nothing for Qwen).
        return self.tok(self.render(prompt), add_special_tokens=not prompt.is_chat)["input_ids"]

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[list[str]]:
        """`settings.n` continuations per prompt, in prompt order."""
        encoded = [self._encode(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        out: list[list[str]] = [[] for _ in prompts]
        for b, start in enumerate(range(0, len(order), self.batch_size)):
            idx = order[start : start + self.batch_size]
            texts = self._generate_batch([encoded[i] for i in idx], [prompts[i].is_chat for i in idx], settings, b)
            for i, gens in zip(idx, texts, strict=True):
                out[i] = gens
            if self.on_progress is not None:
                self.on_progress(len(idx))
        return out

    def _generate_batch(self, ids: list[list[int]], chat: list[bool], settings: GenerationSettings,
                        batch_index: int) -> list[list[str]]:
        pad = self.tok.pad_token_id
        width = max(len(x) for x in ids)
        # Left padding: [B, T] with real tokens flush right.
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.model.device)
        stops = list(settings.stop)
        eos = self._eos_ids(any(chat))
        if any(chat) and self.end_of_turn and self._single_token(self.end_of_turn) is None:
            stops.append(self.end_of_turn)  # a multi-token end-of-turn marker can only stop as text
        kwargs: dict[str, Any] = {"do_sample": False}
        n_rows = settings.n
        if not settings.greedy:
            kwargs = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p,
                      "num_return_sequences": settings.n}
            torch.manual_seed(settings.seed + batch_index)
        else:
            n_rows = 1  # greedy: n identical continuations, computed once
        if stops:
            # Our own criterion, not transformers' stop_strings: that one also matches text that
            # starts inside the prompt (a prompt ending in "\n" + a generated "\n\n" would stop
            # on "\n\n\n" before any of it was generated).
            kwargs["stopping_criteria"] = StoppingCriteriaList([_NewTextStop(self.tok, stops, width)])
        t0 = time.perf_counter()
        gen = self.model.generate(
            input_ids=input_ids, attention_mask=mask, max_new_tokens=settings.max_new_tokens,
            pad_token_id=pad, eos_token_id=eos or None, use_cache=True, top_k=None, **kwargs,
        )
        self.stats["seconds"] += time.perf_counter() - t0
        new = gen[:, width:]  # [B * n_rows, new]
        texts: list[list[str]] = []
        for row in range(len(ids)):
            gens = []
            for j in range(n_rows):
                toks = new[row * n_rows + j].tolist()
                self.stats["new_tokens"] += _count_new(toks, eos, pad)
                text = self.tok.decode(toks, skip_special_tokens=True)
                gens.append(cut_at_stop(text, stops))
            texts.append(gens * settings.n if n_rows == 1 else gens)
        self.stats["prompts"] += len(ids)
        return texts


class _NewTextStop:
    """Stopping criterion: a row is done once its NEW text contains a stop sequence."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_width: int) -> None:
        self.tok, self.stops, self.width = tokenizer, [s for s in stops if s], prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        # input_ids: [rows, prompt_width + generated so far]; decoding the new part of each row
        # every step is cheap next to a forward pass at these lengths (<= a few hundred tokens).
        texts = self.tok.batch_decode(input_ids[:, self.width:], skip_special_tokens=True)
        done = [any(s in t for s in self.stops) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _count_new(toks: list[int], eos: list[int], pad: int) -> int:
    """Generated tokens up to and including the first eos; the rest is padding of a finished row."""
    for i, t in enumerate(toks):
        if t in eos:
            return i + 1
    n = len(toks)
    while n and toks[n - 1] == pad:
        n -= 1
    return n
