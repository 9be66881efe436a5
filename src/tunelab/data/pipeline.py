"""The data stage end to end: sources -> splits -> tokens, with the stats a run records.

`prepare` is what training calls; `write_manifest` records in the run directory which rows went
into which split, how long they were and how many tokens carried loss, plus a plain statement of
what was masked, because tools differ silently on that default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.config import Experiment
from tunelab.data.holdout import Holdout
from tunelab.data.mixing import build_splits
from tunelab.data.packing import PackedRow, pack_examples, packing_stats
from tunelab.data.sources import describe
from tunelab.data.tokenize import (
    count_label_tokens,
    end_of_turn,
    mask_segments,
    resolve_chat_template,
    tokenize_with_origins,
)
from tunelab.data.types import TokenizedExample
from tunelab.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class PreparedData:
    """Tokenized splits plus the stats that describe them (JSON-serialisable).

    With `data.packing`, `train` holds `PackedRow`s (position_ids restart per example) and
    `train_examples` the examples they were packed from; otherwise both are the same list.
    Val and test are never packed, so evaluation scores each example alone.
    `origins[split][i]` is where example i of the split came from ("file:line").
    """

    train: list[TokenizedExample] | list[PackedRow]
    val: list[TokenizedExample]
    test: list[TokenizedExample]
    stats: dict[str, Any]
    origins: dict[str, list[str]] = field(default_factory=dict)
    train_examples: list[TokenizedExample] = field(default_factory=list)

    def examples(self, name: str) -> list[TokenizedExample]:
        """The tokenized examples of a split (unpacked, in the order of `origins[name]`)."""
        return {"train": self.train_examples, "val": self.val, "test": self.test}[name]


def prepare(exp: Experiment, tokenizer: Any, holdout: Holdout | None = None) -> PreparedData:
    """Read, split, mix and tokenize the experiment's data (without the `holdout` training rows,
    see `mixing.build_splits`).

    Sets `tokenizer.chat_template` as `exp.data.chat_template` resolves (see
    `resolve_chat_template`), so later generation renders prompts the same way.

    Raises:
        DataError: bad data, or no training example left after truncation/masking.
    """
    data = exp.data
    template = resolve_chat_template(tokenizer, data.chat_template)
    splits = build_splits(data, exp.seed, holdout)
    tokenized: dict[str, list[TokenizedExample]] = {}
    origins: dict[str, list[str]] = {}
    token_stats: dict[str, dict[str, Any]] = {}
    for name in SPLITS:
        tokenized[name], origins[name], token_stats[name] = tokenize_with_origins(
            getattr(splits, name), tokenizer, data, exp.eval.enable_thinking
        )
    train = tokenized["train"]
    if not train:
        s = token_stats["train"]
        raise DataError(
            f"no training example left after tokenization ({s['n_dropped']} longer than "
            f"max_seq_len={data.max_seq_len} dropped, {s['n_no_label']} with no reply token left); "
            f"raise data.max_seq_len or use data.truncation: right"
        )

    eot = end_of_turn(tokenizer)
    stats: dict[str, Any] = {
        "seed": exp.seed,
        "chat_template": template,
        "end_of_turn": eot,
        "enable_thinking": exp.eval.enable_thinking,
        "train_on_prompt": data.train_on_prompt,
        "masking": describe_masking(data.train_on_prompt, eot),
        "max_seq_len": data.max_seq_len,
        "truncation": data.truncation,
        "packing": {"enabled": data.packing},
        "sources": {
            src.label: {"where": describe(src), "weight": src.weight, "format": src.format}
            for src in data.sources
        },
        "counts": splits.counts,
        "overlap": splits.overlap,
        "held_out": splits.held_out,
        "kept": {name: _count_sources(tokenized[name]) for name in SPLITS},
        "tokens": token_stats,
        "preview": preview_text(train[0], tokenizer),
    }
    rows: list[TokenizedExample] | list[PackedRow] = train
    if data.packing:
        rows = pack_examples(train, data.max_seq_len)
        stats["packing"].update(packing_stats(rows, data.max_seq_len))
    return PreparedData(
        train=rows, val=tokenized["val"], test=tokenized["test"], stats=stats, origins=origins,
        train_examples=train,
    )


def describe_masking(train_on_prompt: bool, eot: str | None) -> str:
    """One sentence saying which tokens carry loss."""
    if train_on_prompt:
        return "loss on every token (train_on_prompt: true): system, user and assistant turns"
    stop = f" and the end-of-turn marker {eot!r}" if eot else ""
    return (
        f"loss on assistant replies{stop} in every assistant turn; system prompt, user turns "
        f"and template headers are masked (label -100)"
    )


def preview_text(ex: TokenizedExample, tokenizer: Any) -> str:
    """The example as text with the loss-carrying parts between ⟦ and ⟧."""
    return "".join(f"⟦{text}⟧" if trained else text for text, trained in mask_segments(ex, tokenizer))


def write_manifest(prepared: PreparedData, data_dir: Path) -> None:
    """Write `stats.json` and `{split}.manifest.jsonl` (one line per example) under `data_dir`.

    Manifest lines: {"origin", "source", "n_tokens", "n_label_tokens", "truncated"}, in the
    order the split is used (train after mixing and shuffling).
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(data_dir / "stats.json", json.dumps(prepared.stats, indent=2, ensure_ascii=False) + "\n")
    for name in SPLITS:
        examples = prepared.examples(name)
        origins = prepared.origins.get(name) or [""] * len(examples)
        lines = [
            json.dumps(
                {
                    "origin": origin,
                    "source": ex.source,
                    "n_tokens": len(ex),
                    "n_label_tokens": count_label_tokens(ex),
                    "truncated": ex.truncated,
                },
                ensure_ascii=False,
            )
            for ex, origin in zip(examples, origins)
        ]
        _write_atomic(data_dir / f"{name}.manifest.jsonl", "".join(line + "\n" for line in lines))


def _count_sources(examples: list[TokenizedExample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.source] = counts.get(ex.source, 0) + 1
    return counts


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
