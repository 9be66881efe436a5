"""Learning-rate schedule, step budget and optimizer parameter groups."""

import math

import pytest
import torch
from torch import nn

from tunelab.config import TrainConfig
from tunelab.training.schedule import build_optimizer, build_scheduler, lr_factor, total_steps, warmup_steps


def test_warmup_then_cosine_reaches_zero():
    f = [lr_factor(s, total=10, warmup=2, kind="cosine") for s in range(10)]
    assert f[0] == pytest.approx(0.5) and f[1] == pytest.approx(1.0)
    assert f[2] == pytest.approx(1.0)  # first decay step starts at the peak
    assert all(a >= b for a, b in zip(f[2:], f[3:]))
    assert lr_factor(10, 10, 2, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(6, 10, 2, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_linear_and_constant():
    assert lr_factor(5, 10, 0, "linear") == pytest.approx(0.5)
    assert [lr_factor(s, 10, 3, "constant") for s in (0, 2, 3, 9)] == pytest.approx([1 / 3, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        lr_factor(0, 10, 0, "wobbly")


def test_decay_can_stop_at_a_floor_instead_of_zero():
    # The built-in model's pretraining recipe decays to 0.1 x lr.
    cos = [lr_factor(s, 10, 2, "cosine", min_ratio=0.1) for s in range(11)]
    assert cos[0] == pytest.approx(0.5) and cos[2] == pytest.approx(1.0)  # warmup is unchanged
    assert cos[6] == pytest.approx(0.1 + 0.9 * 0.5) and cos[10] == pytest.approx(0.1)
    assert lr_factor(15, 10, 2, "cosine", min_ratio=0.1) == pytest.approx(0.1)  # past the end: the floor
    assert lr_factor(10, 10, 0, "linear", min_ratio=0.25) == pytest.approx(0.25)
    # Without a floor the factors are exactly the floor-less ones.
    assert [lr_factor(s, 10, 2, "cosine", min_ratio=0.0) for s in range(11)] == [
        lr_factor(s, 10, 2, "cosine") for s in range(11)
    ]


def test_step_budget_and_warmup_ratio():
    assert total_steps(TrainConfig(max_steps=7, epochs=3), micro_batches_per_epoch=100) == 7
    assert total_steps(TrainConfig(epochs=2, grad_accum=4), micro_batches_per_epoch=10) == 5
    assert total_steps(TrainConfig(epochs=0.5), micro_batches_per_epoch=9) == 5
    assert warmup_steps(TrainConfig(warmup_ratio=0.1), 95) == 10
    assert warmup_steps(TrainConfig(warmup_steps=3, warmup_ratio=0.5), 95) == 3
    assert warmup_steps(TrainConfig(warmup_steps=50), 20) == 20


def test_scheduler_follows_lr_factor_and_resumes():
    cfg = TrainConfig(lr=1e-2, warmup_steps=2, scheduler="cosine")
    p = nn.Parameter(torch.zeros(2, 2))
    opt = build_optimizer(nn.ParameterList([p]), cfg)
    sched = build_scheduler(opt, cfg, total=10)
    seen = []
    for _ in range(6):
        seen.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert seen == pytest.approx([1e-2 * lr_factor(s, 10, 2, "cosine") for s in range(6)])
    # A fresh scheduler loaded from the state dict continues with the same rates.
    opt2 = build_optimizer(nn.ParameterList([nn.Parameter(torch.zeros(2, 2))]), cfg)
    sched2 = build_scheduler(opt2, cfg, total=10)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr()[0] == pytest.approx(1e-2 * lr_factor(6, 10, 2, "cosine"))


def test_no_weight_decay_on_biases_and_norms():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)
            self.input_layernorm = nn.LayerNorm(4)
            self.frozen = nn.Linear(4, 4)
            self.frozen.requires_grad_(False)

    m = M()
    opt = build_optimizer(m, TrainConfig(weight_decay=0.1, adam_betas=(0.8, 0.95)))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == [id(m.proj.weight)]
    assert {id(p) for p in no_decay["params"]} == {id(m.proj.bias), id(m.input_layernorm.weight), id(m.input_layernorm.bias)}
    assert decay["betas"] == (0.8, 0.95)
