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
from tunelab.data.holdout import Holdout
from tunelab.data.sources import read_rows
from tunelab.data.types import ChatExample, Splits
from tunelab.errors import DataError


def load_source(src: SourceConfig) -> list[ChatExample]:
    """Read one source and normalise every row; the first malformed row raises `DataError`."""
    return load_grouped(src, None)[0]


def load_grouped(src: SourceConfig, group_by: str | None, required: bool = True
                 ) -> tuple[list[ChatExample], list[str | None]]:
    """One source's examples and each row's value of the raw field `group_by` (None without it).

    Raises:
        DataError: a malformed row, or (`required`) a row without the `group_by` field.
    """
    examples, groups = [], []
    for row, origin in read_rows(src):
        examples.append(to_chat(row, origin, src))
        value = row.get(group_by) if group_by else None
        if group_by and value is None and required:
            raise DataError(f"{origin}: data.split.group_by is '{group_by}' but this row has no such field "
                            f"(its fields: {', '.join(map(str, row)) or 'none'})")
        groups.append(None if value is None else str(value))
    return examples, groups


def build_splits(data_cfg: DataConfig, seed: int, holdout: Holdout | None = None) -> Splits:
    """Read all sources and return shuffled, weighted train/val/test splits.

    Splitting: when `data_cfg.val` (or `test`) lists sources, those are the val (or test) split
    and the training sources give none to it. Otherwise each training source is split by
    `data_cfg.split` ratios on its own (after a seeded shuffle), so every source appears in every
    split; a ratio above 0 gives each source at least one example. With `split.group_by`, whole
    groups (rows with the same value of that raw field, across all sources) are dealt to the
    splits instead (`assign_groups`), so no group spans two splits.

    `Splits.overlap` counts, per val/test split, the items that share a group with training
    and the near-duplicates of a training item by prompt and by reply (`split_overlap`).

    Weights apply to the train split only (val/test keep each source's natural size, so their
    losses stay comparable across weightings). A source with n training examples and weight w
    contributes round(w * n) examples: floor(w) full copies of all n, plus a seeded random
    subset (without repetition) of round((w - floor(w)) * n) of them. So weight 1 = every example
    once, 2 = every example twice, 0.5 = a random half, 1.5 = all once plus a random half again.
    The mixed train split is then shuffled; val and test are shuffled too, so that evaluating on
    the first N of them (max_eval_examples) sees every source.

    `holdout` rows (items something else is measured on, e.g. checkpoint selection's carved
    validation items) are dropped from each source's training part before weighting; how many,
    and which ids, goes to `Splits.held_out`. Val and test keep theirs.

    Args:
        data_cfg: the data section of the experiment.
        seed: the experiment seed; the same seed gives identical splits.
        holdout: training rows to leave out (`data.holdout.Holdout`), or None.

    Returns:
        `Splits` with `counts[split][source] = n` (train counts after weighting).
    """
    _check_unique_labels(data_cfg.sources, "sources")
    val_ratio = 0.0 if data_cfg.val is not None else data_cfg.split.val
    test_ratio = 0.0 if data_cfg.test is not None else data_cfg.split.test
    group_by = data_cfg.split.group_by

    train: list[ChatExample] = []
    val: list[ChatExample] = []
    test: list[ChatExample] = []
    held: list[ChatExample] = []
    group_of: dict[int, str | None] = {}  # id(example) -> its group value
    loaded = [load_grouped(src, group_by) for src in data_cfg.sources]
    for (examples, groups) in loaded:
        group_of.update((id(ex), g) for ex, g in zip(examples, groups))
    if group_by:
        assign = assign_groups([g for _, groups in loaded for g in groups], val_ratio, test_ratio,
                               random.Random(f"{seed}/groups"), group_by)
    for i, (src, (examples, groups)) in enumerate(zip(data_cfg.sources, loaded)):
        if group_by:
            parts = {name: [ex for ex, g in zip(examples, groups) if assign[g] == name] for name in ("train", "val", "test")}
            tr, va, te = parts["train"], parts["val"], parts["test"]
        else:
            rng = random.Random(f"{seed}/split/{i}/{src.label}")
            tr, va, te = split_by_ratio(examples, val_ratio, test_ratio, rng, src.label)
        if holdout is not None:
            tr, dropped = holdout.split(tr)
            held += dropped
        train += apply_weight(tr, src.weight, random.Random(f"{seed}/weight/{i}/{src.label}"))
        val += va
        test += te
    for name, group, out in (("val", data_cfg.val, val), ("test", data_cfg.test, test)):
        if group is not None:
            _check_unique_labels(group, name)
            for src in group:
                examples, groups = load_grouped(src, group_by, required=False)
                group_of.update((id(ex), g) for ex, g in zip(examples, groups))
                out += examples

    for name, part in (("train", train), ("val", val), ("test", test)):
        random.Random(f"{seed}/shuffle/{name}").shuffle(part)
    counts = {name: dict(Counter(ex.source for ex in part)) for name, part in
              (("train", train), ("val", val), ("test", test))}
    overlap = split_overlap(train, {"val": val, "test": test}, group_of if group_by else None)
    return Splits(train=train, val=val, test=test, counts=counts, overlap=overlap,
                  held_out=holdout.stats(held) if holdout is not None else None)


def assign_groups(groups: list[str | None], val: float, test: float, rng: random.Random,
                  field: str = "group") -> dict[str | None, str]:
    """Each distinct group value -> "train", "val" or "test", so a group never spans splits.

    Groups are shuffled with `rng` and dealt to val, then test, until each holds about its ratio
    of the rows (at least one group when its ratio is above 0); the rest is train.

    Raises:
        DataError: too few groups to leave one for training.
    """
    sizes = Counter(groups)
    order = sorted(sizes)
    rng.shuffle(order)
    n = len(groups)
    want = {"val": max(1, round(n * val)) if val > 0 else 0, "test": max(1, round(n * test)) if test > 0 else 0}
    have = {"val": 0, "test": 0}
    out: dict[str | None, str] = {}
    for g in order:
        name = next((s for s in ("val", "test") if have[s] < want[s]), "train")
        out[g] = name
        have[name] = have.get(name, 0) + sizes[g]
    if "train" not in out.values():
        raise DataError(f"data.split.group_by '{field}': {len(order)} group(s) are too few to split off "
                        f"val={val} and test={test} and keep one for training; lower data.split or add data")
    return out


def normalized_prompt(ex: ChatExample) -> str:
    """Everything but the replies, case-folded and with whitespace collapsed: the text that
    near-duplicate detection compares."""
    text = " ".join(m["content"] for m in ex.messages if m["role"] != "assistant")
    return " ".join(text.casefold().split())


def normalized_reply(ex: ChatExample) -> str:
    """The replies (the reference answer), normalised like `normalized_prompt`."""
    text = " ".join(m["content"] for m in ex.messages if m["role"] == "assistant")
    return " ".join(text.casefold().split())


def split_overlap(train: list[ChatExample], held_out: dict[str, list[ChatExample]],
                  group_of: dict[int, str | None] | None) -> dict[str, dict[str, int | None]]:
    """Per held-out split: its size, how many items share a group with a training item (None
    without `data.split.group_by`), how many are near-duplicates of one by prompt (same
    normalised prompt), by reply (same normalised reference answer: a test item whose solution
    was trained on is recall even when it is asked in other words), and by either."""
    prompts = {normalized_prompt(ex) for ex in train}
    replies = {normalized_reply(ex) for ex in train} - {""}
    train_groups = {group_of.get(id(ex)) for ex in train} - {None} if group_of is not None else set()
    out: dict[str, dict[str, int | None]] = {}
    for name, items in held_out.items():
        shared = None if group_of is None else sum(group_of.get(id(ex)) in train_groups for ex in items)
        by_prompt = [normalized_prompt(ex) in prompts for ex in items]
        by_reply = [normalized_reply(ex) in replies for ex in items]
        out[name] = {"n": len(items), "shares_group_with_train": shared,
                     "near_duplicate_of_train": sum(by_prompt),
                     "reply_near_duplicate_of_train": sum(by_reply),
                     "prompt_or_reply_near_duplicate_of_train": sum(a or b for a, b in zip(by_prompt, by_reply))}
    return out


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
