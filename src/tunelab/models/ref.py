"""`ModelRef`: the one way to name a model everywhere (eval, compare, generate, chat, serve, export).

`ModelRef.parse(text, run_dir)` reads what a person wrote, once:

    base, final, best, step-N        a variant of `run_dir` (N digits only)
    RUN_DIR:final|best|step-N|base   a variant of another run (named `RUN:final` in tables)
    runs/x/final, runs/x/checkpoints/step-N   a run's folder: that run's variant
    a PEFT adapter folder            on the base its adapter_config.json records
    a model folder, builtin:NAME, a hub id    a whole model
    any of these + PROMPTSTYLE       `base+few-shot`, `base+cot`: the same weights, prompted so

A ref that belongs to a run loads on that run's base with that run's chat template, so a
checkpoint folder given alone renders prompts exactly as evaluation did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch

from tunelab.config import ModelConfig
from tunelab.data.tokenize import resolve_chat_template
from tunelab.errors import ModelError
from tunelab.models.adapters import (adapter_base, is_variant_name, list_variants, load_folder, owner_run,
                                     run_data_cfg, run_model_cfg, variant_dir)
from tunelab.models.identity import base_identity, folder_identity
from tunelab.models.loading import BUILTIN_PREFIX, load_base, resolve_model_path

Kind = Literal["base", "variant", "adapter", "model"]
FORMS = ("base, final, best, step-N (N a number, e.g. step-40), RUN_DIR:final / RUN_DIR:best / RUN_DIR:step-N, "
         "an adapter or model folder, builtin:NAME or a hub id; add +STYLE for a prompting style (base+few-shot)")
_STYLE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class LoadedModel(NamedTuple):
    """A loaded ref: the model (eval mode), its tokenizer (template set) and the template mode."""

    model: Any
    tokenizer: Any
    chat_template: str  # auto / chatml / plain: the run's `data.chat_template`, else auto


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference. Build it with `ModelRef.parse`.

    Attributes:
        text: what was written.
        kind: "base" (a run's base model), "variant" (final/best/step-N of a run), "adapter"
            (a PEFT folder outside any run) or "model" (hub id, builtin:NAME, model folder).
        name: readable, unique label for folders and tables (`final`, `otherrun:step-40`).
        variant: base/final/best/step-N for run refs, else None.
        run: the run directory the ref belongs to, else None.
        folder: the weights folder of a variant or adapter, else None.
        model: the model name of a "model" ref, else None.
        prompting: the prompt style a `+STYLE` suffix names (weights are unchanged), else None.
    """

    text: str
    kind: Kind
    name: str
    variant: str | None = None
    run: Path | None = None
    folder: Path | None = None
    model: str | None = None
    prompting: str | None = None
    base: ModelConfig | None = field(default=None, compare=False, repr=False)  # given base config

    @classmethod
    def parse(cls, text: str | Path, run_dir: str | Path | None = None,
              base: ModelConfig | None = None) -> ModelRef:
        """Parse `text` (see the module docstring for the forms).

        Args:
            text: the reference as a person wrote it.
            run_dir: the run that bare variants (`final`, `step-N`) point into.
            base: the base model of `run_dir` (or of a standalone adapter) instead of the one
                its config.yaml (or adapter_config.json) records.

        Raises:
            ModelError: a malformed ref (`step-abc`), a missing folder or variant, an unknown
                `RUN_DIR:thing`, or a bare variant without a run directory.
        """
        text = str(text)
        run = Path(run_dir) if run_dir is not None else None
        core, prompting = split_prompting(text)
        ref = _parse_core(core, run, base)
        if prompting is None:
            return ref
        return cls(**{**ref.__dict__, "text": text, "prompting": prompting, "name": f"{ref.name}+{prompting}"})

    @property
    def run_dir(self) -> Path | None:
        """The run directory this ref belongs to (given, named, or the one its folder sits in)."""
        return self.run

    @property
    def adapter_dir(self) -> Path | None:
        """The PEFT adapter folder, or None (a base, a whole model, a full fine-tuned variant)."""
        if self.folder is not None and (self.folder / "adapter_config.json").is_file():
            return self.folder
        return None

    @property
    def weights_name(self) -> str:
        """`name` without the prompting suffix: what the weights are called."""
        return self.name if self.prompting is None else self.name[: -len(self.prompting) - 1]

    @property
    def chat_template(self) -> str:
        """The run's `data.chat_template` when the ref belongs to a run, else "auto"."""
        if self.run is not None and (self.run / "config.yaml").is_file():
            return run_data_cfg(self.run).chat_template
        return "auto"

    def base_config(self) -> ModelConfig:
        """The base model config: the given one, the run's, the adapter's record, or the model itself."""
        if self.kind == "model":
            return ModelConfig(name=self.model or self.text)
        if self.base is not None:
            return self.base
        if self.run is not None:
            return run_model_cfg(self.run)
        if self.folder is not None:
            return adapter_base(self.folder)
        raise ModelError(f"the ref '{self.text}' needs a run directory (--run-dir) or a model config")

    def identity(self) -> str:
        """What this ref's outputs depend on: the base identity, or a hash of it and the variant's
        weight files (`models.identity`). The prompting suffix is not part of it."""
        base = base_identity(self.base_config())
        if self.folder is None:
            return base
        return folder_identity("model" if self.kind == "model" else "adapter", self.folder, base)

    def load(self, device: torch.device | str | None = None) -> LoadedModel:
        """Load the weights in eval mode, with the tokenizer's chat template set as in training.

        Args:
            device: where to load; default: the base config's `device`.
        """
        cfg = self.base_config()
        if self.folder is None:
            model, tok = load_base(cfg, device)
            model.eval()
        else:
            model, tok = load_folder(self.folder, cfg, device)
        template = self.chat_template
        resolve_chat_template(tok, template)
        return LoadedModel(model, tok, template)


def split_prompting(text: str) -> tuple[str, str | None]:
    """`base+few-shot` -> ("base", "few-shot"); an existing path keeps its `+`. The one reader of
    the `+STYLE` syntax (the evaluation engine checks that STYLE is a prompt variant)."""
    core, sep, style = text.rpartition("+")
    if not sep or not core or not _STYLE.match(style) or Path(text).expanduser().exists():
        return text, None
    return core, style


def _parse_core(text: str, run: Path | None, base: ModelConfig | None) -> ModelRef:
    if text.startswith("step-") and "/" not in text and not is_variant_name(text):
        raise ModelError(f"malformed model ref '{text}': step-N takes a number of steps. Model refs are: {FORMS}")
    if is_variant_name(text) and (run is not None or not Path(text).is_dir()):
        if run is None:
            if text == "base" and base is not None:
                return ModelRef(text, "base", "base", variant="base", base=base)
            raise ModelError(f"the model ref '{text}' names a variant of a run, so it needs a run directory: "
                             f"it needs --run-dir (or write RUN_DIR:{text})"
                             + ("; or give a model config" if text == "base" else ""))
        return _variant(text, text, run, own=True, base=base)
    if text.startswith(BUILTIN_PREFIX):
        resolve_model_path(text, need_weights=False)  # an unknown builtin fails here, with the known ones
        return ModelRef(text, "model", text, model=text)
    if ":" in text:
        return _other_run(text, run)
    path = Path(text).expanduser()
    if path.is_dir():
        return _folder(text, path, run, base)
    if run is not None and "/" not in text and "\\" not in text:
        raise ModelError(f"unknown model ref '{text}': not base/final/best/step-N and not a folder; "
                         f"this run has: {', '.join(list_variants(run))}")
    resolve_model_path(text)  # a path that does not exist fails here; a hub id passes
    return ModelRef(text, "model", text, model=text)


def _variant(text: str, variant: str, run: Path, own: bool, base: ModelConfig | None) -> ModelRef:
    """A variant of `run`; `own`: `run` is the run the caller gave (names stay short)."""
    name = variant if own else f"{run.resolve().name}:{variant}"
    if variant == "base":
        return ModelRef(text, "base", name, variant="base", run=run, base=base if own else None)
    return ModelRef(text, "variant", name, variant=variant, run=run, folder=variant_dir(run, variant),
                    base=base if own else None)


def _other_run(text: str, run: Path | None) -> ModelRef:
    """`RUN_DIR:VARIANT`: a variant of another run."""
    prefix, _, variant = text.rpartition(":")
    other = Path(prefix).expanduser()
    if not other.is_dir():
        raise ModelError(f"model ref '{text}': no run directory {prefix}. Model refs are: {FORMS}")
    if not is_variant_name(variant):
        raise ModelError(f"model ref '{text}': '{variant}' is not a variant of a run; "
                         f"{prefix} has: {', '.join(list_variants(other))}")
    return _variant(text, variant, other, own=_same(other, run), base=None)


def _folder(text: str, path: Path, run: Path | None, base: ModelConfig | None) -> ModelRef:
    """A weights folder: a run's final/ or checkpoint, a standalone adapter, or a whole model."""
    owner = owner_run(path)
    if owner is not None:
        owner_dir, variant = owner
        own = _same(owner_dir, run)
        name = variant if own else f"{owner_dir.name}:{variant}"
        return ModelRef(text, "variant", name, variant=variant, run=owner_dir, folder=path,
                        base=base if own or run is None else None)
    if (path / "adapter_config.json").is_file():
        # An adapter outside a run: on `run`'s base when one was given, else on its recorded base.
        # Named apart from a run's own variants: an outside folder called final/ is not `final`.
        return ModelRef(text, "adapter", f"adapter:{path.resolve().name}", run=run, folder=path, base=base)
    if (path / "config.json").is_file():
        return ModelRef(text, "model", f"model:{path.resolve().name}", model=text)
    raise ModelError(f"{path} is not a PEFT adapter folder (no adapter_config.json) nor a model folder "
                     "(no config.json)")


def _same(a: Path, b: Path | None) -> bool:
    return b is not None and a.resolve() == b.resolve()
