"""The variants a run directory holds, and loading a weights folder on top of its base.

Layout read here (written by training):

    run_dir/config.yaml                  the resolved experiment (its `model` section is the base)
    run_dir/final/                       adapter after the last step
    run_dir/checkpoints/step-N/          adapter (+ resume state) every `save_every` steps
    run_dir/train/summary.json           "best_step" (or "best_checkpoint") when validation ran
    run_dir/eval/selection.json          "resolved": the checkpoint selection resolved `best` to

Adapters are plain PEFT folders, loaded with `peft.PeftModel.from_pretrained` on top of the
base model. Naming a variant (`final`, `runs/x:step-40`, a folder, ...) is `models.ref.ModelRef`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel

from tunelab.config import DataConfig, ModelConfig, load_config
from tunelab.errors import ModelError, did_you_mean
from tunelab.models.loading import load_model, load_tokenizer

STEP = re.compile(r"^step-(\d+)$")
RUN_VARIANTS = ("base", "final", "best")  # and step-N


def is_variant_name(text: str) -> bool:
    """`base`, `final`, `best` or `step-N` (N digits only)."""
    return text in RUN_VARIANTS or bool(STEP.match(text))


def list_variants(run_dir: str | Path) -> list[str]:
    """Variants a run holds: base, final, best, step-N (by N)."""
    run_dir = Path(run_dir)
    refs = ["base"]
    if is_model_dir(run_dir / "final"):
        refs.append("final")
    if _best_dir(run_dir) is not None:
        refs.append("best")
    refs.extend(f"step-{n}" for n, _ in _checkpoints(run_dir))
    return refs


def variant_dir(run: Path, variant: str) -> Path:
    """The folder of `final`, `best` or `step-N` in `run`.

    Raises:
        ModelError: the run does not hold it (listing what it holds).
    """
    if variant == "final":
        target = run / "final"
    elif variant == "best":
        best = _best_dir(run)
        if best is None:
            summary = run / "train" / "summary.json"
            raise ModelError(
                f"no best checkpoint recorded in {run / 'eval' / 'selection.json'} (checkpoint selection) or "
                f"{summary} (training without validation, or the checkpoint was deleted); "
                f"available: {', '.join(list_variants(run))}"
            )
        target = best
    else:
        target = run / "checkpoints" / variant
    if not is_model_dir(target):
        available = list_variants(run)
        raise ModelError(
            f"model ref '{variant}' not found in {run}{did_you_mean(variant, available)}; "
            f"available: {', '.join(available)}"
        )
    return target


def owner_run(folder: Path) -> tuple[Path, str] | None:
    """`(run_dir, variant)` when `folder` is a run's `final/` or `checkpoints/step-N/`, else None."""
    folder = folder.resolve()
    if folder.name == "final" and is_run_dir(folder.parent):
        return folder.parent, "final"
    if STEP.match(folder.name) and folder.parent.name == "checkpoints" and is_run_dir(folder.parent.parent):
        return folder.parent.parent, folder.name
    return None


def is_model_dir(path: Path) -> bool:
    return (path / "adapter_config.json").is_file() or (path / "config.json").is_file()


def is_run_dir(path: Path) -> bool:
    """config.yaml plus something training writes, so a stray config.yaml is not mistaken for one."""
    return (path / "config.yaml").is_file() and any((path / d).exists() for d in ("checkpoints", "train", "env.json"))


def run_model_cfg(run: Path) -> ModelConfig:
    """The base model of a run: the `model` section of its config.yaml."""
    return _run_config(run).model


def run_data_cfg(run: Path) -> DataConfig:
    """The data section of a run (its `chat_template` is how prompts are rendered)."""
    return _run_config(run).data


def adapter_base(folder: Path) -> ModelConfig:
    """The base model a standalone PEFT adapter records (`base_model_name_or_path`)."""
    try:
        adapter = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        adapter = {}
    base = adapter.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"cannot tell the base model of {folder}: no run config.yaml above it and "
                         f"no base_model_name_or_path in adapter_config.json; pass --run-dir")
    return ModelConfig(name=base, revision=adapter.get("revision"))


def load_folder(folder: Path, base: ModelConfig, device: torch.device | str | None) -> tuple[Any, Any]:
    """Load an adapter folder on top of `base`, or a full fine-tuned model folder; in eval mode."""
    if (folder / "adapter_config.json").is_file():
        model, tok = _load_adapter(folder, base, device)
    elif (folder / "config.json").is_file():
        # Full fine-tuning saves whole models; load them with the run's dtype/attention settings.
        model = load_model(base.model_copy(update={"name": str(folder), "revision": None}), device)
        tok = load_tokenizer(_own_tokenizer(folder, base))
    else:
        raise ModelError(f"{folder} holds neither a PEFT adapter (adapter_config.json) nor a model (config.json)")
    model.eval()
    return model, tok


def _load_adapter(folder: Path, base: ModelConfig, device: torch.device | str | None) -> tuple[Any, Any]:
    model = load_model(base, device)
    try:
        model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    except (OSError, ValueError, RuntimeError) as e:
        # RuntimeError: size mismatch, i.e. the adapter was trained on another base model.
        raise ModelError(f"cannot load the adapter in {folder} onto '{base.name}': {e}") from e
    return model, load_tokenizer(_own_tokenizer(folder, base))


def _own_tokenizer(folder: Path, base: ModelConfig) -> ModelConfig:
    """Prefer a tokenizer saved next to the weights (training may have changed it)."""
    if (folder / "tokenizer_config.json").is_file():
        return base.model_copy(update={"name": str(folder), "revision": None})
    return base


def _run_config(run: Path) -> Any:
    config = run / "config.yaml"
    if not config.is_file():
        raise ModelError(f"{run} is not a run directory: it has no config.yaml")
    return load_config(config)


def _checkpoints(run: Path) -> list[tuple[int, Path]]:
    ckpt = run / "checkpoints"
    if not ckpt.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt.iterdir() if (m := STEP.match(p.name)) and is_model_dir(p)]
    return sorted(found)


def _best_dir(run: Path) -> Path | None:
    """The checkpoint `best` names, if it still exists: the one the run's checkpoint selection
    resolved (`eval/selection.json` "resolved": the checkpoint that won on the selection split,
    or, when no candidate differed beyond the noise, the one trained longest among the tied),
    else the one `train/summary.json` names as best (lowest validation loss)."""
    resolved = _json(run / "eval" / "selection.json").get("resolved")
    if isinstance(resolved, str) and (resolved == "final" or STEP.match(resolved)):
        target = run / "final" if resolved == "final" else run / "checkpoints" / resolved
        if is_model_dir(target):
            return target
    summary = _json(run / "train" / "summary.json")
    step, ckpt = summary.get("best_step"), summary.get("best_checkpoint")
    candidates: list[Path] = []
    if isinstance(step, int) and not isinstance(step, bool):
        candidates.append(run / "checkpoints" / f"step-{step}")
    if isinstance(ckpt, str) and ckpt:
        # Absolute, relative to the run ("checkpoints/step-40") or a bare name ("step-40").
        candidates += [Path(ckpt), run / ckpt, run / "checkpoints" / ckpt]
    return next((c for c in candidates if is_model_dir(c)), None)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
