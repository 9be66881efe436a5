"""Checkpoints: standard PEFT adapters plus the state needed to resume exactly.

    checkpoints/step-N/
      adapter_model.safetensors, adapter_config.json   (LoRA; full fine-tuning: model.safetensors)
      trainer_state.pt    optimizer, scheduler, RNG states, step, data position, loop state
      state.json          {"step", "val_loss", "base_model", ...}: written last, marks the
                          checkpoint complete; `base_model` is the base identity it was trained on
    final/                the last step's weights + tokenizer, and a state.json with the same
                          `step` and `base_model`

A checkpoint is written to `step-N.tmp/` and renamed to `step-N/` only when complete, so a run
killed mid-save never leaves a half checkpoint for --resume to pick up.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tunelab.errors import TrainingError
from tunelab.models.identity import same_base
from tunelab.runs import RunPaths, read_json, write_json

_STEP_DIR = re.compile(r"^step-(\d+)$")
TRAINER_STATE = "trainer_state.pt"
STATE_JSON = "state.json"


def is_peft(model: nn.Module) -> bool:
    return hasattr(model, "peft_config")


def list_checkpoints(paths: RunPaths) -> list[tuple[int, Path]]:
    """Complete checkpoints `(step, dir)`, oldest first."""
    if not paths.checkpoints.is_dir():
        return []
    found = []
    for p in paths.checkpoints.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / STATE_JSON).exists() and (p / TRAINER_STATE).exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(paths: RunPaths) -> tuple[int, Path] | None:
    found = list_checkpoints(paths)
    return found[-1] if found else None


def remove_partial(paths: RunPaths) -> None:
    """Delete leftovers of saves that were interrupted (`step-N.tmp`, `step-N.old`)."""
    if paths.checkpoints.is_dir():
        for p in paths.checkpoints.iterdir():
            if p.is_dir() and p.name.startswith("step-") and p.suffix in (".tmp", ".old"):
                shutil.rmtree(p, ignore_errors=True)


def save_weights(model: nn.Module, out_dir: Path, tokenizer=None) -> None:
    """The model as a standard artifact: a PEFT adapter, or (full fine-tuning) a full model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)


def load_weights(model: nn.Module, ckpt_dir: Path) -> None:
    """Load the trainable weights saved by `save_weights` back into `model`, in place."""
    from safetensors.torch import load_file

    if is_peft(model):
        from peft import set_peft_model_state_dict

        state = load_file(str(ckpt_dir / "adapter_model.safetensors"))
        result = set_peft_model_state_dict(model, state)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise RuntimeError(f"{ckpt_dir}: adapter keys not in the model: {unexpected[:5]}")
        return
    state: dict[str, torch.Tensor] = {}
    for f in sorted(ckpt_dir.glob("model*.safetensors")):
        state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise RuntimeError(f"{ckpt_dir}: weights do not match the model (missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]})")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    paths: RunPaths,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    loop_state: dict[str, Any],
    info: dict[str, Any],
) -> Path:
    """Write `checkpoints/step-N/` atomically. `loop_state` is the loop's own resumable state
    (data position, best loss, early-stopping counter, running sums); `info` goes to state.json.
    """
    final = paths.checkpoint(step)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_weights(model, tmp)
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
         "loop": loop_state},
        tmp / TRAINER_STATE,
    )
    write_json(tmp / STATE_JSON, {"step": step, **info})
    _swap_in(tmp, final)
    return final


def save_final(model: nn.Module, tokenizer, out_dir: Path, info: dict[str, Any] | None = None) -> None:
    """The run's final weights (+ tokenizer, + `info` as state.json), replacing any earlier `final/` whole."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_weights(model, tmp, tokenizer)
    if info is not None:
        write_json(tmp / STATE_JSON, info)
    _swap_in(tmp, out_dir)


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename a finished `tmp` dir to `final`; an existing `final` is moved aside first and
    deleted last, so some complete version exists at every moment."""
    if final.exists():
        old = final.with_name(final.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)


def load_checkpoint(ckpt_dir: Path, model: nn.Module, optimizer, scheduler) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG states; return the loop state."""
    load_weights(model, ckpt_dir)
    # To CPU first: RNG states must be CPU tensors, and the optimizer moves its state to
    # each parameter's device itself.
    state = torch.load(ckpt_dir / TRAINER_STATE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state["loop"]


def prune_checkpoints(paths: RunPaths, keep_last: int | None, best_step: int | None) -> list[int]:
    """Delete all but the newest `keep_last` checkpoints and the best one; returns steps removed."""
    if keep_last is None:
        return []
    found = list_checkpoints(paths)
    keep = {s for s, _ in found[-keep_last:]}
    if best_step is not None:
        keep.add(best_step)
    removed = []
    for step, p in found:
        if step not in keep:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(step)
    return removed


def checkpoint_info(ckpt_dir: Path) -> dict[str, Any]:
    """The checkpoint's state.json (step, val_loss, base_model, ...)."""
    return read_json(ckpt_dir / STATE_JSON)


def check_same_base(ckpt_dir: Path, now: str) -> None:
    """Refuse to continue a checkpoint on other base weights than it was trained on.

    Args:
        ckpt_dir: the checkpoint to resume.
        now: the base identity (`models.identity.base_identity`) of the model loaded now.

    Raises:
        TrainingError: the checkpoint records another base identity (names both).
    """
    recorded = checkpoint_info(ckpt_dir).get("base_model")
    if not same_base(recorded, now):
        raise TrainingError(
            f"cannot resume from {ckpt_dir}: it was trained on the base weights {recorded}, but "
            f"model.name now loads {now}; an adapter only fits the weights it was trained on. "
            "Restore those weights, or start a new run with another --run-dir"
        )


def fingerprint(params: list[torch.Tensor]) -> str:
    """SHA-256 of the trainable weights' bytes: equal on every rank iff the weights are equal."""
    import hashlib

    h = hashlib.sha256()
    for p in params:
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
