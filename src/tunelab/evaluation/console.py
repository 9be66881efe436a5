"""Evaluation results on the console: one table row per variant x task x metric, then any
task's warning (an unreadable judge, say) in red. Used by `tunelab eval` and `tunelab run`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_results(results: dict[str, dict[str, Any]], console: Console) -> None:
    """One row per variant x task: each metric as value [CI low, high] and n."""
    table = Table(title="evaluation")
    for col in ("variant", "task", "metric", "value", "CI", "n"):
        table.add_column(col)
    for variant, by_task in results.items():
        for label, summary in by_task.items():
            for name, m in summary["metrics"].items():
                arrow = "↑" if m["higher_is_better"] else "↓"
                ci = "-" if m["n"] == 0 else f"[{m['ci_low']:.4g}, {m['ci_high']:.4g}]"
                # Text, not a str: rich would read "[0.1, 0.3]" as markup and drop it.
                table.add_row(variant, label, f"{name} {arrow}", f"{m['value']:.4g}", Text(ci), str(m["n"]))
    console.print(table)
    for variant, by_task in results.items():
        for label, summary in by_task.items():
            if summary.get("warning"):
                console.print(Text(f"WARNING {variant} / {label}: {summary['warning']}", style="bold red"))
