"""A sweep's trials: their overrides, values and folder names (grid x zip x seeds)."""

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


def trial_name(values: dict[str, Any]) -> str:
    """A readable, filesystem-safe folder name from the trial's values (hashed if long)."""
    text = ",".join(f"{k}={show(v)}" for k, v in values.items())
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text).strip("-") or "trial"
    if len(safe) > 80 or safe != text:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        safe = f"{safe[:70].rstrip('-,')}-{digest}"
    return safe


def make_trial(values: dict[str, Any], name: str | None = None, number: int | None = None) -> Trial:
    """The trial of `values` (its folder `name`, default: made from the values)."""
    return Trial(name or trial_name(values), tuple(f"{k}={show(v)}" for k, v in values.items()), values, number)


def expand_trials(sweep: SweepConfig) -> list[Trial]:
    """grid (product) x zip (element-wise) x seeds, in config order."""
    grid = [[(k, v) for v in vals] for k, vals in sweep.grid.items()]
    n_zip = len(next(iter(sweep.zip.values()))) if sweep.zip else 0
    zipped = [[(k, vals[i]) for k, vals in sweep.zip.items()] for i in range(n_zip)] or [[]]
    seeds = [[("seed", s)] for s in sweep.seeds] or [[]]
    trials, seen = [], set()
    for combo in itertools.product(*grid, zipped, seeds):
        values = dict(pair for part in combo for pair in (part if isinstance(part, list) else [part]))
        if not values:
            continue
        t = make_trial(values)
        if t.name in seen:
            raise ConfigError(f"sweep: two trials would share the folder '{t.name}'; make the swept values distinct")
        seen.add(t.name)
        trials.append(t)
    return trials
