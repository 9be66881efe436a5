"""What a person watching training sees: the shared progress display and a summary.

The bar (or, off a terminal, its periodic plain lines) is `tunelab.progress.Progress`, the same
display evaluation, compare, sweeps and export use; the latest loss and learning rate ride in its
description. Only the main process draws.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tunelab.progress import Progress


class TrainProgress:
    """Steps done / total with ETA and the latest loss and lr; one line per evaluation; no-op
    on non-main processes.

    Args:
        total: the run's number of optimizer steps.
        start: steps already done (a resumed run).
        enabled: draw at all (False on non-main processes).
        console: where to draw (default: stderr, so piped stdout stays clean).
    """

    def __init__(self, total: int, start: int, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._bar: Progress | None = None
        if enabled:
            self._bar = Progress(self.console).__enter__()
            self._task = self._bar.add_task("train", total=total, completed=start)

    def update(self, step: int, loss: float, lr: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=step, description=f"train (loss {loss:.4f}, lr {lr:.2e})")

    def note_eval(self, step: int, rows: dict[str, dict[str, Any]]) -> None:
        if not self.enabled or not rows:
            return
        parts = [f"{split} loss {r['loss']:.4f} acc {r['token_accuracy']:.3f}" for split, r in rows.items()]
        self.console.print(f"step {step}: " + "  ".join(parts), highlight=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    """One screen: why the run stopped, losses, best checkpoint, speed, memory, parameters."""
    t = Table(title=f"training summary: {run_dir}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()

    def fmt(v: Any, spec: str = ".4f") -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "-"
        return format(v, spec) if isinstance(v, float) else str(v)

    t.add_row("stopped", f"{summary['stop_reason']} at step {summary['steps']}/{summary['total_steps']}"
              f" (epoch {summary['epochs']:.2f})")
    for split in ("val", "test"):
        loss = summary.get(f"final_{split}_loss")
        if loss is not None:
            t.add_row(f"{split} loss / token acc",
                      f"{fmt(loss)} / {fmt(summary.get(f'final_{split}_token_accuracy'), '.3f')}")
    if summary.get("best_step") is not None:
        t.add_row("best checkpoint", f"step-{summary['best_step']} (val loss {fmt(summary['best_val_loss'])})")
    cpu = f", {summary['cpu_time_s']:.1f} s CPU" if summary.get("cpu_time_s") is not None else ""
    gpu = f", {summary['device_time_s']:.1f} s GPU" if summary.get("device_time_s") is not None else ""
    t.add_row("time", f"{summary['wall_time_s']:.1f} s wall, {summary['train_time_s']:.1f} s training{cpu}{gpu}")
    t.add_row("throughput", f"{fmt(summary.get('tokens_per_s'), '.0f')} tokens/s "
              f"({summary['tokens_seen']:,} tokens, {summary['world_size']} process(es))")
    t.add_row("peak memory", f"{summary['peak_memory_mb']:.0f} MB ({summary['peak_memory_kind']})")
    share = summary["trainable_params"] / max(summary["total_params"], 1)
    t.add_row("parameters", f"{summary['trainable_params']:,} trainable of {summary['total_params']:,} ({share:.2%})")
    t.add_row("outputs", f"{run_dir}/final, {run_dir}/train/metrics.jsonl")
    Console(stderr=True).print(t)
