"""Where tunelab keeps models on disk: the shipped built-in models and the generated cache."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path


def builtin_models_dir() -> Path:
    """The package data folder that holds the built-in pretrained models."""
    return Path(str(importlib.resources.files("tunelab").joinpath("builtin", "models")))


def cache_dir() -> Path:
    """Where generated models live: `$TUNELAB_CACHE/models` (default `~/.cache/tunelab/models`)."""
    root = os.environ.get("TUNELAB_CACHE") or "~/.cache/tunelab"
    return Path(root).expanduser() / "models"
