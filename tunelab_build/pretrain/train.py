"""Pretraining loop of the built-in code model: a small Qwen2 LM on the Python standard library.

    python -m tunelab_build.pretrain configs/pretrain/tiny-code.yaml --work-dir .pretrain/tiny-code

Stages: build the corpus and tokenizer (once), then train with resumable checkpoints
(`state.pt` holds model, optimizer, step and RNG-free sampling state: batch `i` is drawn from
a generator seeded by (seed, i), so a resumed run sees exactly the batches an uninterrupted one
would), and keep the checkpoint with the best held-out loss in `best/`. `export.py` writes the
shipped package data from it.

The learning rate is tunelab's one schedule (`tunelab.training.schedule.lr_factor`): linear
warmup, then cosine to `min_lr_ratio` x lr.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tunelab.errors import ConfigError
from tunelab.progress import Progress
from tunelab.training.schedule import lr_factor
from tunelab_build.pretrain.config import PretrainConfig
from tunelab_build.pretrain.corpus import build_corpus


def build_model(cfg: PretrainConfig) -> torch.nn.Module:
    """A randomly initialised (seeded) Qwen2ForCausalLM of the recipe's shape."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    mc = Qwen2Config(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=3,
    )
    torch.manual_seed(cfg.seed)
    return Qwen2ForCausalLM(mc)


def learning_rate(step: int, cfg: PretrainConfig) -> float:
    """The learning rate of optimizer step `step` (0-based): a pure function of the step, so resume is exact."""
    return cfg.lr * lr_factor(step, cfg.max_steps, cfg.warmup_steps, "cosine", min_ratio=cfg.min_lr_ratio)


def get_batch(data: np.ndarray, step: int, cfg: PretrainConfig, device: torch.device) -> torch.Tensor:
    """Random windows of seq_len+1 tokens; a pure function of (seed, step) so resume is exact."""
    g = np.random.default_rng([cfg.seed, step])
    starts = g.integers(0, len(data) - cfg.seq_len - 1, size=cfg.batch_size)
    rows = np.stack([data[s : s + cfg.seq_len + 1] for s in starts]).astype(np.int64)
    return torch.from_numpy(rows).to(device, non_blocking=True)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: np.ndarray,
    cfg: PretrainConfig,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> float:
    """Mean next-token loss over fixed, non-overlapping held-out windows."""
    model.eval()
    n_windows = max(1, min(cfg.eval_tokens, len(data) - 1) // cfg.seq_len)
    losses = []
    for i in range(0, n_windows, cfg.batch_size):
        idx = range(i, min(i + cfg.batch_size, n_windows))
        rows = np.stack([data[j * cfg.seq_len : j * cfg.seq_len + cfg.seq_len + 1] for j in idx]).astype(np.int64)
        x = torch.from_numpy(rows).to(device)
        with autocast():
            logits = model(input_ids=x[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="sum"
        )
        losses.append((loss.item(), x[:, 1:].numel()))
    model.train()
    return sum(l for l, _ in losses) / sum(n for _, n in losses)


def make_autocast(cfg: PretrainConfig, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A context-manager factory for the forward passes: bf16 autocast or nothing."""
    if cfg.precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def pretrain(
    cfg: PretrainConfig, work_dir: Path, log: Callable[[str], None] = print, time_budget: float | None = None
) -> dict:
    """Build the corpus if needed, then train (resuming from `work_dir/state.pt` if present).

    `time_budget` (seconds) shortens `max_steps` to what fits, measured after 30 steps, so one
    lease of a GPU machine finishes a whole cosine schedule; the chosen value is saved with
    the checkpoint and the model card, so the run stays reproducible.
    """
    from transformers import PreTrainedTokenizerFast

    work_dir.mkdir(parents=True, exist_ok=True)
    corpus_dir = work_dir / "corpus"
    if not (corpus_dir / "corpus.json").exists():
        log(f"building corpus and tokenizer in {corpus_dir} ...")
        stats = build_corpus(corpus_dir, cfg.vocab_size, cfg.held_out_percent)
        log(f"corpus: {stats['tokens']} tokens, {stats['files']} files")
    train_data = np.fromfile(corpus_dir / "train.bin", dtype=np.uint16)
    val_data = np.fromfile(corpus_dir / "val.bin", dtype=np.uint16)
    if len(val_data) <= cfg.seq_len or len(train_data) <= cfg.seq_len:
        raise ConfigError(f"corpus too small for seq_len {cfg.seq_len}: {len(train_data)} train / {len(val_data)} "
                         "held-out tokens (raise held_out_percent or lower seq_len)")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    autocast = make_autocast(cfg, device)
    model = build_model(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        fused=device.type == "cuda",
    )
    step, best, history, budgeted = 0, float("inf"), [], None
    state_path = work_dir / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, best, history = state["step"], state["best"], state["history"]
        budgeted = state.get("budgeted_max_steps")
        if budgeted:
            cfg.max_steps = budgeted
            time_budget = None
        log(f"resumed at step {step} (best held-out loss {best:.4f})")
    fwd = torch.compile(model) if cfg.compile else model
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters on {device}; {len(train_data):,} train tokens")

    def save_state() -> None:
        tmp = work_dir / "state.pt.tmp"
        torch.save(
            {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
             "history": history, "config": cfg.model_dump(), "budgeted_max_steps": budgeted},
            tmp,
        )
        tmp.replace(state_path)

    model.train()
    t0, tokens = time.time(), 0
    with Progress() as bar:  # counts and ETA on a terminal; plain lines in a job's log
        tid = bar.add_task("pretrain steps", total=cfg.max_steps, completed=step)
        while step < cfg.max_steps:
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, cfg)
            x = get_batch(train_data, step, cfg, device)
            with autocast():
                logits = fwd(input_ids=x[:, :-1], use_cache=False).logits
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            tokens += x[:, 1:].numel()
            bar.advance(tid)
            if time_budget and tokens == 30 * x[:, 1:].numel():
                per_step = (time.time() - t0) / 30
                # Leave 10% for evaluations and checkpoints.
                fit = int(0.9 * time_budget / per_step)
                if fit < cfg.max_steps:
                    cfg.max_steps = budgeted = max(fit, cfg.warmup_steps + 1)
                    bar.update(tid, total=cfg.max_steps)
                    log(f"time budget {time_budget:.0f}s: max_steps set to {cfg.max_steps}")
            if step % 50 == 0:
                rate = tokens / (time.time() - t0)
                log(f"step {step}/{cfg.max_steps} loss {loss.item():.4f} lr {learning_rate(step, cfg):.2e} {rate:,.0f} tok/s")
            if step % cfg.eval_every == 0 or step == cfg.max_steps:
                val = evaluate(model, val_data, cfg, device, autocast)
                history.append({"step": step, "train_loss": loss.item(), "val_loss": val, "time": time.time() - t0})
                log(f"step {step}: held-out loss {val:.4f} (ppl {math.exp(val):.1f})")
                if val < best:
                    best = val
                    model.save_pretrained(work_dir / "best", safe_serialization=True)
                    PreTrainedTokenizerFast.from_pretrained(corpus_dir / "tokenizer").save_pretrained(work_dir / "best")
                    (work_dir / "best" / "pretrain_meta.json").write_text(
                        json.dumps({"step": step, "val_loss": val, "config": cfg.model_dump(),
                                    "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"},
                                   indent=2)
                    )
            if step % cfg.save_every == 0 or step == cfg.max_steps:
                save_state()
    (work_dir / "history.json").write_text(json.dumps(history, indent=2))
    return {"step": step, "best_val_loss": best, "history": history}
