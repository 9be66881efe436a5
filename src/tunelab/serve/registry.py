"""The served models: one base model in memory and any number of LoRA adapters on top of it.

Every adapter is loaded once into the same `peft.PeftModel` under its own adapter name; a
request picks its adapter with `set_adapter` (or `disable_adapter()` for the base), so switching
costs microseconds and the base weights exist once. Names clients use:

    base                       the base model (also under its model name when given as one)
    final, best, step-N        adapters of a run directory (`--run-dir`)
    NAME                       `--adapter NAME=REF`; a bare REF is named after its folder

Every ref is a `models.ref.ModelRef`; the prompt template is the one the adapters' run trained with.

At load time each adapter's effect on the base is measured on a probe prompt; an adapter that
changes no logit (a LoRA whose B matrices are still zero, USERS.md 5) is reported loudly,
since serving it would silently serve the base.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel

from tunelab.data.tokenize import end_of_turn, resolve_chat_template
from tunelab.errors import ModelError
from tunelab.models.adapters import is_variant_name, list_variants
from tunelab.models.ref import ModelRef

log = logging.getLogger(__name__)

PROBE = [{"role": "user", "content": "Write a Python function that returns the sum of a list."}]
NOOP_ATOL = 1e-6  # max |logit change| at or below which an adapter counts as doing nothing


@dataclass
class ServedModel:
    """One model name the server answers to."""

    name: str
    adapter: str | None  # PEFT adapter name inside the shared model; None = the base
    source: str  # the ref or folder it was loaded from
    effect: float | None = None  # max |logit change| against the base on PROBE (adapters only)

    @property
    def is_noop(self) -> bool:
        return self.effect is not None and self.effect <= NOOP_ATOL


class ModelRegistry:
    """A loaded base model, its adapters and tokenizer, and how prompts are encoded for it."""

    def __init__(self, model: Any, tokenizer: Any, models: dict[str, ServedModel], template: str,
                 max_len: int | None = None) -> None:
        self.model, self.tok, self.models, self.template = model, tokenizer, models, template
        self.end_of_turn = end_of_turn(tokenizer)
        self.max_len = max_len or _context_length(model, tokenizer)
        eot = self._single_token(self.end_of_turn) if self.end_of_turn else None
        eos = [tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)]
        flat = [i for c in eos for i in (c if isinstance(c, list) else [c]) if isinstance(i, int) and i >= 0]
        self._eos, self._eot = sorted(set(flat)), eot
        # Adapters are switched on the one shared model: one generation at a time, even when
        # several servers or a chat share this registry.
        self._lock = threading.RLock()

    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str) -> ServedModel | None:
        return self.models.get(name)

    @contextmanager
    def activate(self, served: ServedModel) -> Iterator[Any]:
        """The shared model with `served`'s adapter active (or none), held for this thread only."""
        with self._lock:
            if served.adapter is None:
                if hasattr(self.model, "disable_adapter"):
                    with self.model.disable_adapter():
                        yield self.model
                else:
                    yield self.model
            else:
                self.model.set_adapter(served.adapter)
                yield self.model

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Token ids of `messages` in the training chat template, ending with the reply header."""
        text = self.tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        # The template writes its own special tokens (bos included), as in training.
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def encode_text(self, text: str) -> list[int]:
        """Token ids of a raw text prompt, with the tokenizer's usual special tokens."""
        return self.tok(text, add_special_tokens=True)["input_ids"]

    def stop_ids(self, chat: bool) -> list[int]:
        """Token ids that end an answer: eos, plus the end-of-turn token for chat replies."""
        return sorted(set(self._eos + ([self._eot] if chat and self._eot is not None else [])))

    def stop_strings(self, chat: bool) -> list[str]:
        """A multi-token end-of-turn marker can only stop a chat reply as text."""
        return [self.end_of_turn] if chat and self.end_of_turn and self._eot is None else []

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[0])

    def _single_token(self, text: str) -> int | None:
        tid = self.tok.convert_tokens_to_ids(text)
        return tid if isinstance(tid, int) and tid >= 0 and tid != self.tok.unk_token_id else None


def _context_length(model: Any, tok: Any) -> int:
    """The longest sequence the model takes: its position limit, or the tokenizer's if smaller."""
    cfg = model.config
    limits = [getattr(cfg, k, None) for k in ("max_position_embeddings", "n_positions", "seq_length")]
    limits.append(getattr(tok, "model_max_length", None))
    usable = [int(x) for x in limits if isinstance(x, int) and 0 < x < 10**7]
    return min(usable) if usable else 2048


# ---- loading ----------------------------------------------------------------------------------


def parse_adapter(spec: str) -> tuple[str, str]:
    """`NAME=REF` -> (NAME, REF); a bare REF is named after itself (`final`) or its folder."""
    name, sep, ref = spec.partition("=")
    if not sep:
        ref = spec
        name = spec if is_variant_name(spec) else Path(spec.rstrip("/")).name
    if not name or not ref:
        raise ModelError(f"--adapter '{spec}': expected NAME=PATH or PATH")
    return name, ref


def adapter_ref(ref: str, run_dir: Path | None) -> ModelRef:
    """The ModelRef of an adapter to serve; anything but a PEFT adapter is refused."""
    parsed = ModelRef.parse(ref, run_dir)
    if parsed.adapter_dir is None:
        raise ModelError(f"adapter '{ref}' is not a PEFT adapter folder (no adapter_config.json)")
    return parsed


def load_registry(model: str | None = None, adapters: Sequence[str] = (), run_dir: Path | None = None,
                  device: str | None = None, chat_template: str | None = None,
                  max_len: int | None = None) -> ModelRegistry:
    """Load a base model and adapters for serving or chatting.

    Args:
        model: any model ref (`models.ref`): `base` (needs `run_dir`), a variant or adapter
            folder (its base is loaded and the adapter served under its name), or a model name
            (`builtin:NAME`, hub id, folder). Default: `base` when `run_dir` is given.
        adapters: `NAME=REF` or `REF` (REF: final/best/step-N with `run_dir`, RUN_DIR:VARIANT,
            or a folder). With `run_dir` and neither `model` nor `adapters`: every variant of the run.
        chat_template: auto/chatml/plain; default: the one the run was trained with.
    """
    run = Path(run_dir) if run_dir is not None else None
    if model is None:
        if run is None:
            raise ModelError("give --model (a model name or adapter folder) or --run-dir")
        model = "base"
        if not adapters:
            adapters = [v for v in list_variants(run) if v != "base"]
    main = ModelRef.parse(model, run)
    specs = [(name, adapter_ref(ref, run)) for name, ref in (parse_adapter(a) for a in adapters)]
    served = {"base": ServedModel("base", None, model)}
    lm, tok, _ = main.load(device)
    if main.adapter_dir is not None:
        served["base"].source = f"base of {model}"
        specs.insert(0, (parse_adapter(model)[0], main))
    elif main.kind != "base":
        served[model] = ServedModel(model, None, model)  # the base under its own name too
    for i, (name, ref) in enumerate(specs):
        if name in served:
            raise ModelError(f"two served models are named '{name}'; name them with --adapter NAME=PATH")
        if i == 0 and main.adapter_dir is not None:
            internal = next(iter(lm.peft_config))  # the adapter main.load() attached
        else:
            internal = f"adapter{i}"
            lm = _attach(lm, ref.adapter_dir, internal)
        served[name] = ServedModel(name, internal, str(ref.adapter_dir))
    # The adapters' training template: of the run they belong to, if any.
    trained = next((r.chat_template for r in [main, *(r for _, r in specs)] if r.run_dir is not None), "auto")
    template = chat_template or trained
    resolve_chat_template(tok, template)
    registry = ModelRegistry(lm, tok, served, template, max_len)
    measure_effects(registry)
    return registry


def _attach(lm: Any, path: Path, internal: str) -> Any:
    """Load the adapter at `path` into the shared PEFT model (wrapping a plain model first)."""
    try:
        if hasattr(lm, "load_adapter") and hasattr(lm, "peft_config"):
            lm.load_adapter(str(path), adapter_name=internal, is_trainable=False)
        else:
            lm = PeftModel.from_pretrained(lm, str(path), adapter_name=internal, is_trainable=False)
    except (OSError, ValueError, RuntimeError) as e:
        # RuntimeError: size mismatch, i.e. the adapter was trained on another base model.
        raise ModelError(f"cannot load the adapter in {path} onto this base model: {e}") from e
    lm.eval()
    return lm


@torch.inference_mode()
def measure_effects(registry: ModelRegistry) -> None:
    """Set each adapter's `effect` (max |logit change| on PROBE); warn about adapters that do nothing."""
    adapters = [m for m in registry.models.values() if m.adapter is not None]
    if not adapters:
        return
    ids = torch.tensor([registry.encode_chat(PROBE)], device=registry.model.device)  # [1, T]
    with registry.activate(registry.models["base"]) as lm:
        base = lm(input_ids=ids).logits.float()
    for m in adapters:
        with registry.activate(m) as lm:
            m.effect = float((lm(input_ids=ids).logits.float() - base).abs().max())
        if m.is_noop:
            log.warning("adapter '%s' (%s) does not change the base model's output (max |logit change| "
                        "%.2g): requests to it get the base's answers. Is it untrained (LoRA B all zero)?",
                        m.name, m.source, m.effect)
