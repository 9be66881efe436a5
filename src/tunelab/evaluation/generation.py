"""Model variants as generation sessions for evaluation, and the judge of judged tasks.

The generators themselves (transformers, vLLM, OpenAI-compatible HTTP) live in
`tunelab.generation`; a variant is named and loaded by `models.ref.ModelRef`.

The adapter is fixed while a variant is evaluated, so in-process generation runs on a merged
copy (W + B A * scale folded in, `merge_and_unload`): LoRA layers cost ~40% of a forward pass
in generation, a merged one costs nothing extra (`bench/eval_throughput.py`). The copy is kept
only when it matches the adapter on a probe (logits within `MERGE_RTOL`, the same greedy
tokens); otherwise evaluation stays on the adapter, with a warning.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch

from tunelab.data.tokenize import resolve_chat_template
from tunelab.errors import EvalError, ModelError
from tunelab.generation import OpenAIGenerator, TransformersGenerator, VLLMGenerator
from tunelab.models.loading import resolve_model_path
from tunelab.models.ref import ModelRef

log = logging.getLogger(__name__)
MERGE_RTOL = 1e-3  # as `tunelab export`: max |logit difference| / max(1, largest |logit|)
PROBE_TOKENS = 16  # greedy tokens both models must agree on
PROBES = (
    [{"role": "user", "content": "Write a Python function that returns the factorial of n."}],
    [{"role": "user", "content": "Fix the bug: def add(a, b): return a - b"}],
)


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
        # The local model is needed by model-scored tasks (loss) whatever the generation backend;
        # an endpoint may serve a model that is not on this machine, so there it is optional.
        try:
            self.model_ref: ModelRef | None = ModelRef.parse(ref, self.run_dir, base=exp.model)
        except ModelError:
            if cfg.backend != "openai":
                raise
            self.model_ref = None
        own = self.model_ref is None or self.model_ref.run is None or self.model_ref.run.resolve() == self.run_dir.resolve()
        # The experiment being evaluated is this run's config; a variant of another run
        # keeps the template it was trained with.
        self.chat_template = exp.data.chat_template if own else self.model_ref.chat_template
        if cfg.backend == "openai":
            if not cfg.endpoint.base_url:
                raise EvalError("eval.backend is openai but eval.endpoint.base_url is not set")
            self.identity = f"openai:{cfg.endpoint.base_url}:{cfg.endpoint.model or ref}"
        else:
            self.identity = self.model_ref.identity()

    def model_and_tokenizer(self) -> tuple[Any, Any]:
        """The in-process model and tokenizer (chat template resolved as in training)."""
        if self._model is None:
            if self.model_ref is None:
                raise EvalError(f"'{self.ref}' is served by the endpoint but is not a model on this machine; "
                                "tasks that score the model itself (loss) need it locally")
            model, tok, _ = self.model_ref.load()
            resolve_chat_template(tok, self.chat_template)
            self._model = (model, tok)
        return self._model

    def generator(self) -> Any:
        """The `task.Generator` for this variant and backend."""
        if self._gen is None:
            if self.backend == "openai":
                e = self.cfg.endpoint
                self._gen = OpenAIGenerator(e.base_url, e.model or self.ref, e.api_key_env, e.max_concurrency,
                                            e.max_retries, timeout_s=e.timeout_s,
                                            enable_thinking=self.cfg.enable_thinking)
            elif self.backend == "vllm":
                adapter = self.model_ref.adapter_dir
                base = resolve_model_path(self.model_ref.base_config().name)
                self._gen = VLLMGenerator(base, str(adapter) if adapter is not None else None,
                                          enable_thinking=self.cfg.enable_thinking)
            else:
                model, tok = self.model_and_tokenizer()
                merged = merged_for_generation(model, tok)
                # The merged copy replaces the adapter (one model in memory); it matched it on the probe.
                self._model = (merged, tok)
                self._gen = TransformersGenerator(merged, tok, self.cfg.batch_size, self.chat_template,
                                                  enable_thinking=self.cfg.enable_thinking)
        return self._gen

    def close(self) -> None:
        """Free the model before the next variant is loaded."""
        self._model = self._gen = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()




def merged_for_generation(model: Any, tokenizer: Any) -> Any:
    """A merged copy of a LoRA `model` when it matches the adapter on a probe, else `model`.

    Args:
        model: a loaded model (a PEFT model or a plain one, which is returned as is).
        tokenizer: its tokenizer, chat template set.

    Returns:
        The merged model (eval mode), or `model` itself when it has no adapter to merge or the
        merged copy fails the parity check (then with a logged warning).
    """
    if not hasattr(model, "merge_and_unload"):
        return model
    try:
        merged = copy.deepcopy(model).merge_and_unload().eval()
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as e:  # e.g. a quantized base
        log.warning("evaluating on the adapter: merging it for generation failed (%s)", e)
        return model
    problem = merge_mismatch(model, merged, tokenizer)
    if problem is not None:
        log.warning("evaluating on the adapter: its merged copy %s", problem)
        del merged
        return model
    return merged


@torch.inference_mode()
def merge_mismatch(adapter: Any, merged: Any, tokenizer: Any) -> str | None:
    """Why `merged` does not stand in for `adapter` on the probes, or None when it does.

    Per probe, the merged copy answers greedily (`PROBE_TOKENS`), then both models score that
    whole sequence in one forward pass each: their logits must agree within `MERGE_RTOL` at every
    position, prompt and answer, and pick the same top token at each answer position. So the
    adapter, asked the same prefix, makes the same greedy choices as the merged copy (whatever
    `generation_config` adds on top, e.g. a repetition penalty, acts on both alike), checked with
    one generation instead of two."""
    worst, scale = 0.0, 1.0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for messages in PROBES:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]], device=merged.device)
        seq = merged.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=PROBE_TOKENS,
                              do_sample=False, pad_token_id=pad, top_k=None)
        m = merged(input_ids=seq).logits.float()  # [1, T, V]
        a = adapter(input_ids=seq.to(adapter.device)).logits.float().to(m.device)
        worst, scale = max(worst, float((a - m).abs().max())), max(scale, float(a.abs().max()))
        if worst > MERGE_RTOL * scale:
            return f"differs from it: max |logit difference| {worst:.3g} > {MERGE_RTOL * scale:.3g}"
        answer = slice(ids.shape[1] - 1, seq.shape[1] - 1)  # the positions that chose each answer token
        if not torch.equal(a[0, answer].argmax(-1), m[0, answer].argmax(-1)):
            return f"generates other greedy tokens on the probe {messages[-1]['content']!r}"
    return None
