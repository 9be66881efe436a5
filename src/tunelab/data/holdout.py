"""Rows kept out of training because something else is measured on them.

Checkpoint selection on a task without a validation split chooses on items carved from the
task's train split (`evaluation.holdout`). Those items often are training rows too (the
built-in `basic-python-stdio` training rows are the `stdio` task's train problems), and a
checkpoint chosen on rows it trained on is the one that memorised best. A `Holdout` names the
items; `build_splits` drops the training rows that match one, before weighting, and records how
many it dropped (`Splits.held_out`, the run's data/stats.json).

A row matches an item by id (built-in rows carry their problem's id, the task's sample id) or
by the text of its user turns (case-folded, whitespace collapsed: the same normalisation as the
near-duplicate counts of `mixing.split_overlap`), so rows of a user's own file with other ids
match too when they ask the same thing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.data.types import ChatExample

_COMPUTED = ("reason", "n_items", "n_removed", "removed_by_source", "removed_origins")  # what `stats` adds


def normalized(text: str) -> str:
    """Case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def user_text(messages: Sequence[dict[str, str]]) -> str:
    """The user turns of a chat, normalised (system prompts and replies left out: a training
    row's system prompt does not make it another problem)."""
    return normalized(" ".join(m["content"] for m in messages if m.get("role") == "user"))


@dataclass(frozen=True)
class Holdout:
    """Items to keep out of training.

    Attributes:
        reason: one line for stats and reports, e.g. "checkpoint selection on stdio@val".
        ids: the items' ids (matched against `ChatExample.id`).
        prompts: normalised user text (`user_text`) -> the id of the item that asks it.
        origins: rows named by origin ("path:line"): what a run recorded as held out.
        record: what made the items (task, seed, rule, ids), written to data/stats.json as is.
    """

    reason: str
    ids: frozenset[str] = frozenset()
    prompts: dict[str, str] = field(default_factory=dict, compare=False)
    origins: frozenset[str] = frozenset()
    record: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, reason: str, items: Iterable[tuple[str, str]], record: dict[str, Any] | None = None) -> Holdout:
        """From (id, user text) pairs; the text is normalised here."""
        pairs = list(items)
        prompts = {t: i for i, text in pairs if (t := normalized(text))}
        return cls(reason, frozenset(i for i, _ in pairs), prompts, frozenset(), dict(record or {}))

    @classmethod
    def recorded(cls, held_out: dict[str, Any]) -> Holdout:
        """The holdout a run recorded (data/stats.json `held_out`): exactly the rows it dropped,
        by origin, so a resumed run or a check of its training rows sees the same ones."""
        record = {k: v for k, v in held_out.items() if k not in _COMPUTED}
        return cls(str(held_out.get("reason", "")), frozenset(map(str, held_out.get("ids") or ())),
                   origins=frozenset(held_out.get("removed_origins") or ()), record=record)

    def match(self, ex: ChatExample) -> str | None:
        """The item a training row is (its id, or the row's origin for `origins`), or None."""
        if ex.id and ex.id in self.ids:
            return ex.id
        if ex.origin in self.origins:
            return ex.origin
        return self.prompts.get(user_text(ex.messages)) if self.prompts else None

    def split(self, examples: Sequence[ChatExample]) -> tuple[list[ChatExample], list[ChatExample]]:
        """(kept, held out) of `examples`, in their order."""
        kept, out = [], []
        for ex in examples:
            (kept if self.match(ex) is None else out).append(ex)
        return kept, out

    def stats(self, removed: Sequence[ChatExample]) -> dict[str, Any]:
        """What data/stats.json records: why, how many items, and the training rows dropped (per
        source, and by origin, so the run's training split can be rebuilt exactly)."""
        return {"reason": self.reason, "n_items": len(self.ids), "n_removed": len(removed),
                "removed_by_source": dict(Counter(ex.source for ex in removed)),
                "removed_origins": sorted(ex.origin for ex in removed), **self.record}


def recorded_holdout(stats_path: Path) -> Holdout | None:
    """What a run's data/stats.json recorded as held out, or None (nothing, or no readable file)."""
    try:
        held = json.loads(Path(stats_path).read_text(encoding="utf-8")).get("held_out")
    except (OSError, ValueError, AttributeError):
        return None
    return Holdout.recorded(held) if isinstance(held, dict) else None
