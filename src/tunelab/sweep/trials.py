"""A sweep's trials: their overrides, values and folder names (grid x zip x seeds).

A folder name is made from the trial's values: `key=value` each (`lora.r=4,lora.alpha=8`), or
the value's label from `sweep.labels` (`deep`, `repair,r16`), so a list or mapping value (a
whole `data.sources`) still gives a readable folder. Names too long or with odd characters are
cut and hashed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tunelab.config import SweepConfig
from tunelab.errors import ConfigError


@dataclass(frozen=True)
class Trial:
    """One point of the sweep: its folder name, `key=value` overrides and the values by key.

    `number` is the Optuna trial number of a sampled trial (None in a grid)."""

    name: str
    overrides: tuple[str, ...]
    values: dict[str, Any]
    number: int | None = field(default=None, compare=False)


def show(value: Any) -> str:
    """A value as a `--set` override writes it (strings bare, everything else as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


Labels = dict[str, dict[str, str]]  # swept key -> {show(value): its label}


def value_labels(sweep: SweepConfig) -> Labels:
    """`sweep.labels` as key -> {the value as `show` writes it: its label}."""
    swept = {**sweep.grid, **sweep.zip}
    return {k: {show(v): lab for v, lab in zip(swept.get(k, []), labels)} for k, labels in sweep.labels.items()}


def unnamed_keys(sweep: SweepConfig) -> frozenset[str]:
    """Keys left out of trial names: a zip's other keys once one of its keys is labelled."""
    if not any(k in sweep.labels for k in sweep.zip):
        return frozenset()
    return frozenset(k for k in sweep.zip if k not in sweep.labels)


def trial_name(values: dict[str, Any], labels: Labels | None = None, hidden: frozenset[str] = frozenset()) -> str:
    """A readable, filesystem-safe folder name from the trial's values (hashed if long): each
    value as `key=value`, or as its label (`sweep.labels`); `hidden` keys are left out."""
    labels = labels or {}
    parts = [labels[k][show(v)] if show(v) in labels.get(k, {}) else f"{k}={show(v)}"
             for k, v in values.items() if k not in hidden]
    text = ",".join(parts)
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text).strip("-") or "trial"
    if len(safe) > 80 or safe != text:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        safe = f"{safe[:70].rstrip('-,')}-{digest}"
    return safe


def make_trial(values: dict[str, Any], name: str | None = None, number: int | None = None,
               labels: Labels | None = None, hidden: frozenset[str] = frozenset()) -> Trial:
    """The trial of `values` (its folder `name`, default: made from the values and their labels)."""
    return Trial(name or trial_name(values, labels, hidden), tuple(f"{k}={show(v)}" for k, v in values.items()),
                 values, number)


def expand_trials(sweep: SweepConfig) -> list[Trial]:
    """grid (product) x zip (element-wise) x seeds, in config order."""
    grid = [[(k, v) for v in vals] for k, vals in sweep.grid.items()]
    n_zip = len(next(iter(sweep.zip.values()))) if sweep.zip else 0
    zipped = [[(k, vals[i]) for k, vals in sweep.zip.items()] for i in range(n_zip)] or [[]]
    seeds = [[("seed", s)] for s in sweep.seeds] or [[]]
    labels, hidden = value_labels(sweep), unnamed_keys(sweep)
    trials, seen = [], set()
    for combo in itertools.product(*grid, zipped, seeds):
        values = dict(pair for part in combo for pair in (part if isinstance(part, list) else [part]))
        if not values:
            continue
        t = make_trial(values, labels=labels, hidden=hidden)
        if t.name in seen:
            raise ConfigError(f"sweep: two trials would share the folder '{t.name}'; make the swept values distinct"
                              " (or their sweep.labels)")
        seen.add(t.name)
        trials.append(t)
    return trials
