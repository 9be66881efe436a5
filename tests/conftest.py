"""Shared test fixtures. Fixtures of the data layer are named data_*."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TINY_TOKENIZER = Path(__file__).resolve().parents[1] / "src" / "tunelab" / "builtin" / "models" / "tiny-code"


@pytest.fixture
def data_tokenizer() -> Any:
    """A fresh copy of the built-in tiny-code tokenizer (ChatML template; tests may change it)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TINY_TOKENIZER))


@pytest.fixture
def data_write_jsonl(tmp_path: Path) -> Callable[[str, list[dict[str, Any]]], Path]:
    """Write rows as a JSONL file under tmp_path and return its path."""

    def write(name: str, rows: list[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return write
