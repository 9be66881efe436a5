"""`tunelab data inspect` and `tunelab data validate`: look at the data before training on it.

`render_inspect` prints what `prepare` will feed the model: per-source counts, token and
truncation statistics, the chat template, and a few training examples with the loss-carrying
tokens marked (green and between ⟦ ⟧, so it reads the same without colour). `validate_data`
reads every row of every source and returns every problem, not just the first.
"""

from __future__ import annotations

import random
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tunelab.config import Experiment, SourceConfig
from tunelab.data.formats import to_chat
from tunelab.data.mixing import split_by_ratio
from tunelab.data.pipeline import SPLITS, PreparedData, prepare
from tunelab.data.sources import describe, read_rows
from tunelab.data.tokenize import mask_segments
from tunelab.errors import DataError

LEGEND = "Legend: ⟦green text⟧ carries loss (the model learns to produce it); dim text is masked (label -100)."


def render_inspect(exp: Experiment, tokenizer: Any, n_examples: int = 3, console: Console | None = None) -> PreparedData:
    """Prepare the data as training would and print a readable summary of it.

    Args:
        exp: the experiment; only `exp.data` and `exp.seed` are used.
        tokenizer: the model's tokenizer (its chat template is resolved as in training).
        n_examples: how many training examples to show with their label mask.
        console: where to print (a new rich Console by default).

    Returns:
        The `PreparedData`, so a caller can reuse it.
    """
    console = console or Console()
    prepared = prepare(exp, tokenizer)
    stats = prepared.stats

    sources = Table(title="Examples per source (after mixing; kept after tokenization)")
    for col in ("source", "from", "weight", *SPLITS):
        sources.add_column(col, justify="right" if col in ("weight", *SPLITS) else "left")
    for label, info in stats["sources"].items():
        cells = [
            f"{stats['counts'][s].get(label, 0)} ({stats['kept'][s].get(label, 0)})" for s in SPLITS
        ]
        sources.add_row(label, info["where"], f"{info['weight']:g}", *cells)
    for s in SPLITS:  # explicit val/test sources are not among data.sources
        for label in stats["counts"][s]:
            if label not in stats["sources"]:
                cells = [
                    f"{stats['counts'][x].get(label, 0)} ({stats['kept'][x].get(label, 0)})" if x == s else "-"
                    for x in SPLITS
                ]
                sources.add_row(label, f"data.{s}", "-", *cells)
    console.print(sources)

    tokens = Table(title=f"Tokens (max_seq_len {stats['max_seq_len']}, truncation: {stats['truncation']})")
    cols = ("split", "examples", "kept", "truncated", "dropped", "no label", "tokens", "label tokens",
            "mean len", "p50", "p95", "max")
    keys = ("n_examples", "n_kept", "n_truncated", "n_dropped", "n_no_label", "tokens_total",
            "label_tokens_total", "length_mean", "length_p50", "length_p95", "length_max")
    for col in cols:
        tokens.add_column(col, justify="left" if col == "split" else "right")
    for s in SPLITS:
        tokens.add_row(s, *(str(stats["tokens"][s][k]) for k in keys))
    console.print(tokens)

    console.print(f"chat template: [bold]{stats['chat_template']}[/bold]   "
                  f"end of turn: {stats['end_of_turn']!r}   train_on_prompt: {stats['train_on_prompt']}")
    console.print(f"masking: {stats['masking']}")
    packing = stats["packing"]
    if packing["enabled"]:
        console.print(f"packing: {packing['n_rows']} rows of {stats['max_seq_len']} tokens, "
                      f"fill {packing['fill']:.1%}, {packing['examples_per_row']} examples per row")
    else:
        console.print("packing: off (one example per row, padded per batch)")

    console.print()
    console.print(LEGEND)
    for i, ex in enumerate(prepared.train_examples[:n_examples]):
        origin = prepared.origins["train"][i]
        console.rule(f"train example {i + 1}: {ex.source}  {origin}  ({len(ex)} tokens"
                     + (", truncated)" if ex.truncated else ")"))
        text = Text()
        for piece, trained in mask_segments(ex, tokenizer):
            if trained:
                text.append(f"⟦{piece}⟧", style="bold green")
            else:
                text.append(piece, style="dim")
        console.print(text)
    return prepared


def validate_data(exp: Experiment) -> list[str]:
    """Read and normalise every row of every source; return all problems found (empty = fine).

    Checks file readability, each row's format, duplicate source names and whether each
    source is large enough for its ratio split. Identical messages are reported once.
    """
    data = exp.data
    errors: list[str] = []
    groups: list[tuple[str, list[SourceConfig]]] = [("sources", data.sources)]
    groups += [(name, group) for name, group in (("val", data.val), ("test", data.test)) if group]
    for group_name, group in groups:
        labels = [src.label for src in group]
        for label in sorted({x for x in labels if labels.count(x) > 1}):
            errors.append(f"data.{group_name}: two sources are both named '{label}'; give them distinct `name:` values")
        for src in group:
            try:
                rows = read_rows(src, errors=errors)
            except DataError as e:
                errors.append(str(e))
                continue
            good = []
            for row, origin in rows:
                try:
                    good.append(to_chat(row, origin, src))
                except DataError as e:
                    errors.append(str(e))
            if group_name == "sources" and good:
                val = 0.0 if data.val is not None else data.split.val
                test = 0.0 if data.test is not None else data.split.test
                try:
                    split_by_ratio(good, val, test, random.Random(0), src.label)
                except DataError as e:
                    errors.append(f"{describe(src)}: {e}")
    return list(dict.fromkeys(errors))  # de-duplicate, keep order
