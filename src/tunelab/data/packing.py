"""Pack tokenized examples into fixed-budget rows, and collate rows into batches.

A packed row holds several examples end to end. Attention stays inside each example because
`position_ids` restart at 0 at every example: transformers' mask builder turns each restart into
a new block of a block-diagonal causal mask. That detection only runs when the forward pass has
no attention_mask and no KV cache, so a packed batch must be run with `use_cache=False`
(eval-mode models otherwise build a cache and silently attend across examples).

Loss stays inside each example too: models shift labels internally (logits at t predict
token t+1), so the last token of example A would be trained to predict the first token of
example B. Setting the label of every example's first token to -100 removes exactly that term,
and changes nothing else, since a first token is never predicted when examples run alone.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tunelab.data.types import TokenizedExample

IGNORE = -100


@dataclass
class PackedRow:
    """Several examples concatenated; `position_ids` restart at 0 at each example's first token."""

    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def source(self) -> str:
        """The one source of all examples in the row, or "mixed"."""
        return self.sources[0] if len(set(self.sources)) == 1 else "mixed"

    def add(self, ex: TokenizedExample) -> None:
        self.input_ids += ex.input_ids
        # No loss on predicting an example's first token from the previous example's last one.
        self.labels += [IGNORE] + list(ex.labels[1:])
        self.position_ids += list(range(len(ex.input_ids)))
        self.sources.append(ex.source)


def pack_examples(examples: Sequence[TokenizedExample], max_len: int) -> list[PackedRow]:
    """Best-fit-decreasing packing into rows of at most `max_len` tokens.

    Examples are placed longest first, each into the open row whose free space fits it most
    tightly (ties: the earliest row), which leaves little padding and is deterministic.

    Raises:
        ValueError: an example is longer than `max_len` (tokenize_all truncates to max_seq_len,
            so this is a caller bug).
    """
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i]), i))
    rows: list[PackedRow] = []
    free: list[tuple[int, int]] = []  # sorted (free tokens, row index) of rows with space left
    for i in order:
        ex = examples[i]
        n = len(ex)
        if n > max_len:
            raise ValueError(f"example of {n} tokens does not fit max_len={max_len}")
        if n == 0:
            continue
        k = bisect.bisect_left(free, (n, -1))  # the tightest row with at least n free tokens
        if k < len(free):
            space, r = free.pop(k)
        else:
            space, r = max_len, len(rows)
            rows.append(PackedRow())
        rows[r].add(ex)
        if space - n > 0:
            bisect.insort(free, (space - n, r))
    return rows


def packing_stats(rows: Sequence[PackedRow], max_len: int) -> dict[str, Any]:
    """Rows, examples per row and fill (tokens / (rows * max_len)) of a packing."""
    n_tokens = sum(len(r) for r in rows)
    n_examples = sum(len(r.sources) for r in rows)
    return {
        "n_rows": len(rows),
        "examples_per_row": round(n_examples / len(rows), 2) if rows else 0.0,
        "fill": round(n_tokens / (len(rows) * max_len), 4) if rows else 0.0,
    }


def collate(rows: Sequence[Any], pad_id: int, packed: bool) -> dict[str, torch.Tensor]:
    """Right-pad rows to the longest one and stack them into a batch.

    Args:
        rows: `PackedRow`s or `TokenizedExample`s (anything with input_ids and labels; a row
            without position_ids counts as one example).
        pad_id: token id used for padding (its labels are -100 either way).
        packed: True returns `position_ids` (padding continues as its own segment 0, 1, ..., so
            real tokens never attend to it) and no attention_mask; False returns `attention_mask`.

    Returns:
        {"input_ids", "labels", "attention_mask" | "position_ids"}: int64 tensors [batch, longest].
    """
    width = max(len(r.input_ids) for r in rows)
    input_ids, labels, extra = [], [], []
    for r in rows:
        n = len(r.input_ids)
        pad = width - n
        input_ids.append(list(r.input_ids) + [pad_id] * pad)
        labels.append(list(r.labels) + [IGNORE] * pad)
        if packed:
            positions = getattr(r, "position_ids", None) or list(range(n))
            extra.append(list(positions) + list(range(pad)))
        else:
            extra.append([1] * n + [0] * pad)
    batch = {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
    }
    batch["position_ids" if packed else "attention_mask"] = torch.tensor(extra, dtype=torch.long)
    return batch
