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


def trial_name(values: dict[str, Any], labels: Labels | None = None, parts: list[str] | None = None) -> str:
    """A readable, filesystem-safe folder name from the trial's values (hashed if long): each
    value as `key=value`, or as its label (`sweep.labels`); `parts` gives the name's parts instead."""
    labels = labels or {}
    if parts is None:
        parts = [labels[k][show(v)] if show(v) in labels.get(k, {}) else f"{k}={show(v)}" for k, v in values.items()]
    text = ",".join(parts)
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text).strip("-") or "trial"
    if len(safe) > 80 or safe != text:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        safe = f"{safe[:70].rstrip('-,')}-{digest}"
    return safe


def make_trial(values: dict[str, Any], name: str | None = None, number: int | None = None) -> Trial:
    """The trial of `values` (its folder `name`, default: made from the values)."""
    return Trial(name or trial_name(values), tuple(f"{k}={show(v)}" for k, v in values.items()), values, number)


def expand_trials(sweep: SweepConfig) -> list[Trial]:
    """grid (product) x zip (element-wise) x seeds, in config order; folder names from the
    values and `sweep.labels` (a zip element is named by the labels of its labelled keys, by
    position, so two elements may share a value)."""
    lab = sweep.labels

    def named(key: str, i: int, value: Any) -> str:
        return lab[key][i] if key in lab else f"{key}={show(value)}"

    # Each part: (its (key, value) pairs, its pieces of the folder name).
    grid = [[([(k, v)], [named(k, i, v)]) for i, v in enumerate(vals)] for k, vals in sweep.grid.items()]
    n_zip = len(next(iter(sweep.zip.values()))) if sweep.zip else 0
    zlab = [k for k in sweep.zip if k in lab]
    zipped = [([(k, vals[i]) for k, vals in sweep.zip.items()],
               [lab[k][i] for k in zlab] or [f"{k}={show(vals[i])}" for k, vals in sweep.zip.items()])
              for i in range(n_zip)] or [([], [])]
    seeds = [([("seed", s)], [f"seed={s}"]) for s in sweep.seeds] or [([], [])]
    trials, seen = [], set()
    for combo in itertools.product(*grid, zipped, seeds):
        values = dict(pair for pairs, _ in combo for pair in pairs)
        if not values:
            continue
        t = make_trial(values, trial_name(values, parts=[p for _, pieces in combo for p in pieces]))
        if t.name in seen:
            raise ConfigError(f"sweep: two trials would share the folder '{t.name}'; make the swept values distinct"
                              " (or their sweep.labels)")
        seen.add(t.name)
        trials.append(t)
    return trials
