"""Where tunelab keeps things on disk: the shipped built-in models, the generated models and the
shared evaluation cache, all under one cache root (`$TUNELAB_CACHE`, default `~/.cache/tunelab`)."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path


def builtin_models_dir() -> Path:
    """The package data folder that holds the built-in pretrained models."""
    return Path(str(importlib.resources.files("tunelab").joinpath("builtin", "models")))


def cache_root() -> Path:
    """`$TUNELAB_CACHE` (default `~/.cache/tunelab`): everything tunelab generates outside runs."""
    return Path(os.environ.get("TUNELAB_CACHE") or "~/.cache/tunelab").expanduser()


def cache_dir() -> Path:
    """Where generated models live: `$TUNELAB_CACHE/models` (default `~/.cache/tunelab/models`)."""
    return cache_root() / "models"


def eval_cache_dir() -> Path:
    """Where the shared evaluation cache lives: `$TUNELAB_EVAL_CACHE`, else `$TUNELAB_CACHE/eval`."""
    own = os.environ.get("TUNELAB_EVAL_CACHE")
    return Path(own).expanduser() if own else cache_root() / "eval"
