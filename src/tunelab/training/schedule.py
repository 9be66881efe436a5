"""Optimizer, learning-rate schedule and the step budget.

The learning rate is a pure function of the optimizer step (`lr_factor`), so a resumed run
gets exactly the rates an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tunelab.config import TrainConfig

# Parameter names that never get weight decay besides biases (1-d tensors): norms, embeddings'
# scalar gains.
_NO_DECAY = ("bias", "norm", "ln_", "layernorm", "rmsnorm")


def total_steps(train: TrainConfig, micro_batches_per_epoch: int) -> int:
    """Optimizer steps of the run: `max_steps`, else `epochs` passes over the training data."""
    if train.max_steps is not None:
        return train.max_steps
    return max(1, math.ceil(train.epochs * micro_batches_per_epoch / train.grad_accum))


def warmup_steps(train: TrainConfig, total: int) -> int:
    """`warmup_steps` if given, else `warmup_ratio` of the run (rounded up)."""
    if train.warmup_steps is not None:
        return min(train.warmup_steps, total)
    return min(total, math.ceil(train.warmup_ratio * total))


def lr_factor(step: int, total: int, warmup: int, kind: str, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak lr for optimizer step `step` (0-based, the step about to run).

    Linear warmup from lr/warmup to lr over `warmup` steps, then cosine or linear decay to
    `min_ratio` x lr at `total` (0 by default; the built-in model's pretraining recipe keeps a
    floor), or constant.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if kind == "linear":
        return min_ratio + (1.0 - min_ratio) * (1.0 - progress)
    if kind == "cosine":
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown scheduler {kind!r}")


def build_optimizer(model: nn.Module, train: TrainConfig, fused: bool = False) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; no weight decay on biases and norm weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lowered = name.lower()
        if p.ndim < 2 or any(tag in lowered for tag in _NO_DECAY):
            no_decay.append(p)
        else:
            decay.append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters")
    groups = [{"params": decay, "weight_decay": train.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=train.lr, betas=tuple(train.adam_betas), fused=fused or None)


def build_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig, total: int):
    """A LambdaLR applying `lr_factor`; its state_dict holds only the step counter."""
    warm = warmup_steps(train, total)
    kind = train.scheduler
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, warm, kind))
