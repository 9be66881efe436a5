"""Read raw rows from one data source: a local file, a Hugging Face hub dataset, or a built-in one.

Every row comes back with its origin so that any later error can point at it:
`"path:LINE"` (1-based) for JSONL and CSV, `"path[i]"` (0-based) for JSON and Parquet,
`"hub-id[i]"` for hub datasets and `"builtin:name[i]"` for built-in ones. Anything wrong with
the file itself (missing, unreadable, unknown extension, empty) is one `DataError`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tunelab.config import SourceConfig
from tunelab.errors import DataError, TunelabError, did_you_mean

Row = tuple[dict[str, Any], str]  # (raw row, origin)

READERS = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")


def describe(src: SourceConfig) -> str:
    """A short human name for where a source's rows come from (used in error messages)."""
    if src.path:
        return str(shown_path(Path(src.path)))
    if src.hub:
        return f"hub dataset '{src.hub}'" + (f" ({src.subset})" if src.subset else "")
    return f"builtin:{src.builtin}"


def read_rows(src: SourceConfig, errors: list[str] | None = None) -> list[Row]:
    """Read the raw rows of one source, at most `src.max_examples` of them.

    Args:
        src: the source config; exactly one of `path`, `hub`, `builtin` is set.
        errors: if given, malformed rows (bad JSON line, non-object row) are appended here as
            messages and skipped, so a validator can list them all. If None, the first one raises.

    Returns:
        A list of (row dict, origin) pairs.

    Raises:
        DataError: the file is missing, unreadable, of an unknown type, or holds no rows; or a row
            is malformed and `errors` is None.
    """
    limit = src.max_examples
    if src.path:
        rows = _read_file(shown_path(Path(src.path)), limit, errors)
    elif src.hub:
        rows = _read_hub(src, limit)
    else:
        rows = _read_builtin(src, limit)
    if not rows:
        raise DataError(f"{describe(src)}: no rows to read (the data is empty)")
    return rows[:limit] if limit else rows


# --------------------------------------------------------------------------------------------
# Local files
# --------------------------------------------------------------------------------------------


def shown_path(path: Path) -> Path:
    """`path` relative to the working directory when it lies below it, so origins read
    "data/train.jsonl:17" (config loading makes data paths absolute)."""
    try:
        return path.relative_to(Path.cwd()) if path.is_absolute() else path
    except ValueError:
        return path


def _read_file(path: Path, limit: int | None, errors: list[str] | None) -> list[Row]:
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"data path is not a file: {path}")
    ext = path.suffix.lower()
    if ext not in READERS:
        raise DataError(
            f"{path}: unknown data file type '{ext or '(none)'}'{did_you_mean(ext, READERS)}; "
            f"supported: {', '.join(READERS)}"
        )
    try:
        if ext in (".jsonl", ".ndjson"):
            return _read_jsonl(path, limit, errors)
        if ext == ".json":
            return _read_json(path, errors)
        if ext == ".csv":
            return _read_csv(path, limit, errors)
        return _read_parquet(path)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from None


def _bad_row(msg: str, errors: list[str] | None) -> None:
    """Raise a malformed-row error, or record it when the caller collects errors."""
    if errors is None:
        raise DataError(msg)
    errors.append(msg)


def _read_jsonl(path: Path, limit: int | None, errors: list[str] | None) -> list[Row]:
    rows: list[Row] = []
    # utf-8-sig: tolerate a byte-order mark written by some Windows editors.
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines (often a trailing one) are not rows
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                _bad_row(f"{where}: not valid JSON ({e.msg} at column {e.colno})", errors)
                continue
            if not isinstance(obj, dict):
                _bad_row(f"{where}: expected a JSON object per line, got {_kind(obj)}", errors)
                continue
            rows.append((obj, where))
            if limit and len(rows) >= limit:
                break  # no need to parse a large file past max_examples
    return rows


def _read_json(path: Path, errors: list[str] | None) -> list[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
    if isinstance(data, dict):
        data = _unwrap_list(path, data)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of objects at the top level, got {_kind(data)}")
    rows: list[Row] = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            _bad_row(f"{path}[{i}]: expected an object, got {_kind(obj)}", errors)
            continue
        rows.append((obj, f"{path}[{i}]"))
    return rows


def _unwrap_list(path: Path, data: dict[str, Any]) -> list[Any]:
    """Find the list of rows inside a top-level object such as {"data": [...]} or {"train": [...]}."""
    lists = [k for k, v in data.items() if isinstance(v, list)]
    if "data" in lists:
        return data["data"]
    if len(lists) == 1:
        return data[lists[0]]
    if not lists:
        raise DataError(
            f"{path}: the top-level object holds no list of rows (keys: {', '.join(data) or 'none'}); "
            f"expected a list of objects or {{\"data\": [...]}}"
        )
    raise DataError(
        f"{path}: the top-level object holds several lists ({', '.join(lists)}); "
        f"keep one, or put the rows under \"data\""
    )


def _read_csv(path: Path, limit: int | None, errors: list[str] | None) -> list[Row]:
    rows: list[Row] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            return []
        start = 2  # line 1 is the header
        try:
            for record in reader:
                where = f"{path}:{start}"
                # A quoted cell may span lines: the next record starts after the last line read.
                start = reader.line_num + 1
                if None in record:  # DictReader files surplus cells under the key None
                    _bad_row(
                        f"{where}: {len(reader.fieldnames) + len(record[None])} cells but the header "
                        f"has {len(reader.fieldnames)} columns",
                        errors,
                    )
                    continue
                rows.append((dict(record), where))
                if limit and len(rows) >= limit:
                    break
        except csv.Error as e:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    return rows


def _read_parquet(path: Path) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except pa.ArrowException as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    return [(row, f"{path}[{i}]") for i, row in enumerate(table.to_pylist())]


def _kind(obj: Any) -> str:
    return {list: "a list", str: "a string", dict: "an object", type(None): "null"}.get(
        type(obj), type(obj).__name__
    )


# --------------------------------------------------------------------------------------------
# Hub and built-in datasets
# --------------------------------------------------------------------------------------------


def _read_hub(src: SourceConfig, limit: int | None) -> list[Row]:
    assert src.hub is not None
    try:
        import datasets

        ds = datasets.load_dataset(src.hub, src.subset, split=src.split)
        if limit and limit < len(ds):
            ds = ds.select(range(limit))
        rows = [dict(r) for r in ds]
    except Exception as e:  # network, auth, missing split, bad id: all the user's to fix
        subset = f", subset '{src.subset}'" if src.subset else ""
        args = ", ".join(repr(a) for a in (src.hub, src.subset) if a)
        offline = "" if not _unreachable(e) else (
            f". Without network: on a machine with it, run `datasets.load_dataset({args}, split={src.split!r})"
            f".to_json('data.jsonl')` and give this source `path: data.jsonl` instead of `hub`, or copy "
            "that machine's Hugging Face cache here and set HF_HUB_OFFLINE=1")
        raise DataError(
            f"could not load hub dataset '{src.hub}' (split '{src.split}'{subset}): "
            f"{type(e).__name__}: {e}{offline}"
        ) from None
    return [(row, f"{src.hub}[{i}]") for i, row in enumerate(rows)]


def _unreachable(e: Exception) -> bool:
    """Whether loading failed because the hub could not be reached (offline mode, no network)."""
    text = f"{type(e).__name__} {e}".lower()
    return any(k in text for k in ("connection", "offline", "couldn't reach", "resolve", "timed out", "network"))


def _read_builtin(src: SourceConfig, limit: int | None) -> list[Row]:
    assert src.builtin is not None
    try:
        # Imported here: the built-in registry is a separate module and may load data lazily.
        from tunelab.data.builtin import list_builtin, load_builtin
    except ImportError as e:
        raise DataError(f"built-in datasets are not available in this install ({e})") from None
    try:
        rows = load_builtin(src.builtin, src.split)
    except TunelabError:
        raise
    except (KeyError, ValueError):
        names = list(list_builtin())
        raise DataError(
            f"unknown built-in dataset '{src.builtin}'{did_you_mean(src.builtin, names)}; "
            f"available: {', '.join(names) or 'none'}"
        ) from None
    if limit:
        rows = rows[:limit]
    return [(dict(row), f"builtin:{src.builtin}[{i}]") for i, row in enumerate(rows)]
