"""The report's building blocks: sections are built once as blocks, then rendered twice
(HTML and Markdown) by `render.py`, so the two outputs never disagree.

Plus the number formatting every section shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cell:
    """A table cell: text, a CSS class (better / worse / sig / ns / muted / num), a tooltip."""

    text: str
    cls: str = ""
    title: str = ""


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""


@dataclass
class Para:
    text: str
    cls: str = ""  # "note" for explanations, "warn" for things that need attention


@dataclass
class Figure:
    """An inline SVG plot; `name` is its file name in report_files/ for the Markdown report."""

    name: str
    svg: str
    caption: str = ""


@dataclass
class Pre:
    """Preformatted text in runs of (kind, text); kind: "" plain, "mask" (carries loss),
    "same" / "new" / "gone" (diff against a reference output), "p0".."p4" (a token's probability
    bucket, lowest first). `titles`, if given, is a tooltip per segment (HTML only)."""

    segments: list[tuple[str, str]]
    label: str = ""
    titles: list[str] | None = None


@dataclass
class Columns:
    """Texts side by side: (header, Pre, badges) per column."""

    items: list[tuple[str, Pre, list[Cell]]]


@dataclass
class Heading:
    text: str


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Any] = field(default_factory=list)


def table(columns: list[str], rows: list[list[Any]], caption: str = "") -> Table:
    """A Table from plain values (Cells are kept, anything else becomes a Cell of its text)."""
    return Table(columns, [[c if isinstance(c, Cell) else Cell(fmt(c)) for c in row] for row in rows], caption)


def fmt(x: Any, digits: int = 4) -> str:
    """Numbers to `digits` significant digits, big integers with thousands separators."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}"
    return str(x)


def fmt_ci(value: Any, low: Any, high: Any) -> str:
    """`value [low, high]`, or the value alone when there is no interval."""
    if low is None or high is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def visible(text: str | None) -> str:
    """Empty or whitespace-only text as a readable note (an empty box says nothing)."""
    if not text:
        return "(empty output)"
    if not text.strip():
        return f"(whitespace only: {text.count(chr(10))} newlines, {len(text)} characters)"
    return text


def collapse_repeats(text: str, min_run: int = 4) -> str:
    """Runs of `min_run`+ identical non-blank lines (a model stuck in a loop) as one line and a count."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        j = i
        while j + 1 < len(lines) and lines[j + 1] == lines[i]:
            j += 1
        if j - i + 1 >= min_run and lines[i].strip():
            out += [lines[i], f"… [the same line {j - i} more times]"]
        else:
            out += lines[i : j + 1]
        i = j + 1
    return "\n".join(out)


def cut(text: str | None, limit: int, max_lines: int = 60) -> str:
    """`text` with repeated lines collapsed, up to `limit` characters and `max_lines` lines,
    marking every cut."""
    text = collapse_repeats(text or "")
    lines = text.split("\n")
    if len(lines) > max_lines:
        return "\n".join(lines[:max_lines]) + f"\n… [{len(lines) - max_lines} more lines]"
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"
