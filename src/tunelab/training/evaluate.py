"""Validation/test loss and mean token accuracy during training, overall and per source.

Always on unpacked, padded examples (packing never touches evaluation), batched within one
source at a time so per-source sums fall out of the same `token_stats` totals. Under several
processes each rank scores a disjoint share and the sums are added across ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from tunelab.training.batches import make_batch, to_device
from tunelab.training.metrics import TokenLossModel


@torch.no_grad()
def evaluate(
    loss_model: TokenLossModel,
    examples: Sequence[Any],
    *,
    batch_size: int,
    pad_id: int,
    accelerator,
    pack_to: int | None = None,
    max_examples: int | None = None,
) -> dict[str, Any] | None:
    """Score `examples` (TokenizedExample-like: input_ids, labels, source); None if empty.

    `pack_to` packs each batch padding-free (see `batches.make_batch`); the sums are the same.

    Returns `{"loss", "token_accuracy", "tokens", "examples", "per_source": {source: {...}}}`
    where every mean is total over tokens (sum of token losses / number of label tokens).
    """
    examples = list(examples[:max_examples] if max_examples else examples)
    if not examples:
        return None
    rank, world = accelerator.process_index, accelerator.num_processes
    sources = sorted({e.source for e in examples})
    device = accelerator.device
    dtype = torch.float32 if device.type == "mps" else torch.float64
    # [source, (loss_sum, n_correct, n_tokens, n_examples)]
    sums = torch.zeros(len(sources), 4, dtype=dtype, device=device)
    mine = examples[rank::world]
    was_training = loss_model.training
    loss_model.eval()
    for i, source in enumerate(sources):
        group = sorted((e for e in mine if e.source == source), key=len)  # less padding
        for k in range(0, len(group), batch_size):
            rows = group[k : k + batch_size]
            batch = to_device(make_batch(rows, pad_id, packed=False, pack_to=pack_to), device)
            with accelerator.autocast():
                loss_sum, n_correct, n_tokens = loss_model(**batch, accuracy=True)
            sums[i, 0] += loss_sum.to(dtype)
            sums[i, 1] += n_correct.to(dtype)
            sums[i, 2] += n_tokens.to(dtype)
            sums[i, 3] += len(rows)
    loss_model.train(was_training)
    if world > 1:
        sums = accelerator.reduce(sums, reduction="sum")
    table = sums.tolist()
    per_source = {s: _means(*row) for s, row in zip(sources, table)}
    total = [sum(col) for col in zip(*table)]
    return {**_means(*total), "per_source": per_source}


def _means(loss_sum: float, n_correct: float, n_tokens: float, n_examples: float) -> dict[str, Any]:
    return {
        "loss": loss_sum / n_tokens if n_tokens else float("nan"),
        "token_accuracy": n_correct / n_tokens if n_tokens else float("nan"),
        "tokens": int(n_tokens),
        "examples": int(n_examples),
    }
