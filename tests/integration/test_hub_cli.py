"""`tunelab eval` on benchmarks read through `datasets`: a hub-layout folder scored end to end, and
an uncached hub id offline, which fails with the way to get it instead of a traceback."""

from __future__ import annotations

import json

import pytest
from hub_fixtures import hf_caches, write_gsm8k  # tests/ is on sys.path (its conftest.py)

from tunelab.cli import main

_ = hf_caches  # a fixture


def cli(monkeypatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["tunelab", *args])
    try:
        main()
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_eval_scores_gsm8k_from_a_hub_layout_folder(tmp_path, monkeypatch, capsys, hf_caches):
    folder = write_gsm8k(tmp_path / "gsm8k")
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in [
        {"task_id": "gsm8k/test/0", "completion": "3 * 12 = 36 and 36 - 5 = 31.\n#### 31"},
        {"task_id": "gsm8k/test/1", "completion": "A book: 4 * 6 = 24. Two books: 2 * 24 = 48.\n#### 48"},
        {"task_id": "gsm8k/test/2", "completion": "He runs 1500 * 4 = 6000 meters and then he"}]))
    code = cli(monkeypatch, "eval", "--task", "math-word", "--samples", str(samples), "--output", str(tmp_path / "out"),
               "--set", f"eval.task_options.math-word.dataset={folder}")
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["data"]["test"]["source"] == "folder" and summary["data"]["test"]["config"] == "main"
    assert summary["failure_categories"] == {"correct": 1, "intermediate_answer": 1, "flexible_only": 1}
    rows = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [r["verdict"] for r in rows] == ["correct", "intermediate_answer", "flexible_only"]


def test_an_uncached_hub_dataset_offline_fails_with_the_recipe(tmp_path, monkeypatch, capsys, hf_caches):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "gsm8k/test/0", "completion": "#### 1"}) + "\n")
    code = cli(monkeypatch, "eval", "--task", "math-word", "--samples", str(samples),
               "--set", "eval.task_options.math-word.dataset=tunelab-tests/gsm8k")
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err
    assert "cannot load dataset 'tunelab-tests/gsm8k'" in err and "offline mode is on" in err
    assert "save_to_disk('gsm8k')" in err and "eval.task_options.math-word.path: gsm8k" in err


@pytest.mark.parametrize("option", ["datset", "subsett"])
def test_misspelt_dataset_options_are_named(tmp_path, monkeypatch, capsys, option):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "x", "completion": "#### 1"}) + "\n")
    code = cli(monkeypatch, "eval", "--task", "math-word", "--samples", str(samples),
               "--set", f"eval.task_options.math-word.{option}=openai/gsm8k")
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and f"has no option '{option}'" in err and "did you mean" in err
