"""Deterministic generators of tunelab's built-in datasets.

Each module here rebuilds one dataset under `src/tunelab/builtin/datasets/` and is run by hand
from a checkout (`python -m tunelab_build.datasets.<module>`); nothing here runs at import, and
the installed package never imports it. The shipped files are the output; the cards beside them
name the command that made them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

# The checkout's shipped datasets (not an installed tunelab's): regenerating rewrites the sources.
DATASETS_DIR = Path(__file__).resolve().parents[2] / "src" / "tunelab" / "builtin" / "datasets"


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write rows as JSON lines (sorted keys, ASCII, `\\n` endings) and return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=True) + "\n")
            n += 1
    return n
