"""The training loop: `train(exp, run_dir, resume)` runs DESIGN's train stage end to end.

    setup   run dir, seed, accelerator, model + tokenizer, LoRA, data (manifest to run_dir/data)
    loop    grad-accumulated AdamW steps; log / evaluate / checkpoint / early-stop on schedule
    finish  final adapter, summary.json, a one-screen summary

One process, or several under `torchrun` (DDP through accelerate; CPU uses gloo). Every
process runs the same code on its share of each batch; only the main process writes files.

Loss normalisation: a step's loss is (sum of token losses over all micro-batches of all
processes) / (their total number of label tokens), never a mean of per-batch means. Each
micro-batch backpropagates `loss_sum * world_size / global_tokens`; DDP then averages the
gradients over processes, which divides the world size out again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from tunelab.config import Experiment
from tunelab.data.holdout import Holdout, recorded_holdout
from tunelab.errors import ConfigError, TrainingError
from tunelab.models.identity import base_identity
from tunelab.runs import (RunPaths, append_jsonl, peak_memory, prepare_run_dir, read_json,
                          truncate_metrics, write_json)
from tunelab.training import checkpoint as ckpt
from tunelab.training.batches import DataOrder, DataPosition, make_batch, row_tokens, to_device
from tunelab.training.clock import CostClock
from tunelab.training.evaluate import evaluate
from tunelab.training.metrics import TokenLossModel, same_stats, verify_fast_path
from tunelab.training.progress import TrainProgress, print_summary
from tunelab.training.schedule import build_optimizer, build_scheduler, total_steps
from tunelab.training.tracking import Trackers

FINISHED = ("max_steps", "epochs", "early_stopping")
log = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Everything the loop needs to continue exactly where a checkpoint left it."""

    step: int = 0
    position: DataPosition = field(default_factory=DataPosition)
    tokens_seen: int = 0  # real input tokens, all processes
    train_time: float = 0.0  # seconds spent in training steps (no eval, no saving)
    best_val: float = math.inf
    best_step: int | None = None
    es_best: float = math.inf  # early stopping's reference (improvement must beat it by min_delta)
    bad_evals: int = 0
    last_eval: dict[str, Any] = field(default_factory=dict)  # split -> row of the latest eval
    wall_time: float = 0.0  # seconds of earlier sessions of this run (resume adds to it)
    cpu_time: float = 0.0  # CPU seconds of the training process in earlier sessions (`clock.CostClock`)
    device_time: float = 0.0  # GPU seconds of earlier sessions' steps and evaluations (0 off CUDA)
    logged_time: float = 0.0  # train_time at the last log line
    # Per-step sums since the last log line: [loss_sum, label_tokens, input_tokens, n_correct]
    # per step (n_correct: argmax == label, from the same `token_stats` call as the loss).
    window: list[list[Any]] = field(default_factory=list)


def train(exp: Experiment, run_dir: str | Path, resume: bool = False, holdout: Holdout | None = None) -> dict[str, Any]:
    """Fine-tune `exp` into `run_dir` and return the summary (also in train/summary.json).

    `holdout` (a `data.holdout.Holdout`): training rows to leave out, e.g. the items checkpoint
    selection will choose on (`evaluation.selection.training_holdout`, which the commands pass)."""
    from accelerate.utils import gather_object, set_seed

    started = time.time(), time.process_time()
    accelerator = _accelerator(exp)
    costs = CostClock(accelerator.device, started)  # wall, CPU and GPU seconds since the run first started
    main, world = accelerator.is_main_process, accelerator.num_processes
    paths = prepare_run_dir(exp, Path(run_dir), resume, world_size=world, write=main)
    if resume and paths.summary.exists():
        done = read_json(paths.summary)
        if done.get("stop_reason") in FINISHED:
            if main:
                print(f"{paths.root}: run already finished ({done['stop_reason']} at step {done['steps']})")
            return done
    set_seed(exp.seed)
    if resume:
        holdout = _resumed_holdout(paths, holdout, main)

    # ---- model, tokenizer, LoRA ------------------------------------------------------------
    # The main process goes first so that downloads and generated caches (hub files, tiny
    # models, datasets) are written once, not raced by every rank.
    with accelerator.main_process_first():
        model, tokenizer = _load_model(exp, accelerator.device)
    from tunelab.models.lora import count_parameters

    trainable, total_params = count_parameters(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # ---- data --------------------------------------------------------------------------------
    from tunelab.data.pipeline import prepare, write_manifest

    with accelerator.main_process_first():
        data = prepare(exp, tokenizer, holdout)
    if main:
        write_manifest(data, paths.data)
    train_rows = data.train
    packed = bool(train_rows) and getattr(train_rows[0], "position_ids", None) is not None
    from tunelab.training.generation_metric import make_generation_metric

    # None unless train.generation_metric.samples; single-process only, so this is the main process
    gen_metric = make_generation_metric(exp, tokenizer, world, run_dir=paths.root)
    order = DataOrder(len(train_rows), exp.train.batch_size, exp.seed, world, accelerator.process_index)
    n_steps = total_steps(exp.train, order.per_epoch)

    # ---- optimisation --------------------------------------------------------------------------
    loss_model = TokenLossModel(model)
    optimizer = build_optimizer(model, exp.train, fused=accelerator.device.type == "cuda")
    scheduler = build_scheduler(optimizer, exp.train, n_steps)
    state = LoopState()
    if main:
        ckpt.remove_partial(paths)
    accelerator.wait_for_everyone()
    latest = ckpt.latest_checkpoint(paths) if resume else None
    base_id = base_identity(exp.model)
    if latest is not None:
        ckpt.check_same_base(latest[1], base_id)
        state = _from_dict(ckpt.load_checkpoint(latest[1], model, optimizer, scheduler))
        if not main:  # the saved window holds global sums; count them once
            state.window = [[0.0] * len(row) for row in state.window]
    elif resume and main:
        print(f"{paths.root}: no checkpoint to resume from; starting at step 0")
    if main:
        # Without a checkpoint the run starts over: every earlier line goes (step 0's included).
        dropped = truncate_metrics(paths.metrics, state.step if latest is not None else -1)
        if latest is not None:
            print(f"resumed from {latest[1].name}" + (f" ({dropped} later metric lines dropped)" if dropped else ""))
    pack_to = _check_layouts(loss_model, train_rows[: exp.train.batch_size], pad_id, packed, exp, accelerator)
    if exp.train.compile:
        loss_model = torch.compile(loss_model)
    loss_model, optimizer = accelerator.prepare(loss_model, optimizer)
    eval_model = accelerator.unwrap_model(loss_model)
    params = [p for p in model.parameters() if p.requires_grad]
    trackers = Trackers(exp, paths.root, enabled=main)
    cfg = exp.train
    eval_bs = cfg.eval_batch_size or cfg.batch_size

    def run_eval() -> dict[str, dict[str, Any]]:
        with costs.span():
            return _run_eval()

    def _run_eval() -> dict[str, dict[str, Any]]:
        rows = {}
        for split, examples in (("val", data.val), ("test", data.test)):
            res = evaluate(eval_model, examples, batch_size=eval_bs, pad_id=pad_id, pack_to=pack_to,
                           accelerator=accelerator, max_examples=cfg.max_eval_examples)
            if res is not None:
                rows[split] = {"step": state.step, "epoch": round(order.epoch_float(state.position), 4),
                               "split": split, **res, "time": round(clock(), 2)}
        if gen_metric is not None and "val" in rows:
            rows["val"].update(gen_metric(model, state.step))  # e.g. chrf beside the val loss
        return rows

    def emit(row: dict[str, Any]) -> None:
        if main:
            append_jsonl(paths.metrics, row)
            trackers.log(row)

    # ---- the loop ------------------------------------------------------------------------------
    costs.add_earlier(state.wall_time, state.cpu_time, state.device_time)
    clock = costs.wall  # seconds since the run first started, across resumes

    stop_reason, bad, grad_norm = None, None, None  # bad: (step, "nan"/"inf", where) of a non-finite loss
    progress = TrainProgress(n_steps, state.step, enabled=main)
    if state.step == 0 and (data.val or data.test):
        # Step 0 is the base model (LoRA starts as a no-op): the curve starts from the loss
        # fine-tuning has to beat. Not a checkpoint, so it never counts as the best step.
        for row in run_eval().values():
            emit(row)
    loss_model.train()
    try:
        while state.step < n_steps and stop_reason is None:
            t0 = time.time()
            micro = []
            for _ in range(cfg.grad_accum):
                idx, state.position = order.take(state.position)
                rows = [train_rows[i] for i in idx]
                micro.append((make_batch(rows, pad_id, packed, pack_to), row_tokens(rows)))
            last = state.step + 1 == n_steps
            log_now = (state.step + 1) % cfg.log_every == 0 or last
            with costs.span():
                step_loss, label_tokens, correct = _forward_backward(loss_model, [b for b, _ in micro], accelerator)
                if cfg.max_grad_norm:
                    grad_norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                elif log_now:  # only measured when it is logged
                    grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
                lr = scheduler.get_last_lr()[0]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.window.append([step_loss, label_tokens, sum(n for _, n in micro), correct])
            state.train_time += time.time() - t0

            if log_now:
                row, bad = _flush_window(state, accelerator, order)
                if bad is None:
                    row.update(lr=lr, grad_norm=float(grad_norm), time=round(clock(), 2))
                    emit(row)
                    progress.update(state.step, row["loss"], lr)
            if bad is None and (state.step % cfg.eval_every == 0 or last) and (data.val or data.test):
                state.last_eval = run_eval()
                for row in state.last_eval.values():
                    emit(row)
                progress.note_eval(state.step, state.last_eval)
                val = state.last_eval.get("val", {}).get("loss")
                if val is not None and not math.isfinite(val):
                    bad = (state.step, str(val), "validation loss")
                elif val is not None:
                    stop_reason = _track_best(state, val, cfg.early_stopping)
            is_best = cfg.keep_best and state.best_step == state.step
            if bad is None and (state.step % cfg.save_every == 0 or last or is_best or stop_reason):
                if state.window:  # never save weights that a non-finite step has touched
                    _, bad = _flush_window(state, accelerator, order, keep=True)
                if bad is None:
                    state.wall_time, state.cpu_time = clock(), costs.cpu()
                    state.device_time = costs.device() or 0.0
                    _save(accelerator, paths, model, optimizer, scheduler, state, cfg, base_id)
            if bad is not None:
                stop_reason = "nan"
        if stop_reason is None:
            stop_reason = "max_steps" if cfg.max_steps is not None else "epochs"
    finally:
        progress.close()
        trackers.close("FAILED" if stop_reason in (None, "nan") else "FINISHED")

    # ---- finish --------------------------------------------------------------------------------
    if stop_reason != "nan" and main:
        ckpt.save_final(model, tokenizer, paths.final, {"step": state.step, "base_model": base_id})
    # Every rank's weights must be identical after DDP; the DDP test compares these.
    hashes = gather_object([ckpt.fingerprint(params)]) if world > 1 else [ckpt.fingerprint(params)]
    summary = {
        "stop_reason": stop_reason,
        "steps": state.step,
        "total_steps": n_steps,
        "epochs": round(order.epoch_float(state.position), 4),
        **costs.totals(),  # wall_time_s, cpu_time_s, device_time_s: every session of the run
        "train_time_s": round(state.train_time, 2),
        "tokens_seen": state.tokens_seen,
        "tokens_per_s": round(state.tokens_seen / state.train_time, 1) if state.train_time else None,
        **peak_memory(accelerator.device),
        "trainable_params": trainable,
        "total_params": total_params,
        "best_step": state.best_step,
        "best_val_loss": state.best_val if state.best_step is not None else None,
        **{f"final_{s}_{k}": state.last_eval.get(s, {}).get(k) for s in ("val", "test") for k in ("loss", "token_accuracy")},
        "world_size": world,
        "base_model": base_id,
        "fast_loss": eval_model.fast,
        "padding_free": pack_to is not None,
        "adapter_sha256_per_rank": hashes,
    }
    if main:
        write_json(paths.summary, summary)
        print_summary(summary, paths.root)
    if stop_reason == "nan":
        kept = ckpt.latest_checkpoint(paths)
        step, value, what = bad
        raise TrainingError(
            f"{what} became {value} at step {step}; last good checkpoint: "
            f"{kept[1].name if kept else 'none (nothing was saved before it)'}; lower train.lr (now "
            f"{cfg.lr:g}){'' if cfg.max_grad_norm else ' or set train.max_grad_norm'}, check the data, "
            f"and start again with another --run-dir"
        )
    return summary


# ---- setup helpers -------------------------------------------------------------------------------


def _accelerator(exp: Experiment):
    from accelerate import Accelerator

    from tunelab.models.loading import pick_device, pick_dtype

    device = pick_device(exp.model.device)
    dtype = pick_dtype(exp.model.dtype, device)
    mixed = exp.train.mixed_precision
    if mixed == "auto":
        mixed = "no"
        if device.type == "cuda" and dtype == torch.bfloat16:
            mixed = "bf16"
        elif device.type == "cuda" and dtype == torch.float16:
            mixed = "fp16"
    elif mixed == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.mixed_precision: fp16 needs a CUDA device (this run is on {device.type}); "
                          "use bf16 or no")
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and str(state.get("_mixed_precision", mixed)) != mixed:
        # accelerate keeps one precision per process and refuses another; a process that trains
        # several runs (a notebook, the tests) may change it between runs. The process group
        # (PartialState) is kept.
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=device.type == "cpu", mixed_precision=mixed)


def _load_model(exp: Experiment, device: torch.device):
    """Base model + tokenizer on `device`, LoRA attached (or every weight trainable)."""
    from tunelab.models.loading import load_base
    from tunelab.models.lora import attach_lora

    model, tokenizer = load_base(exp.model, device)
    if exp.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return attach_lora(model, exp.lora, tokenizer), tokenizer


def _check_layouts(loss_model: TokenLossModel, rows, pad_id: int, packed: bool, exp: Experiment,
                   accelerator) -> int | None:
    """Turn on the two speed-ups only where they are exact for this model, checked once on real
    rows: logits at labelled positions only, and padding-free batches. Returns `pack_to`
    (None: keep padded batches)."""
    device = accelerator.device
    rtol = 1e-3 if accelerator.mixed_precision == "no" else 3e-2
    padded = to_device(make_batch(rows, pad_id, packed), device)
    with accelerator.autocast():
        verify_fast_path(loss_model, padded, rtol)
        if packed:
            return None
        pack_to = exp.data.max_seq_len
        flat = to_device(make_batch(rows, pad_id, False, pack_to), device)
        if same_stats(loss_model, padded, flat, rtol):
            return pack_to
    log.warning("padding-free batches change this model's loss (it does not isolate examples by "
                "position_ids); using padded batches")
    return None


# ---- loop helpers --------------------------------------------------------------------------------


def _forward_backward(loss_model, batches: list[dict[str, torch.Tensor]],
                      accelerator) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Accumulate the gradients of one optimizer step over its micro-batches.

    Each micro-batch backpropagates loss_sum * world / global_tokens, where global_tokens
    counts the label tokens of all micro-batches on all processes (known from the CPU batches
    before any forward pass). DDP averages gradients over the `world` processes, so the
    result is the gradient of (sum of all token losses) / (all label tokens).
    Returns this process's summed token loss (detached), its label-token count and its number
    of label tokens predicted right (argmax of the logits the loss already needed).
    """
    world = accelerator.num_processes
    local_tokens = sum(b["targets"].numel() for b in batches)
    if world > 1:
        count = torch.tensor(float(local_tokens), device=accelerator.device)
        scale = world / accelerator.reduce(count, reduction="sum").clamp(min=1)
    else:
        scale = 1.0 / max(local_tokens, 1)
    step_loss = torch.zeros((), device=accelerator.device)
    step_correct = torch.zeros((), dtype=torch.long, device=accelerator.device)
    for i, batch in enumerate(batches):
        # Gradients are all-reduced once per step, on the last micro-batch.
        sync = contextlib.nullcontext() if i == len(batches) - 1 else accelerator.no_sync(loss_model)
        with sync:
            loss_sum, n_correct, _ = loss_model(**to_device(batch, accelerator.device), accuracy=True)
            accelerator.backward(loss_sum * scale)
        step_loss += loss_sum.detach()
        step_correct += n_correct
    return step_loss, local_tokens, step_correct


def _flush_window(state: LoopState, accelerator, order: DataOrder,
                  keep: bool = False) -> tuple[dict[str, Any], tuple[int, str, str] | None]:
    """Turn the per-step sums since the last log into one train row (one device sync).

    Returns the row, and `(step, "nan"|"inf", "loss")` for the first step whose loss was not
    finite (None if all were). With `keep`, only checks and leaves the window for the next log.
    """
    first = state.step - len(state.window) + 1
    dtype = torch.float32 if accelerator.device.type == "mps" else torch.float64
    # [4, k]: loss_sum, label tokens, input tokens, correct tokens of each step, summed over processes.
    table = torch.stack([torch.stack([torch.as_tensor(v, device=accelerator.device).to(dtype) for v in col])
                         for col in zip(*state.window)])
    if accelerator.num_processes > 1:
        table = accelerator.reduce(table, reduction="sum")
    losses, labels, inputs, correct = table.tolist()
    for i, value in enumerate(losses):
        if not math.isfinite(value):
            return {}, (first + i, str(value), "loss")
    if keep:
        # Hold the global sums on the main process only (zeros elsewhere), so the window a
        # checkpoint stores is the whole world's and the next reduction still adds up.
        main = accelerator.is_main_process
        state.window = [[v if main else 0.0 for v in col] for col in zip(losses, labels, inputs, correct)]
        return {}, None
    elapsed = max(state.train_time - state.logged_time, 1e-9)
    state.tokens_seen += int(sum(inputs))
    row = {
        "step": state.step,
        "epoch": round(order.epoch_float(state.position), 4),
        "split": "train",
        "loss": sum(losses) / max(sum(labels), 1),
        # nan: a window resumed from a checkpoint written before accuracy was counted.
        "token_accuracy": sum(correct) / max(sum(labels), 1) if math.isfinite(sum(correct)) else None,
        "tokens": int(sum(inputs)),
        "tokens_per_s": round(sum(inputs) / elapsed, 1),
        "tokens_seen": state.tokens_seen,
    }
    state.window = []
    state.logged_time = state.train_time
    return row, None


def _resumed_holdout(paths: RunPaths, holdout: Holdout | None, main: bool) -> Holdout | None:
    """A resumed run trains on the rows it started with: the holdout its data/stats.json recorded
    (none when it recorded none), whatever the config's checkpoint selection asks for now; a
    changed one is said, and checkpoint selection then refuses items the run trained on."""
    if not (paths.data / "stats.json").is_file():
        return holdout
    kept = recorded_holdout(paths.data / "stats.json")
    if main and (kept.ids if kept else frozenset()) != (holdout.ids if holdout else frozenset()):
        print(f"{paths.root}: resuming with the training rows the run started with "
              f"({len(kept.origins) if kept else 0} held out for checkpoint selection), not without the "
              f"{len(holdout.ids) if holdout else 0} items the config's checkpoint selection would hold out now")
    return kept


def _track_best(state: LoopState, val: float, es) -> str | None:
    """Update best-so-far and the early-stopping counter; return "early_stopping" to stop."""
    if val < state.best_val:
        state.best_val, state.best_step = val, state.step
    if val < state.es_best - es.min_delta:
        state.es_best, state.bad_evals = val, 0
    else:
        state.bad_evals += 1
    if es.patience is not None and state.bad_evals >= es.patience:
        return "early_stopping"
    return None


def _save(accelerator, paths: RunPaths, model, optimizer, scheduler, state: LoopState, cfg, base_id: str) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        val = state.last_eval.get("val", {})
        info = {"val_loss": val.get("loss") if val.get("step") == state.step else None,
                "best_step": state.best_step, "best_val_loss": state.best_val if state.best_step is not None else None,
                "base_model": base_id}
        ckpt.save_checkpoint(paths, state.step, model, optimizer, scheduler, _to_dict(state), info)
        ckpt.prune_checkpoints(paths, cfg.keep_last, state.best_step if cfg.keep_best else None)
    accelerator.wait_for_everyone()


def _to_dict(state: LoopState) -> dict[str, Any]:
    window, state.window = state.window, []
    d = asdict(state)
    state.window = window
    # float32 loss sums -> Python floats is exact, so a resumed window logs the same number.
    d["window"] = [[float(v) for v in row] for row in window]
    return d


def _from_dict(d: dict[str, Any]) -> LoopState:
    d = dict(d)
    d["position"] = DataPosition(**d["position"])
    # Checkpoints from before token accuracy was logged hold 3 sums per step: that count is unknown.
    d["window"] = [list(row) + [math.nan] * (4 - len(row)) for row in d.get("window", [])]
    return LoopState(**d)
