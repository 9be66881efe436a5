"""The data layer's value types, shared by every stage that touches examples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChatExample:
    """One normalised example: chat messages plus where it came from.

    `messages` is a list of {"role": "system"|"user"|"assistant", "content": str}; at least one
    assistant message carries the target. `origin` is "file:line" (or "hub-id[index]") so that
    any later error can point at the row.
    """

    messages: list[dict[str, str]]
    source: str
    origin: str
    id: str = ""


@dataclass
class Splits:
    """Train/validation/test examples after mixing and splitting, with per-source counts."""

    train: list[ChatExample]
    val: list[ChatExample]
    test: list[ChatExample]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> source -> n
    overlap: dict[str, dict[str, int | None]] = field(default_factory=dict)  # val/test -> overlap with train
    held_out: dict[str, Any] | None = None  # training rows left out (`data.holdout.Holdout.stats`)


@dataclass
class TokenizedExample:
    """Token ids and labels of one example; labels are -100 where no loss is taken."""

    input_ids: list[int]
    labels: list[int]
    source: str
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)
