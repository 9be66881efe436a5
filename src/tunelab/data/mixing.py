"""Read every source, split train/val/test, and mix the training sources by weight.

Everything random here draws from `random.Random` instances seeded by strings built from the
experiment seed and the source's position and name, so the same config and seed give the same
splits on any machine and Python version (string seeds are hashed with SHA-512, not `hash()`).
"""

from __future__ import annotations

import math
import random
from collections import Counter

from tunelab.config import DataConfig, SourceConfig
from tunelab.data.formats import to_chat
from tunelab.data.sources import read_rows
from tunelab.data.types import ChatExample, Splits
from tunelab.errors import DataError


def load_source(src: SourceConfig) -> list[ChatExample]:
    """Read one source and normalise every row; the first malformed row raises `DataError`."""
    return [to_chat(row, origin, src) for row, origin in read_rows(src)]


def build_splits(data_cfg: DataConfig, seed: int) -> Splits:
    """Read all sources and return shuffled, weighted train/val/test splits.

    Splitting: when `data_cfg.val` (or `test`) lists sources, those are the val (or test) split
    and the training sources give none to it. Otherwise each training source is split by
    `data_cfg.split` ratios on its own (after a seeded shuffle), so every source appears in every
    split; a ratio above 0 gives each source at least one example.

    Weights apply to the train split only (val/test keep each source's natural size, so their
    losses stay comparable across weightings). A source with n training examples and weight w
    contributes round(w * n) examples: floor(w) full copies of all n, plus a seeded random
    subset (without repetition) of round((w - floor(w)) * n) of them. So weight 1 = every example
    once, 2 = every example twice, 0.5 = a random half, 1.5 = all once plus a random half again.
    The mixed train split is then shuffled; val and test are shuffled too, so that evaluating on
    the first N of them (max_eval_examples) sees every source.

    Args:
        data_cfg: the data section of the experiment.
        seed: the experiment seed; the same seed gives identical splits.

    Returns:
        `Splits` with `counts[split][source] = n` (train counts after weighting).
    """
    _check_unique_labels(data_cfg.sources, "sources")
    val_ratio = 0.0 if data_cfg.val is not None else data_cfg.split.val
    test_ratio = 0.0 if data_cfg.test is not None else data_cfg.split.test

    train: list[ChatExample] = []
    val: list[ChatExample] = []
    test: list[ChatExample] = []
    for i, src in enumerate(data_cfg.sources):
        examples = load_source(src)
        rng = random.Random(f"{seed}/split/{i}/{src.label}")
        tr, va, te = split_by_ratio(examples, val_ratio, test_ratio, rng, src.label)
        train += apply_weight(tr, src.weight, random.Random(f"{seed}/weight/{i}/{src.label}"))
        val += va
        test += te
    for name, group, out in (("val", data_cfg.val, val), ("test", data_cfg.test, test)):
        if group is not None:
            _check_unique_labels(group, name)
            for src in group:
                out += load_source(src)

    for name, part in (("train", train), ("val", val), ("test", test)):
        random.Random(f"{seed}/shuffle/{name}").shuffle(part)
    counts = {name: dict(Counter(ex.source for ex in part)) for name, part in
              (("train", train), ("val", val), ("test", test))}
    return Splits(train=train, val=val, test=test, counts=counts)


def split_by_ratio(
    examples: list[ChatExample], val: float, test: float, rng: random.Random, label: str = "data"
) -> tuple[list[ChatExample], list[ChatExample], list[ChatExample]]:
    """Shuffle a copy of `examples` with `rng` and cut it into (train, val, test) by ratio.

    Raises:
        DataError: when the source is too small to leave at least one training example.
    """
    n = len(examples)
    n_val = max(1, round(n * val)) if val > 0 else 0
    n_test = max(1, round(n * test)) if test > 0 else 0
    if n - n_val - n_test < 1:
        raise DataError(
            f"source '{label}' has {n} example(s): too few to split off val={val} and test={test} "
            f"and keep any for training; add rows, lower data.split, or give explicit val:/test: sources"
        )
    order = list(examples)
    rng.shuffle(order)
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def apply_weight(examples: list[ChatExample], weight: float, rng: random.Random) -> list[ChatExample]:
    """Repeat and/or subsample `examples` to round(weight * len) items (see `build_splits`)."""
    copies = math.floor(weight)
    extra = round((weight - copies) * len(examples))
    if copies == 0 and extra == 0 and examples:
        extra = 1  # a tiny weight still keeps the source present
    return list(examples) * copies + rng.sample(examples, extra)


def _check_unique_labels(sources: list[SourceConfig], group: str) -> None:
    """Two sources with the same label would merge in per-source counts and metrics."""
    seen: set[str] = set()
    for src in sources:
        if src.label in seen:
            raise DataError(
                f"data.{group}: two sources are both named '{src.label}'; give them distinct `name:` values"
            )
        seen.add(src.label)
