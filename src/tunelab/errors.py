"""User-facing errors.

Everything raised as a `TunelabError` is a mistake a person can fix (a config key, a data row,
a missing file). The CLI prints these as one clear message without a traceback; anything else
is a bug in tunelab and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TunelabError(Exception):
    """An error caused by the user's input, shown without a traceback."""


class ConfigError(TunelabError):
    """A bad experiment config: unknown key, wrong type, value out of range."""


class DataError(TunelabError):
    """Bad or missing data: unreadable file, malformed row, missing column, empty split."""


class ModelError(TunelabError):
    """A model that cannot be loaded or configured as asked."""


class TrainingError(TunelabError):
    """Training cannot continue (non-finite loss, nothing to resume from, ...)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' if none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
