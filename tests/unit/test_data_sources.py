"""Reading rows from local files, the hub and built-in datasets, with origins and clear errors."""

from __future__ import annotations

import json
import sys
import types

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tunelab.config import SourceConfig
from tunelab.data.sources import read_rows
from tunelab.errors import DataError

ROWS = [{"instruction": "add 1 and 2", "output": "3"}, {"instruction": "say hi", "output": "hi"}]


def test_jsonl_round_trip_with_line_origins(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n", encoding="utf-8")
    rows = read_rows(SourceConfig(path=str(path)))
    assert [r for r, _ in rows] == ROWS
    assert [o for _, o in rows] == [f"{path}:1", f"{path}:3"]  # blank line 2 skipped, 1-based


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:3: not valid JSON"):
        read_rows(SourceConfig(path=str(path)))


def test_jsonl_non_object_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: expected a JSON object per line, got a list"):
        read_rows(SourceConfig(path=str(path)))


def test_jsonl_collects_every_bad_line_when_asked(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("{bad\n" + json.dumps(ROWS[0]) + "\n\"text\"\n", encoding="utf-8")
    errors: list[str] = []
    rows = read_rows(SourceConfig(path=str(path)), errors=errors)
    assert [o for _, o in rows] == [f"{path}:2"]
    assert [e.split(": ")[0] for e in errors] == [f"{path}:1", f"{path}:3"]


@pytest.mark.parametrize("wrap", [lambda r: r, lambda r: {"data": r, "version": 1}, lambda r: {"rows": r}])
def test_json_list_or_wrapped_list(tmp_path, wrap):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(wrap(ROWS)), encoding="utf-8")
    rows = read_rows(SourceConfig(path=str(path)))
    assert rows == [(ROWS[0], f"{path}[0]"), (ROWS[1], f"{path}[1]")]


def test_json_ambiguous_or_bad(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"a": ROWS, "b": ROWS}), encoding="utf-8")
    with pytest.raises(DataError, match="several lists"):
        read_rows(SourceConfig(path=str(path)))
    path.write_text(json.dumps([ROWS[0], 5]), encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}\[1\]: expected an object"):
        read_rows(SourceConfig(path=str(path)))
    path.write_text('[{"a": 1},\n{"b": }]', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: not valid JSON"):
        read_rows(SourceConfig(path=str(path)))


def test_csv_round_trip_with_line_origins(tmp_path):
    path = tmp_path / "train.csv"
    # The first record spans lines 2-3 (a quoted newline); the second starts on line 4.
    path.write_text('instruction,output\n"line one\nline two",a\nsay hi,hi\n', encoding="utf-8")
    rows = read_rows(SourceConfig(path=str(path)))
    assert rows == [
        ({"instruction": "line one\nline two", "output": "a"}, f"{path}:2"),
        ({"instruction": "say hi", "output": "hi"}, f"{path}:4"),
    ]


def test_csv_row_with_extra_cells(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("instruction,output\na,b\nc,d,e\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:3: 3 cells but the header has 2 columns"):
        read_rows(SourceConfig(path=str(path)))


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    assert read_rows(SourceConfig(path=str(path))) == [(ROWS[0], f"{path}[0]"), (ROWS[1], f"{path}[1]")]


def test_parquet_corrupt(tmp_path):
    path = tmp_path / "train.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_rows(SourceConfig(path=str(path)))


def test_file_level_errors(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        read_rows(SourceConfig(path=str(tmp_path / "nope.jsonl")))
    with pytest.raises(DataError, match="not a file"):
        read_rows(SourceConfig(path=str(tmp_path)))
    odd = tmp_path / "train.jsnl"
    odd.write_text("{}\n")
    with pytest.raises(DataError, match=r"unknown data file type '.jsnl' \(did you mean '.jsonl'\?\)"):
        read_rows(SourceConfig(path=str(odd)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no rows"):
        read_rows(SourceConfig(path=str(empty)))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"a": "caf\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        read_rows(SourceConfig(path=str(latin)))


def test_max_examples(tmp_path, data_write_jsonl):
    path = data_write_jsonl("train.jsonl", ROWS * 5)
    assert len(read_rows(SourceConfig(path=str(path), max_examples=3))) == 3
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("a\n1\n2\n3\n")
    assert [r["a"] for r, _ in read_rows(SourceConfig(path=str(csv_path), max_examples=2))] == ["1", "2"]


def test_hub_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load(name, subset, split):
        calls.append((name, subset, split))
        return datasets.Dataset.from_list(ROWS * 3)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    rows = read_rows(SourceConfig(hub="org/math", subset="easy", split="validation", max_examples=4))
    assert calls == [("org/math", "easy", "validation")]
    assert [o for _, o in rows] == [f"org/math[{i}]" for i in range(4)]
    assert rows[1][0] == ROWS[1]


def test_hub_failure_is_one_data_error(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no internet")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"could not load hub dataset 'org/math' \(split 'train'\).*no internet"
                                        r".*Without network: .*datasets\.load_dataset\('org/math', split='train'\)"
                                        r"\.to_json\('data\.jsonl'\)` and give this source `path: data\.jsonl`"):
        read_rows(SourceConfig(hub="org/math"))

    def missing(*args, **kwargs):
        raise ValueError("Unknown split 'tset'")

    monkeypatch.setattr(datasets, "load_dataset", missing)
    with pytest.raises(DataError) as info:  # a wrong split is not a network problem: no offline recipe
        read_rows(SourceConfig(hub="org/math", split="tset"))
    assert "Unknown split 'tset'" in str(info.value) and "Without network" not in str(info.value)


def test_builtin_dataset(monkeypatch):
    fake = types.ModuleType("tunelab.data.builtin")
    catalogue = {"python-basics": {"train": ROWS * 2}}

    def load_builtin(name, split):
        return catalogue[name][split]

    fake.load_builtin = load_builtin
    fake.list_builtin = lambda: {k: {} for k in catalogue}
    monkeypatch.setitem(sys.modules, "tunelab.data.builtin", fake)
    rows = read_rows(SourceConfig(builtin="python-basics", max_examples=3))
    assert [o for _, o in rows] == [f"builtin:python-basics[{i}]" for i in range(3)]
    with pytest.raises(DataError, match="unknown built-in dataset 'python-basic' \\(did you mean 'python-basics'"):
        read_rows(SourceConfig(builtin="python-basic"))


def test_origins_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{bad\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"^data/train.jsonl:2: not valid JSON"):
        read_rows(SourceConfig(path=str(path)))
