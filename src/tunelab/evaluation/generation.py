"""Model variants as generation sessions for evaluation, and the judge of judged tasks.

The generators themselves (transformers, vLLM, OpenAI-compatible HTTP) live in
`tunelab.generation`; a variant is named and loaded by `models.ref.ModelRef`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tunelab.data.tokenize import resolve_chat_template
from tunelab.errors import EvalError
from tunelab.generation import OpenAIGenerator, TransformersGenerator, VLLMGenerator
from tunelab.models.loading import resolve_model_path
from tunelab.models.ref import ModelRef


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
            self.model_ref = ModelRef.parse(ref, self.run_dir, base=exp.model)
            self.identity = self.model_ref.identity()
            own = self.model_ref.run is None or self.model_ref.run.resolve() == self.run_dir.resolve()
            # The experiment being evaluated is this run's config; a variant of another run
            # keeps the template it was trained with.
            self.chat_template = exp.data.chat_template if own else self.model_ref.chat_template

    def model_and_tokenizer(self) -> tuple[Any, Any]:
        """The in-process model and tokenizer (chat template resolved as in training)."""
        if self._model is None:
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
                                            e.max_retries, timeout_s=e.timeout_s)
            elif self.backend == "vllm":
                adapter = self.model_ref.adapter_dir
                base = resolve_model_path(self.model_ref.base_config().name)
                self._gen = VLLMGenerator(base, str(adapter) if adapter is not None else None)
            else:
                model, tok = self.model_and_tokenizer()
                self._gen = TransformersGenerator(model, tok, self.cfg.batch_size, self.chat_template)
        return self._gen

    def close(self) -> None:
        """Free the model before the next variant is loaded."""
        self._model = self._gen = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


