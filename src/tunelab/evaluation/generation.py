"""Generation backends for evaluation: in-process transformers (batched) and optional vLLM.

Both implement `task.Generator`: `generate(prompts, settings) -> n continuations per prompt`,
new text only, cut before the first stop sequence. The OpenAI-compatible HTTP backend lives in
`openai_backend.py`.

Batching in transformers: prompts are sorted by length (less padding), padded on the LEFT so
that every row's last prompt token sits at the same position and new tokens are appended in
step (right padding would put pad tokens between a short prompt and its continuation), and
decoded with the KV cache. Greedy output is the same batched or one by one (checked by
`bench/generation_batching.py`); sampled output is reproducible for the same seed, prompts and
batch size.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from tunelab.evaluation.task import EvalError, GenerationSettings, Prompt


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop sequence."""
    cut = len(text)
    for s in stops:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut]


class TransformersGenerator:
    """Batched generation with a loaded transformers model (a plain or a PEFT model).

    Args:
        model, tokenizer: as returned by `models.adapters.load_variant`.
        batch_size: prompts per forward batch (each expands to `settings.n` rows when sampling).
        chat_template: the data layer's template mode ("auto", "chatml", "plain"); use the run's
            `data.chat_template` so prompts are rendered exactly as in training.
        on_progress: called with the number of prompts finished after each batch.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, chat_template: str = "auto",
                 on_progress: Callable[[int], None] | None = None) -> None:
        from tunelab.data.tokenize import end_of_turn, resolve_chat_template

        self.model, self.tok, self.batch_size = model, tokenizer, batch_size
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
        return self.tok.apply_chat_template(list(prompt.messages), tokenize=False, add_generation_prompt=True)

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
            from transformers import StoppingCriteriaList

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


class VLLMGenerator:
    """Generation with vLLM (optional extra, CUDA): base model plus an optional LoRA adapter.

    Args:
        model_path: base model folder or hub id; adapter_path: PEFT adapter folder or None.
    """

    def __init__(self, model_path: str, adapter_path: str | None = None, chat_template: str | None = None,
                 max_lora_rank: int = 64, **llm_kwargs: Any) -> None:
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

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[list[str]]:
        params = self._vllm.SamplingParams(
            n=settings.n, temperature=settings.temperature, top_p=settings.top_p if not settings.greedy else 1.0,
            max_tokens=settings.max_new_tokens, stop=list(settings.stop) or None, seed=settings.seed,
        )
        tok = self.llm.get_tokenizer()
        texts = [p.text if p.messages is None else tok.apply_chat_template(
            list(p.messages), tokenize=False, add_generation_prompt=True, chat_template=self.chat_template)
            for p in prompts]
        results = self.llm.generate(texts, params, lora_request=self.lora)
        return [[cut_at_stop(o.text, settings.stop) for o in r.outputs] for r in results]


# ---- model variants as generation sessions ---------------------------------------------------


class VariantSession:
    """One model variant of a run, loaded lazily: only when a task still has samples to do.

    Attributes:
        ref: the ModelRef (base, final, step-N, best, or an adapter folder).
        backend: "transformers", "openai" or "vllm" (`eval.backend`).
        identity: what the variant's outputs depend on (weights hash, or endpoint + model name);
            part of every cache fingerprint, so a retrained adapter is never served from cache.
    """

    def __init__(self, ref: str, run_dir: Path, exp: Any, cfg: Any) -> None:
        self.ref, self.run_dir, self.exp, self.cfg = ref, Path(run_dir), exp, cfg
        self.backend = cfg.backend
        self._model: tuple[Any, Any] | None = None
        self._gen: Any = None
        if cfg.backend == "openai":
            if not cfg.endpoint.base_url:
                raise EvalError("eval.backend is openai but eval.endpoint.base_url is not set")
            self.identity = f"openai:{cfg.endpoint.base_url}:{cfg.endpoint.model or ref}"
        else:
            self.identity = variant_identity(ref, self.run_dir, exp)

    def model_and_tokenizer(self) -> tuple[Any, Any]:
        """The in-process model and tokenizer (chat template resolved as in training)."""
        if self._model is None:
            from tunelab.data.tokenize import resolve_chat_template
            from tunelab.models.adapters import load_variant

            model, tok = load_variant(self.ref, run_dir=self.run_dir)
            resolve_chat_template(tok, self.exp.data.chat_template)
            self._model = (model, tok)
        return self._model

    def generator(self) -> Any:
        """The `task.Generator` for this variant and backend."""
        if self._gen is None:
            if self.backend == "openai":
                from tunelab.evaluation.openai_backend import OpenAIGenerator

                e = self.cfg.endpoint
                self._gen = OpenAIGenerator(e.base_url, e.model or self.ref, e.api_key_env, e.max_concurrency,
                                            e.max_retries, timeout_s=e.timeout_s)
            elif self.backend == "vllm":
                adapter = None if self.ref == "base" else str(_ref_dir(self.ref, self.run_dir))
                from tunelab.models.loading import resolve_model_path

                self._gen = VLLMGenerator(resolve_model_path(self.exp.model.name), adapter)
            else:
                model, tok = self.model_and_tokenizer()
                self._gen = TransformersGenerator(model, tok, self.cfg.batch_size, self.exp.data.chat_template)
        return self._gen

    def close(self) -> None:
        """Free the model before the next variant is loaded."""
        self._model = self._gen = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _ref_dir(ref: str, run_dir: Path) -> Path:
    from tunelab.models.adapters import run_ref_dir

    return Path(ref) if Path(ref).is_dir() else run_ref_dir(run_dir, ref)


def _hash_files(h: Any, files: Any) -> Any:
    """Feed each file's bytes to the hash object `h`, in 1 MB blocks; returns `h`."""
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h


def base_identity(exp: Any) -> str:
    """`base:<name>@<revision>`; a built-in model also gets a hash of its weights, since a newer
    tunelab may ship other weights under the same name (and cached results must not survive that)."""
    ident = f"base:{exp.model.name}@{exp.model.revision}"
    if str(exp.model.name).startswith("builtin:"):
        from tunelab.models.loading import resolve_model_path

        folder = Path(resolve_model_path(exp.model.name))
        ident += f"#{_hash_files(hashlib.sha256(), sorted(folder.glob('*.safetensors'))).hexdigest()[:16]}"
    return ident


def variant_identity(ref: str, run_dir: Path, exp: Any) -> str:
    """`base_identity`, or a hash of it and of the variant folder's weight and config files."""
    if ref == "base":
        return base_identity(exp)
    folder = _ref_dir(ref, run_dir)
    h = hashlib.sha256(base_identity(exp).encode())
    for f in sorted(folder.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".json") and f.name not in ("state.json",):
            h.update(f.name.encode())
            _hash_files(h, [f])
    return f"{ref}:{h.hexdigest()[:16]}"
