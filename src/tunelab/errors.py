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


class EvalError(TunelabError):
    """An evaluation or generation that cannot run as asked (unknown task, code execution not
    allowed, an endpoint that does not answer, ...). `evaluation.task` re-exports it."""


# Names users bring from transformers/TRL/peft configs, mapped to ours. Consulted before
# string similarity, which cannot guess that `rank` means `r`.
KNOWN_ALIASES = {
    "rank": "r", "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout",
    "learning_rate": "lr", "num_train_epochs": "epochs", "num_epochs": "epochs",
    "gradient_accumulation_steps": "grad_accum", "per_device_train_batch_size": "batch_size",
    "per_device_eval_batch_size": "eval_batch_size", "max_length": "max_seq_len",
    "max_seq_length": "max_seq_len", "model_name_or_path": "name", "torch_dtype": "dtype",
    "lr_scheduler_type": "scheduler", "warmup": "warmup_steps", "logging_steps": "log_every",
    "eval_steps": "eval_every", "save_steps": "save_every", "save_total_limit": "keep_last",
    "target_modules_list": "target_modules", "datasets": "sources", "dataset": "sources",
}


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' if none is close."""
    choices = list(choices)
    alias = KNOWN_ALIASES.get(name.lower())
    if alias in choices:
        return f" (did you mean '{alias}'?)"
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
