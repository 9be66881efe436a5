"""Benchmark data laid out as on the hub, written by the tests (problems written for tunelab's
tests, in each benchmark's columns), so the hub code path runs without network.

- `write_gsm8k(dir)`: openai/gsm8k's layout: README.md with `configs:`, `main/test-00000-of-00001.parquet`, ...
- `write_mbpp(dir)`: google-research-datasets/mbpp's (`full/`, `sanitized/`); `write_mbppplus(dir)`: evalplus/mbppplus's.
- `write_humanevalplus(dir)`: evalplus/humanevalplus's (`data/test-*.parquet`, no README configs).
- `write_lcb(dir)`: livecodebench/code_generation_lite's data files (test.jsonl, test2.jsonl).
- `hub_cache_snapshot(cache, repo, files)`: a repository snapshot in a hub cache, as a download leaves it.
- `hf_caches`: a fixture giving `datasets` and the hub private caches under tmp_path.
"""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"

GSM8K_TEST = [
    {"question": "Ana buys 3 bags of 12 apples and eats 5. How many apples are left?",
     "answer": "Ana buys 3*12 = <<3*12=36>>36 apples.\nShe has 36-5 = <<36-5=31>>31 left.\n#### 31"},
    {"question": "A pen costs $4 and a book costs 6 times as much. What do 2 books and a pen cost?",
     "answer": "A book costs 4*6 = <<4*6=24>>24 dollars.\nTwo books cost 2*24 = <<2*24=48>>48.\n"
               "With the pen: 48+4 = <<48+4=52>>52.\n#### 52"},
    {"question": "Tom runs 1,500 meters a day for 4 days. How many meters is that?",
     "answer": "He runs 1500*4 = <<1500*4=6000>>6,000 meters.\n#### 6,000"},
]
GSM8K_TRAIN = [
    {"question": "Lia has 7 stamps and gets 8 more. How many stamps does she have?",
     "answer": "7+8 = <<7+8=15>>15\n#### 15"},
]

GSM8K_README = """---
configs:
- config_name: main
  data_files:
  - split: train
    path: main/train-*
  - split: test
    path: main/test-*
- config_name: socratic
  data_files:
  - split: train
    path: socratic/train-*
  - split: test
    path: socratic/test-*
---
# GSM8K-format problems written for tunelab's tests
"""


def _parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def write_gsm8k(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text(GSM8K_README)
    for config in ("main", "socratic"):
        _parquet(root / config / "test-00000-of-00001.parquet", GSM8K_TEST)
        _parquet(root / config / "train-00000-of-00001.parquet", GSM8K_TRAIN)
    return root


# Three MBPP-format problems: description, reference code, asserts.
MBPP_ROWS = [
    {"task_id": 901, "text": "Write a function to return the sum of the squares of a list of numbers.",
     "code": "def sum_squares(xs):\n    return sum(x * x for x in xs)",
     "test_list": ["assert sum_squares([1, 2, 3]) == 14", "assert sum_squares([]) == 0",
                   "assert sum_squares([-2]) == 4"],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 902, "text": "Write a python function to count the vowels in a string.",
     "code": "def count_vowels(s):\n    return sum(ch in 'aeiouAEIOU' for ch in s)",
     "test_list": ["assert count_vowels('banana') == 3", "assert count_vowels('xyz') == 0",
                   "assert count_vowels('AEi') == 3"],
     "test_setup_code": "", "challenge_test_list": ["assert count_vowels('') == 0"]},
    {"task_id": 903, "text": "Write a function to find the elements shared by two tuples.",
     "code": "def shared(a, b):\n    return tuple(sorted(set(a) & set(b)))",
     "test_list": ["assert set(shared((3, 4, 5), (5, 4, 9))) == set((4, 5))", "assert shared((1,), (2,)) == ()",
                   "assert shared((1, 1, 2), (1,)) == (1,)"],
     "test_setup_code": "import math", "challenge_test_list": []},
]

MBPP_README = """---
configs:
- config_name: full
  data_files:
  - split: test
    path: full/test-*
  - split: prompt
    path: full/prompt-*
  default: true
- config_name: sanitized
  data_files:
  - split: test
    path: sanitized/test-*
---
# MBPP-format problems written for tunelab's tests
"""


def write_mbpp(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text(MBPP_README)
    _parquet(root / "full" / "test-00000-of-00001.parquet", MBPP_ROWS)
    _parquet(root / "full" / "prompt-00000-of-00001.parquet", MBPP_ROWS[:1])
    sanitized = [{"source_file": "tests", "task_id": r["task_id"], "prompt": r["text"], "code": r["code"],
                  "test_imports": [r["test_setup_code"]] if r["test_setup_code"] else [], "test_list": r["test_list"]}
                 for r in MBPP_ROWS]
    _parquet(root / "sanitized" / "test-00000-of-00001.parquet", sanitized)
    return root


PLUS_TEST = """
def assertion(out, exp, atol):
    assert out == exp, f"{out!r} != {exp!r}"

inputs = [[[1, 2, 3]], [[]], [[10, -10]], [[0.5]]]
results = [14, 0, 200, 0.25]
for i, (inp, exp) in enumerate(zip(inputs, results)):
    assertion(sum_squares(*inp), exp, 0)
"""


def write_mbppplus(root: Path) -> Path:
    row = {"task_id": 901, "code": MBPP_ROWS[0]["code"], "prompt": MBPP_ROWS[0]["text"], "source_file": "tests",
           "test_imports": [], "test_list": MBPP_ROWS[0]["test_list"], "test": PLUS_TEST}
    _parquet(root / "data" / "test-00000-of-00001.parquet", [row])
    return root


HUMANEVAL_ROWS = [
    {"task_id": "HumanEvalPlus/0", "prompt": 'def double(x: int) -> int:\n    """Twice x."""\n',
     "canonical_solution": "    return 2 * x\n", "entry_point": "double",
     "test": "\n\ndef check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n"},
    {"task_id": "HumanEvalPlus/1", "prompt": 'def last(xs: list) -> object:\n    """The last item, or None."""\n',
     "canonical_solution": "    return xs[-1] if xs else None\n", "entry_point": "last",
     "test": "\n\ndef check(candidate):\n    assert candidate([1, 2]) == 2\n    assert candidate([]) is None\n"},
]


def write_humanevalplus(root: Path) -> Path:
    _parquet(root / "data" / "test-00000-of-00001.parquet", HUMANEVAL_ROWS)
    return root


def lcb_row(qid: str, platform: str, date: str, difficulty: str, a: int = 2, b: int = 3) -> dict[str, Any]:
    """A problem as LiveCodeBench ships it: private tests pickled, zlib'd, base64'd."""
    private = [{"input": f"{a} {b}\n", "output": f"{a + b}\n", "testtype": "stdin"}]
    return {"question_id": qid, "question_title": "Sum", "question_content": "Print a + b.", "platform": platform,
            "contest_id": qid.split("_")[0], "contest_date": date, "difficulty": difficulty, "starter_code": "",
            "metadata": "{}",
            "public_test_cases": json.dumps([{"input": "1 1\n", "output": "2\n", "testtype": "stdin"}]),
            "private_test_cases": base64.b64encode(zlib.compress(pickle.dumps(json.dumps(private)))).decode()}


LCB_FILES = {
    "test.jsonl": [lcb_row("abc300_a", "atcoder", "2023-05-06T00:00:00", "easy"),
                   lcb_row("1800_b", "codeforces", "2023-05-20T00:00:00", "hard")],
    "test2.jsonl": [lcb_row("abc350_a", "atcoder", "2024-04-20T00:00:00", "easy", 5, 7),
                    lcb_row("abc351_c", "atcoder", "2024-04-27T00:00:00", "medium")],
}


def write_lcb(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "code_generation_lite.py").write_text("# the loading script datasets no longer runs\n")
    for name, rows in LCB_FILES.items():
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def hub_cache_snapshot(cache: Path, repo: str, source: Path, files: list[str], commit: str = COMMIT) -> Path:
    """`repo`'s files in a hub cache (`HF_HUB_CACHE`) as `hf_hub_download` leaves them: blobs,
    a snapshot folder named by the commit, and refs/main pointing at it."""
    folder = cache / f"datasets--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for name in files:
        (snap / name).write_bytes((source / name).read_bytes())
    return snap


@pytest.fixture
def hf_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private `datasets` and hub caches under tmp_path (nothing lands in ~/.cache); returns the hub cache."""
    import datasets.config
    from huggingface_hub import constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    return tmp_path / "hub-cache"
