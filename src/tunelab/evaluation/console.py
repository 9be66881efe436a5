"""Evaluation results on the console: one table row per variant x task x metric, then what was
capped (`--limit`: "first 5 of 60 items") and any task's warning (an unreadable judge, say) in
red. Used by `tunelab eval` and `tunelab run`; `selection_lines` says what checkpoint selection
decided."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tunelab.evaluation.results import cap_text, mixed_caps


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
                cap = cap_text(summary)
                n = f"{m['n']} (capped: {cap})" if cap else str(m["n"])
                table.add_row(variant, label, f"{name} {arrow}", f"{m['value']:.4g}", Text(ci), n)
    console.print(table)
    by_label: dict[str, dict[str, dict[str, Any]]] = {}
    for variant, by_task in results.items():
        for label, summary in by_task.items():
            by_label.setdefault(label, {})[variant] = summary
    for label, summaries in by_label.items():
        caps = {cap_text(s) for s in summaries.values()} - {None}
        mixed = mixed_caps(summaries)
        if mixed:
            console.print(Text(f"WARNING {label}: {mixed}", style="bold red"))
        elif caps:
            console.print(Text(f"capped {label}: every number above is on the {caps.pop()} (--limit / eval.limit): "
                               "a quick look, not the split's score", style="yellow"))
    for variant, by_task in results.items():
        for label, summary in by_task.items():
            if summary.get("warning"):
                console.print(Text(f"WARNING {variant} / {label}: {summary['warning']}", style="bold red"))


def selection_lines(sel: dict[str, Any]) -> list[str]:
    """What checkpoint selection decided, in plain lines: the decision with its paired tests, what
    `best` resolves to and why, and whether the items were carved, training items or capped."""
    where = f"on {sel['selection_split']} by {sel['task']}/{sel['metric']}"
    tests = "; ".join(f"{c['of']}: {_num(c.get('diff'))}, p={_num(c.get('p_value'))}" for c in sel.get("comparisons") or [])
    if sel.get("decision") == "no_difference":
        lines = [f"no difference {where}: no candidate beats the others beyond the noise ({tests}); "
                 f"not naming a best. best resolves to {sel['resolved']}: {sel['resolved_because']}"]
    else:
        lines = [f"best {where}: {sel['best']}" + (f" ({tests})" if tests else "")]
    carved = sel.get("carved")
    if carved:
        lines.append(f"{sel['selection_split']} was carved from the task's {carved['carved_from']} items: {carved['n']} "
                     f"of {carved['n_from']} (seed {carved['seed']}; kept out of training)")
    if sel.get("on_training_items"):
        lines.append("WARNING: chosen on TRAINING items (eval.selection.allow_train_split): the choice favours "
                     "the checkpoint that memorised best")
    cap = sel.get("cap")
    if cap:
        lines.append(f"capped: chosen on the first {cap.get('n')} of {cap.get('n_total')} {sel['selection_split']} "
                     f"items, reported on the first {cap.get('report_n')} of {cap.get('report_n_total')} "
                     f"{sel['report_split']} items (limit {cap.get('limit')})")
    return lines


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.3g}"
