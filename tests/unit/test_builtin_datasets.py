"""Contract tests over every shipped built-in dataset.

Programs from the datasets (canonical solutions, stdin references, repair mutants) are run in
child processes by `tunelab_build.datasets.runner`, never in the test process.
"""

from __future__ import annotations

import ast
import json
import keyword
import platform
import importlib
import re
import sys
from pathlib import Path

import pytest

from tunelab.data import builtin
from tunelab.data.builtin import decode_private_tests, list_builtin, load_builtin, load_problems
from tunelab.errors import DataError
from tunelab_build.datasets import basic_python, compose, math_word, repair, stdlib_instruct
from tunelab_build.datasets.runner import run_jobs
from tunelab_build.datasets.schema import FAMILIES, PROBLEMS_DIR, ProblemFileError, load_all, load_family

NAMES = ["stdlib-instruct", "basic-python", "basic-python-stdio", "math-word", "compose", "compose-deep",
         "compose-diverse", "ts-instruct", "repair", "repair-hint"]


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    return load_problems("basic-python")


@pytest.fixture(scope="module")
def mutants() -> list[dict]:
    return load_problems("repair")


# ---- registry and errors ---------------------------------------------------------------------


def test_registry_lists_every_dataset_with_a_card():
    catalogue = list_builtin()
    assert list(catalogue) == NAMES
    for name, info in catalogue.items():
        assert info["description"] and info["splits"] and info["formats"][0] == "alpaca"
        card = Path(info["card"]).read_text(encoding="utf-8")
        for heading in ("Origin", "Size", "Fields", "Splits", "License", "Regenerate"):
            assert f"**{heading}**" in card, (name, heading)
        assert "python -m tunelab_build.datasets." in card


@pytest.mark.parametrize("name", NAMES)
def test_rows_are_alpaca_with_unique_ids(name):
    ids = []
    for split in list_builtin()[name]["splits"]:
        rows = load_builtin(name, split)
        assert rows, (name, split)
        for row in rows:
            assert isinstance(row["instruction"], str) and row["instruction"].strip()
            assert isinstance(row["output"], str) and row["output"].strip()
            assert row["input"] == ""
        ids += [row["id"] for row in rows]
    assert len(ids) == len(set(ids))
    assert len(load_problems(name)) == len(ids)  # split=None is every split


def test_unknown_name_suggests_the_closest():
    with pytest.raises(DataError, match=r"unknown built-in dataset 'basic-pyton' \(did you mean 'basic-python'\?\); "
                                        r"available: stdlib-instruct, basic-python"):
        load_builtin("basic-pyton")
    with pytest.raises(DataError, match="unknown built-in dataset 'mbpp'"):
        load_problems("mbpp")


def test_unknown_split_lists_the_splits():
    with pytest.raises(DataError, match=r"'math-word' has no split 'tset' \(did you mean 'test'\?\); "
                                        r"its splits are: train, test"):
        load_builtin("math-word", "tset")
    with pytest.raises(DataError, match="its splits are: train, val, test"):
        load_problems("stdlib-instruct", "validation")


def test_rows_feed_the_data_layer():
    from tunelab.config import SourceConfig
    from tunelab.data.formats import to_chat
    from tunelab.data.sources import read_rows

    for name in NAMES:
        src = SourceConfig(builtin=name, split=list_builtin()[name]["splits"][-1], max_examples=3)
        for row, origin in read_rows(src):
            ex = to_chat(row, origin, src)
            assert [m["role"] for m in ex.messages] == ["user", "assistant"] and ex.id


# ---- basic-python ----------------------------------------------------------------------------


def test_basic_python_shape_and_split(problems):
    assert len(problems) >= 100
    assert [p["task_id"] for p in problems] == [f"basic/{i}" for i in range(len(problems))]
    for p in problems:
        assert p["prompt"].rstrip().endswith('"""') and ">>>" in p["prompt"]
        assert p["test"].lstrip().startswith("def check(candidate):") and p["test"].count("assert") >= 4
        assert p["split"] == basic_python.split_of(p["task_id"])
        ast.parse(p["prompt"] + p["canonical_solution"] + p["test"])
    train = {p["task_id"] for p in load_problems("basic-python", "train")}
    test = {p["task_id"] for p in load_problems("basic-python", "test")}
    assert train and test and not train & test and len(train | test) == len(problems)


def test_add_three_exists(problems):
    (p,) = [p for p in problems if p["entry_point"] == "add_three"]
    assert p["description"] == "Write a function which adds 3 numbers and returns the result."
    (row,) = [r for r in load_builtin("basic-python", p["split"]) if r["task_id"] == p["task_id"]]
    assert row["instruction"].startswith(p["description"]) and "def add_three(" in row["output"]


def test_basic_python_regenerates_identically(problems):
    assert basic_python.build_problems() == problems


def test_canonical_solutions_pass_their_tests_and_examples(problems):
    jobs = [{"id": p["task_id"], "program": p["prompt"] + p["canonical_solution"], "test": p["test"],
             "entry_point": p["entry_point"], "doctest": True} for p in problems]
    results = run_jobs(jobs)
    assert {k: v["error"] for k, v in results.items() if not v["ok"]} == {}
    assert len(results) == len(problems)


def test_stdio_rows_follow_livecodebench(problems):
    rows = load_problems("basic-python-stdio")
    assert len(rows) >= 30
    by_id = {p["task_id"]: p for p in problems}
    for row in rows:
        assert row["platform"] == "tunelab" and row["starter_code"] == ""
        assert row["difficulty"] in ("easy", "medium", "hard")
        assert json.loads(row["metadata"]) == {"func_name": None}
        assert "Input" in row["question_content"] and "Output" in row["question_content"]
        public = json.loads(row["public_test_cases"])
        private = decode_private_tests(row["private_test_cases_compressed"])
        assert private == json.loads(row["private_test_cases"]) and len(private) >= 5
        assert all(set(c) == {"input", "output", "testtype"} and c["testtype"] == "stdin" for c in public + private)
        assert row["split"] == by_id[row["task_id"]]["split"]
    assert {r["difficulty"] for r in rows} == {"easy", "medium", "hard"}


def test_stdio_references_print_the_expected_outputs():
    rows = load_problems("basic-python-stdio")
    jobs = basic_python.stdio_jobs(rows)
    results = run_jobs(jobs)
    assert {k: v["error"] for k, v in results.items() if not v["ok"]} == {}
    assert len(results) == len(jobs) >= 30 * 7


# ---- repair ----------------------------------------------------------------------------------


def _changed(a: str, b: str) -> str:
    """The part of b that differs from a: common prefix and suffix removed, widened to whole
    identifiers (so `count` vs `ch` gives `count`, not `ount`)."""
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    j = 0
    while j < min(len(a), len(b)) - i and a[-1 - j] == b[-1 - j]:
        j += 1
    start, end = i, len(b) - j
    if start >= end:
        return ""  # the fix only deletes code
    while start > 0 and (b[start - 1].isalnum() or b[start - 1] == "_"):
        start -= 1
    while end < len(b) and (b[end].isalnum() or b[end] == "_"):
        end += 1
    return b[start:end]


def test_repair_mutants_are_well_formed(problems, mutants):
    by_id = {p["task_id"]: p for p in problems}
    assert {m["task_id"] for m in mutants} == set(by_id)  # every problem has a bug
    assert {m["mutation"] for m in mutants} == set(repair.KINDS)
    for m in mutants:
        p = by_id[m["task_id"]]
        assert m["fixed_code"] == p["prompt"] + p["canonical_solution"]
        assert m["test"] == p["test"] and m["entry_point"] == p["entry_point"] and m["split"] == p["split"]
        assert ast.dump(ast.parse(m["buggy_code"])) != ast.dump(ast.parse(m["fixed_code"]))
        # The hint names where to look, never the code of the fix.
        fix = _changed(m["buggy_code"], m["fixed_code"]).strip()
        code_like = len(fix) >= 2 and not keyword.iskeyword(fix)  # "in" is also an English word
        words = re.sub(r"line \d+", "line", m["hint"])  # a line number is not a leaked constant
        leak = re.search(rf"(?<!\w){re.escape(fix)}(?!\w)", words) if code_like else None
        assert leak is None, (m["mutant_id"], fix, m["hint"])
        fixed_line = m["fixed_code"].splitlines()[m["line"] - 1].strip()
        assert fixed_line not in m["hint"]
        assert f"`{m['entry_point']}`" in m["hint"]
    verification = json.loads((builtin.datasets_dir() / "repair" / "verification.json").read_text())
    assert verification["shipped"] == len(mutants) and verification["problems_without_mutant"] == []


def test_repair_mutants_fail_at_least_one_test(mutants):
    jobs = [{"id": m["mutant_id"], "program": m["buggy_code"], "test": m["test"],
             "entry_point": m["entry_point"]} for m in mutants]
    results = run_jobs(jobs, timeout=repair.MUTANT_TIMEOUT_S)
    assert [k for k, v in results.items() if v["ok"]] == []
    assert len(results) == len(mutants)


def test_repair_split_is_by_problem(mutants):
    train = {m["task_id"] for m in load_problems("repair", "train")}
    test = {m["task_id"] for m in load_problems("repair", "test")}
    assert train and test and not train & test
    assert train == {p["task_id"] for p in load_problems("basic-python", "train")}


def test_repair_mutants_regenerate_from_the_problems(problems, mutants):
    by_id = {p["task_id"]: p for p in problems}
    for task_id in sorted({m["task_id"] for m in mutants})[::10]:
        possible = {c["buggy_code"]: c for c in repair.candidates(by_id[task_id])}
        for m in (m for m in mutants if m["task_id"] == task_id):
            assert possible[m["buggy_code"]]["hint"] == m["hint"]


def test_repair_rows_ask_for_the_fix_or_the_hint():
    fix, hint = load_builtin("repair", "test")[0], load_builtin("repair-hint", "test")[0]
    assert fix["instruction"].startswith("Fix the bug in this function:") and fix["buggy_code"] in fix["instruction"]
    assert fix["output"] == fix["fixed_code"] and hint["output"] == hint["hint"]


# ---- math-word -------------------------------------------------------------------------------

ANNOTATION = re.compile(r"([0-9+\-*/(). ]+) = <<([^=<>]+)=([^<>]+)>>(\S+)")


def test_math_answers_are_correct():
    for split, size in (("train", 2000), ("test", 300)):
        rows = load_problems("math-word", split)
        assert len(rows) == size
        for row in rows:
            lines = row["answer"].split("\n")
            assert lines[-1] == f"#### {row['final']}" and row["final"] >= 0
            values = []
            for shown, expr, value, written in ANNOTATION.findall(row["answer"]):
                assert shown.strip() == expr and value == written.rstrip(".,") and value.isdigit()
                assert re.fullmatch(r"[0-9+\-*/() ]+", expr)
                assert eval(expr) == int(value), (row["question"], expr)  # digits and operators only
                values.append(int(value))
            assert values and values[-1] == row["final"]
            assert row["answer"].count("<<") == len(values)
            assert math_word.SOLVERS[row["template"]](row["params"]) == row["final"]


def test_math_splits_are_disjoint_and_regenerate():
    train = load_problems("math-word", "train")
    test = load_problems("math-word", "test")
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    assert len({r["question"] for r in train}) == len(train)
    assert {r["template"] for r in test} == set(math_word.TEMPLATES)
    fresh = math_word.build()
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("split", "index")} for r in rows]  # noqa: E731
    assert fresh["train"] == strip(train) and fresh["test"] == strip(test)


# ---- stdlib-instruct -------------------------------------------------------------------------


def test_compose_references_pass_their_tests_and_examples():
    problems = load_problems("compose")
    jobs = [{"id": p["task_id"], "program": p["prompt"] + p["canonical_solution"], "test": p["test"],
             "entry_point": p["entry_point"], "doctest": True} for p in problems]
    results = run_jobs(jobs)
    assert len(results) == len(problems) == 2220
    assert not [i for i, r in results.items() if not r["ok"]]


def test_compose_generator_refuses_a_reference_that_fails_its_tests(tmp_path, monkeypatch):
    problem = dict(load_problems("compose", "test")[0])
    compose.verify([problem])  # the shipped reference passes
    broken = {**problem, "canonical_solution": "    return None\n"}
    with pytest.raises(RuntimeError, match="1 reference solution"):
        compose.verify([broken])
    real_build = compose.build

    def build_with_one_broken():
        splits, meta = real_build()
        splits["test"][0] = {**splits["test"][0], "canonical_solution": "    return None\n"}
        return splits, meta

    monkeypatch.setattr(compose, "build", build_with_one_broken)
    monkeypatch.setattr(sys, "argv", ["compose", "--out", str(tmp_path)])
    with pytest.raises(RuntimeError):
        compose.main()
    assert not list(tmp_path.iterdir())  # nothing written


def test_compose_test_differs_from_training_in_pairs_and_names():
    meta = json.loads((builtin.datasets_dir() / "compose" / "meta.json").read_text(encoding="utf-8"))
    held = {tuple(p.split("+")) for p in meta["held_out_pairs"]}

    def pairs(p):
        _, parts = p["composition"].split("/")
        return {tuple(sorted(pr)) for i, a in enumerate(parts.split("+")) for pr in [(a, b) for b in parts.split("+")[i + 1:]]}

    split = {s: load_problems("compose", s) for s in ("train", "val", "test")}
    assert all(not pairs(p) & held for p in split["train"] + split["val"])
    assert all(pairs(p) & held for p in split["test"])
    names = {s: {p["entry_point"] for p in rows} for s, rows in split.items()}
    assert not names["test"] & (names["train"] | names["val"])
    descriptions = [p["description"] for rows in split.values() for p in rows]
    assert len(set(descriptions)) == len(descriptions)
    row = load_builtin("compose", "train")[0]
    assert row["output"].startswith(f"def {row['entry_point']}(") and row["instruction"] == row["description"]


def test_stdlib_instruct_splits_by_package():
    packages = {}
    for split in ("train", "val", "test"):
        rows = load_problems("stdlib-instruct", split)
        packages[split] = {r["module"].split(".")[0] for r in rows}
        for r in rows:
            assert r["instruction"].startswith("Write a Python ") and r["instruction"].endswith(".")
            assert r["output"].isascii() and not r["name"].split(".")[-1].startswith("_")
            assert not {"test", "tests", "idlelib"} & set(r["module"].split("."))
            fn = ast.parse(r["output"]).body[0]
            assert isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == r["name"].split(".")[-1]
            assert ast.get_docstring(fn) is None
        assert all(stdlib_instruct.split_of(p) == split for p in packages[split])
    assert not packages["train"] & packages["val"] and not packages["train"] & packages["test"]
    assert not packages["val"] & packages["test"]
    size = sum((builtin.datasets_dir() / "stdlib-instruct" / f"{s}.jsonl").stat().st_size for s in packages)
    assert size < 4_000_000


def test_stdlib_instruct_card_names_the_python_version():
    card = (builtin.datasets_dir() / "stdlib-instruct" / "CARD.md").read_text()
    assert re.search(r"Python 3\.\d+", card)


@pytest.mark.slow  # mines the whole standard library (~10 s); basic-python and math-word regenerate in the default tier
def test_stdlib_instruct_regenerates_identically():
    card = (builtin.datasets_dir() / "stdlib-instruct" / "CARD.md").read_text()
    mined_from = re.search(r"CPython (\d+\.\d+\.\d+)", card).group(1)
    if platform.python_version() != mined_from:
        pytest.skip(f"mined from Python {mined_from}; another stdlib gives other rows")
    fresh = stdlib_instruct.build()
    for split, rows in fresh.items():
        shipped = [{k: v for k, v in r.items() if k not in ("split", "index")}
                   for r in load_problems("stdlib-instruct", split)]
        assert rows == shipped, split


def test_stdlib_instruct_test_split_was_held_out_of_pretraining():
    meta_path = builtin.datasets_dir().parent / "models" / "tiny-code" / "pretrain_meta.json"
    if not meta_path.exists():
        pytest.skip("the built-in model's pretraining metadata is not shipped yet")
    held_out = set(json.loads(meta_path.read_text())["held_out_modules"])
    for split in ("train", "val", "test"):
        packages = {r["module"].split(".")[0] for r in load_problems("stdlib-instruct", split)}
        assert (packages <= held_out) if split == "test" else not (packages & held_out), split


# ---- building: the authored problem files and the regenerate commands ------------------------

GOOD_RECORD = '''\
- entry_point: double
  topic: math
  description: Write a function that doubles a number.
  code: |
    def double(x: int) -> int:
        """Return twice x."""
        return 2 * x
  tests:
  - assert candidate(1) == 2
  - assert candidate(0) == 0
  - assert candidate(-3) == -6
  - assert candidate(10) == 20
'''


def test_problem_files_are_the_families_in_task_order(problems):
    assert sorted(p.stem for p in PROBLEMS_DIR.iterdir()) == sorted(FAMILIES)  # no file left unread
    assert [p.entry_point for p in load_all()] == [p["entry_point"] for p in problems]


def test_a_good_record_loads(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD_RECORD)
    (p,) = load_family(path)
    assert p.code.endswith("return 2 * x\n") and len(p.tests) == 4


@pytest.mark.parametrize("old, new, message", [
    ("  topic: math\n", "  topic: math\n  hint: multiply\n", r"field 'hint': unknown field"),
    ("  description: Write a function that doubles a number.\n", "", r"field 'description': Field required"),
    ("  tests:\n", "  test:\n", r"field 'tests': Field required; field 'test': unknown field"),
    ('        """Return twice x."""\n', "", r"field 'code': .*'double' has no docstring"),
    ("entry_point: double", "entry_point: twice", r"field 'code': .*defines no top-level function 'twice'"),
    ("  - assert candidate(10) == 20\n", "", r"field 'tests': .*at least four asserts"),
    ("  - assert candidate(10) == 20\n", "  - assert candidate(10 == 20\n", r"field 'tests': .*line 4 does not parse"),
])
def test_schema_rejects_a_malformed_record_naming_file_problem_and_field(tmp_path, old, new, message):
    path = tmp_path / "lists.yaml"
    assert old in GOOD_RECORD
    path.write_text(GOOD_RECORD.replace(old, new))
    with pytest.raises(ProblemFileError, match=re.escape(f"{path}: problem 1 (") + r"\w+\): " + message):
        load_family(path)


def test_problem_files_reject_bad_yaml_and_duplicate_entry_points(tmp_path):
    (tmp_path / "bad.yaml").write_text("- entry_point: [unclosed\n")
    with pytest.raises(ProblemFileError, match=re.escape(str(tmp_path / "bad.yaml")) + ": cannot read problems"):
        load_family(tmp_path / "bad.yaml")
    for family in FAMILIES:
        (tmp_path / f"{family}.yaml").write_text(GOOD_RECORD)
    with pytest.raises(ProblemFileError, match=r"duplicate entry points: \['double'\]"):
        load_all(tmp_path)


BUILDERS = [
    pytest.param("basic_python", "basic-python", ["problems.jsonl", "stdio.jsonl"], id="basic-python"),
    pytest.param("math_word", "math-word", ["test.jsonl", "train.jsonl"], id="math-word"),
    pytest.param("compose", "compose", ["meta.json", "test.jsonl", "train.jsonl", "val.jsonl"], id="compose"),
    pytest.param("ts_instruct", "ts-instruct", ["test.jsonl", "train.jsonl", "val.jsonl"], id="ts-instruct"),
    pytest.param("compose_variants", "compose-variants", ["deep.jsonl", "diverse.jsonl", "meta.json"],
                 id="compose-variants"),
    pytest.param("repair", "repair", ["mutants.jsonl", "verification.json"], id="repair",
                 marks=pytest.mark.slow),  # runs ~5,000 mutants
]


@pytest.mark.parametrize("module, directory, files", BUILDERS)
def test_regenerate_command_writes_the_shipped_files_byte_for_byte(tmp_path, monkeypatch, capsys,
                                                                   module, directory, files):
    # What `python -m tunelab_build.datasets.<module> --out DIR` runs.
    monkeypatch.setattr(sys, "argv", [module, "--out", str(tmp_path)])
    importlib.import_module(f"tunelab_build.datasets.{module}").main()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    for name in files:
        assert (tmp_path / name).read_bytes() == (builtin.datasets_dir() / directory / name).read_bytes(), name
