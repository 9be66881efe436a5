"""Load a model variant by its ModelRef: `base`, `final`, `best`, `step-N`, or an adapter folder.

This is the one function eval, compare, serve and generate use to name a model. Adapters are
plain PEFT folders, loaded with `peft.PeftModel.from_pretrained` on top of the run's base model.
Layout read here (written by training):

    run_dir/config.yaml                  the resolved experiment (its `model` section is the base)
    run_dir/final/                       adapter after the last step
    run_dir/checkpoints/step-N/          adapter (+ resume state) every `save_every` steps
    run_dir/train/summary.json           "best_step" (or "best_checkpoint") when validation ran
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from tunelab.config import ModelConfig, load_config
from tunelab.errors import ModelError, did_you_mean
from tunelab.models.loading import load_model, load_tokenizer

_STEP = re.compile(r"^step-(\d+)$")


def list_variants(run_dir: str | Path) -> list[str]:
    """ModelRefs that `load_variant` can load from this run: base, final, best, step-N (by N)."""
    run_dir = Path(run_dir)
    refs = ["base"]
    if _is_model_dir(run_dir / "final"):
        refs.append("final")
    if _best_dir(run_dir) is not None:
        refs.append("best")
    refs.extend(f"step-{n}" for n, _ in _checkpoints(run_dir))
    return refs


def load_variant(
    ref: str | Path,
    run_dir: str | Path | None = None,
    model_cfg: ModelConfig | None = None,
    device: torch.device | str | None = None,
):
    """Load the model a ModelRef names, in eval mode, with its tokenizer.

    Args:
        ref: `base`, `final`, `best`, `step-N` (all need `run_dir` or, for `base`, `model_cfg`),
            or the path of a PEFT adapter folder.
        run_dir: the run directory the ref points into.
        model_cfg: the base model; default: the `model` section of `run_dir/config.yaml` (for an
            adapter path inside a run directory, that run's config).
        device: where to load; default: `model_cfg.device`.

    Returns:
        `(model, tokenizer)`; the model is a `peft.PeftModel` for adapter refs (so
        `with model.disable_adapter():` gives the base outputs) and a plain model for `base`.

    Raises:
        ModelError: an unknown ref (listing the available ones), or no way to know the base.
    """
    ref = str(ref)
    run = Path(run_dir) if run_dir is not None else None
    if ref == "base":
        cfg = model_cfg or (_run_model_cfg(run) if run is not None else None)
        if cfg is None:
            raise ModelError("the ref 'base' needs a run directory (--run-dir) or a model config")
        return _finish(load_model(cfg, device), load_tokenizer(cfg))
    if run is not None and (ref in ("final", "best") or _STEP.match(ref)):
        target = run_ref_dir(run, ref)
    else:
        target = Path(ref).expanduser()
        if not target.is_dir():
            if run is None and (ref in ("final", "best") or _STEP.match(ref)):
                raise ModelError(f"the ref '{ref}' needs a run directory (--run-dir)")
            hint = f"; this run has: {', '.join(list_variants(run))}" if run is not None else ""
            raise ModelError(f"unknown model ref '{ref}': not base/final/best/step-N and not a folder{hint}")
    cfg = model_cfg or _base_cfg_for(target, run)
    return _load_dir(target, cfg, device)


def _load_dir(target: Path, cfg: ModelConfig, device: torch.device | str | None):
    """Load an adapter folder on top of `cfg`'s base, or a full fine-tuned model folder."""
    if (target / "adapter_config.json").is_file():
        from peft import PeftModel

        base = load_model(cfg, device)
        try:
            model = PeftModel.from_pretrained(base, str(target), is_trainable=False)
        except (OSError, ValueError, RuntimeError) as e:
            # RuntimeError: size mismatch, i.e. the adapter was trained on another base model.
            raise ModelError(f"cannot load the adapter in {target} onto '{cfg.name}': {e}") from e
        tok_cfg = _own_tokenizer(target, cfg)
        return _finish(model, load_tokenizer(tok_cfg))
    if (target / "config.json").is_file():
        # Full fine-tuning saves whole models; load them with the run's dtype/attention settings.
        full = cfg.model_copy(update={"name": str(target), "revision": None})
        return _finish(load_model(full, device), load_tokenizer(_own_tokenizer(target, cfg)))
    raise ModelError(f"{target} holds neither a PEFT adapter (adapter_config.json) nor a model (config.json)")


def _own_tokenizer(target: Path, cfg: ModelConfig) -> ModelConfig:
    """Prefer a tokenizer saved next to the weights (training may have changed it)."""
    if (target / "tokenizer_config.json").is_file():
        return cfg.model_copy(update={"name": str(target), "revision": None})
    return cfg


def _finish(model, tok):
    model.eval()
    return model, tok


def run_ref_dir(run: Path, ref: str) -> Path:
    if ref == "final":
        target = run / "final"
    elif ref == "best":
        best = _best_dir(run)
        if best is None:
            summary = run / "train" / "summary.json"
            raise ModelError(
                f"no best checkpoint recorded in {summary} (training without validation, or "
                f"the checkpoint was deleted); available: {', '.join(list_variants(run))}"
            )
        target = best
    else:
        target = run / "checkpoints" / ref
    if not _is_model_dir(target):
        available = list_variants(run)
        raise ModelError(
            f"model ref '{ref}' not found in {run}{did_you_mean(ref, available)}; "
            f"available: {', '.join(available)}"
        )
    return target


def _checkpoints(run: Path) -> list[tuple[int, Path]]:
    ckpt = run / "checkpoints"
    if not ckpt.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt.iterdir() if (m := _STEP.match(p.name)) and _is_model_dir(p)]
    return sorted(found)


def _best_dir(run: Path) -> Path | None:
    """The checkpoint `train/summary.json` names as best, if it still exists."""
    try:
        summary = json.loads((run / "train" / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    step, ckpt = summary.get("best_step"), summary.get("best_checkpoint")
    candidates: list[Path] = []
    if isinstance(step, int) and not isinstance(step, bool):
        candidates.append(run / "checkpoints" / f"step-{step}")
    if isinstance(ckpt, str) and ckpt:
        # Absolute, relative to the run ("checkpoints/step-40") or a bare name ("step-40").
        candidates += [Path(ckpt), run / ckpt, run / "checkpoints" / ckpt]
    return next((c for c in candidates if _is_model_dir(c)), None)


def _is_model_dir(path: Path) -> bool:
    return (path / "adapter_config.json").is_file() or (path / "config.json").is_file()


def _is_run_dir(path: Path) -> bool:
    """config.yaml plus something training writes, so a stray config.yaml is not mistaken for one."""
    return (path / "config.yaml").is_file() and any((path / d).exists() for d in ("checkpoints", "train", "env.json"))


def _run_model_cfg(run: Path) -> ModelConfig:
    config = run / "config.yaml"
    if not config.is_file():
        raise ModelError(f"{run} is not a run directory: it has no config.yaml")
    return load_config(config).model


def _base_cfg_for(target: Path, run: Path | None) -> ModelConfig:
    """The base model of an adapter: the run's config, else the adapter's own record."""
    if run is not None:
        return _run_model_cfg(run)
    # An adapter inside a run directory (run/final, run/checkpoints/step-N) uses that run's base.
    for parent in list(target.resolve().parents)[:2]:
        if _is_run_dir(parent):
            return _run_model_cfg(parent)
    if not (target / "adapter_config.json").is_file():
        return ModelConfig(name=str(target))  # a whole model folder is its own base
    try:
        adapter = json.loads((target / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        adapter = {}
    base = adapter.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"cannot tell the base model of {target}: no run config.yaml above it and "
                         f"no base_model_name_or_path in adapter_config.json; pass --run-dir")
    return ModelConfig(name=base, revision=adapter.get("revision"))
