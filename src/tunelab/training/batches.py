"""The order in which training rows are seen, and turning rows into device batches.

Order: epoch `e` visits the rows in a permutation drawn from `numpy.random.default_rng([seed,
e])`; micro-batch `j` of the epoch is the slice `[j*G, (j+1)*G)` of it (G = batch_size *
world_size), of which rank `r` takes `[r*batch_size, (r+1)*batch_size)`. The position in the
data is therefore just `(epoch, j)`: deterministic, the same on every rank, and resumable in
the middle of an epoch without replaying anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tunelab.training.metrics import IGNORE_INDEX, loss_positions


@dataclass
class DataPosition:
    """Where the next micro-batch comes from."""

    epoch: int = 0
    index: int = 0  # micro-batch index inside the epoch


class DataOrder:
    """Seeded per-epoch permutation of `n` rows, sharded into micro-batches across ranks."""

    def __init__(self, n: int, batch_size: int, seed: int, world_size: int = 1, rank: int = 0):
        if n == 0:
            raise ValueError("no training rows")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.world_size, self.rank = world_size, rank
        self.global_batch = batch_size * world_size
        self.per_epoch = math.ceil(n / self.global_batch)
        self._cached: tuple[int, np.ndarray] | None = None

    def epoch_order(self, epoch: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            if self.world_size > 1:
                # Every rank needs a full batch or DDP waits forever: wrap around, like
                # torch's DistributedSampler does.
                short = self.per_epoch * self.global_batch - self.n
                order = np.concatenate([order, np.resize(order, short)]) if short else order
            self._cached = (epoch, order)
        return self._cached[1]

    def take(self, pos: DataPosition) -> tuple[list[int], DataPosition]:
        """This rank's row indices of micro-batch `pos`, and the position after it."""
        order = self.epoch_order(pos.epoch)
        chunk = order[pos.index * self.global_batch : (pos.index + 1) * self.global_batch]
        mine = chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        nxt = DataPosition(pos.epoch, pos.index + 1)
        if nxt.index >= self.per_epoch:
            nxt = DataPosition(pos.epoch + 1, 0)
        return mine.tolist(), nxt

    def epoch_float(self, pos: DataPosition) -> float:
        """Epochs completed, as a fraction (2.5 = half-way through the third epoch)."""
        return pos.epoch + pos.index / self.per_epoch


def make_batch(rows: Sequence[Any], pad_id: int, packed: bool, pack_to: int | None = None) -> dict[str, Tensor]:
    """Collate rows with the data layer, then add what the loss needs (on CPU, no device sync).

    With `pack_to`, unpacked examples are first packed into rows of at most `pack_to` tokens
    ("padding-free" batches): the same examples, the same loss (each example still attends
    only to itself, via position_ids), but no compute spent on padding. A padded batch of
    short and long examples is mostly padding; this is the loop's biggest speed-up on them.

    Returns `input_ids`, `labels`, `attention_mask` (padded) or `position_ids` (packed), plus
    `loss_index`/`targets` (see `metrics.loss_positions`).
    """
    from tunelab.data.packing import collate, pack_examples

    rows = list(rows)
    if pack_to is not None and not packed:
        rows = pack_examples(rows, max(pack_to, max(len(r.input_ids) for r in rows)))
        packed = True
    batch = dict(collate(rows, pad_id, packed))
    labels = batch["labels"]
    if batch.get("position_ids") is not None:
        # The first token of each packed example has no predecessor in its own example:
        # never let the previous example's last token be trained to predict it.
        labels = labels.masked_fill(batch["position_ids"] == 0, IGNORE_INDEX)
        batch["labels"] = labels
    batch["loss_index"], batch["targets"] = loss_positions(labels)
    return batch


def row_tokens(rows: Sequence[Any]) -> int:
    """Real (non-padding) tokens in these rows: what tokens/s counts."""
    return sum(len(r.input_ids) for r in rows)


def to_device(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    non_blocking = device.type == "cuda"
    return {k: (v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v) for k, v in batch.items()}
