"""The studies' offline stand-ins: ts-instruct (code language shift) and compose-deep /
compose-diverse (deep vs diverse). Their regenerate commands are checked byte for byte in
test_builtin_datasets.py; solutions run in child processes (`runner.run_jobs`), never here."""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import Counter

import pytest

from tunelab.compare.token_classes import class_shares
from tunelab.data.builtin import datasets_dir, load_builtin, load_problems
from tunelab_build.datasets import compose_variants, ts_instruct
from tunelab_build.datasets.runner import run_jobs

SIGNATURE = re.compile(r"^(?:function (?P<f>\w+)\((?P<a>\w+): (?:number\[\]|string)\): (?:number\[\]|number|string|boolean) \{\n"
                       r"|const (?P<c>\w+) = \((?P<b>\w+): (?:number\[\]|string)\): (?:number\[\]|number|string|boolean) =>\n)")


@pytest.fixture(scope="module")
def ts_rows() -> dict[str, list[dict]]:
    return {s: load_problems("ts-instruct", s) for s in ("train", "val", "test")}


# ---- ts-instruct -------------------------------------------------------------------------------


def test_ts_instruct_rows_are_well_formed_typescript(ts_rows):
    assert {s: len(r) for s, r in ts_rows.items()} == {"train": 1500, "val": 60, "test": 60}
    for split, rows in ts_rows.items():
        for i, row in enumerate(rows):
            assert row["id"] == f"ts-instruct/{split}/{i}"
            assert ts_instruct.check(row) == [], row["id"]  # rebuilds from its fields; balanced; grammar only
            m = SIGNATURE.match(row["output"])
            assert m and (m["f"] or m["c"]) == row["name"] and (m["a"] or m["b"]) == row["arg"], row["output"]
            assert row["instruction"].startswith(f"Write a TypeScript function {row['name']}({row['arg']}) that ")
            example = f"For example, {row['name']}({json.dumps(row['example_input'])}) returns {json.dumps(row['example_output'])}."
            assert row["instruction"].endswith(example)
            assert ts_instruct.LAYOUTS[row["layout"]] in row["instruction"]
    rows = [r for split in ts_rows.values() for r in split]
    assert Counter(r["layout"] for r in rows).keys() == ts_instruct.LAYOUTS.keys()
    assert len({r["instruction"] for r in rows}) == len(rows)
    assert not {r["name"] for r in ts_rows["test"]} & {r["name"] for r in ts_rows["train"] + ts_rows["val"]}
    # By the token-class report's markers the references are TypeScript, with no Python in them.
    shares = class_shares(r["output"] for r in rows)
    assert shares["typescript_share_of_markers"] == 1.0 and shares["code_share_of_words"] == 1.0
    assert all(shares["markers"]["typescript"][m] > 0 for m in ("function", "const", "let", "=>", ": number",
                                                                  ": string", "==="))


def test_ts_instruct_examples_follow_javascript_semantics():
    """The Python re-implementation computes what JavaScript would: `%` keeps the sign of the
    dividend, so odd is `x % 2 !== 0`, and a count of one character is split(c).length - 1."""
    parts = {"filter": "odd", "map": "negate", "reduce": "sorted"}
    assert ts_instruct.evaluate("list", parts, {}, [-3, -2, 5, 0]) == [-5, 3]
    assert ts_instruct.render("list", parts, {}, "chain", "f", "xs") == (
        "function f(xs: number[]): number[] {\n  return xs.filter((x) => x % 2 !== 0).map((x) => -x)"
        ".sort((a, b) => a - b);\n}")
    s_parts = {"case": "upper", "edit": "replace", "output": "count"}
    consts = {"edit": {"c": "A", "d": "E"}, "output": {"c": "E"}}
    assert ts_instruct.evaluate("str", s_parts, consts, "banana bee") == 5  # BENENE BEE
    assert ts_instruct.render("str", s_parts, consts, "arrow", "g", "s") == (
        'const g = (s: string): number =>\n  s.toUpperCase().replaceAll("A", "E").split("E").length - 1;')


@pytest.mark.parametrize("change, message", [
    (lambda r: {**r, "output": r["output"][:-1]}, "unclosed"),
    (lambda r: {**r, "output": r["output"].replace("function", "def", 1)}, "token outside the grammar: 'def'"),
    (lambda r: {**r, "output": r["output"].replace(";", ";\n  print(x);", 1)}, "token outside the grammar: 'print'"),
    (lambda r: {**r, "example_output": 12345}, "example output is not what the parts compute"),
    (lambda r: {**r, "layout": "chain" if r["layout"] != "chain" else "arrow"}, "code does not rebuild"),
])
def test_ts_instruct_check_catches_a_broken_row(ts_rows, change, message):
    row = next(r for r in ts_rows["train"] if r["layout"] == "steps")
    assert ts_instruct.check(row) == []
    assert any(message in p for p in ts_instruct.check(change(row)))


def test_ts_instruct_training_rows_and_the_study_prompts():
    rows = load_builtin("ts-instruct", "train")
    assert all(r["output"] == p["output"] and r["id"] == p["id"] for r, p in zip(rows, load_problems("ts-instruct", "train")))
    card = (datasets_dir() / "ts-instruct" / "CARD.md").read_text(encoding="utf-8")
    for prompt_id in re.search(r"compare\.prompt_ids: \[([^\]]+)\]", card).group(1).split(", "):
        _, split, i = prompt_id.split("/")
        assert load_problems("ts-instruct", split)[int(i)]["id"] == prompt_id


# ---- compose-deep / compose-diverse ----------------------------------------------------------------


@pytest.fixture(scope="module")
def variants() -> dict[str, list[dict]]:
    return {"deep": load_problems("compose-deep"), "diverse": load_problems("compose-diverse")}


def test_every_deep_and_diverse_solution_passes_its_asserts_in_a_child_process(variants):
    rows = variants["deep"] + variants["diverse"]
    jobs = [{"id": f"{r['dataset']}:{r['row_id']}", "program": r["prompt"] + r["canonical_solution"], "test": r["test"],
             "entry_point": r["entry_point"], "doctest": True} for r in rows]
    results = run_jobs(jobs)
    assert len(results) == len(jobs) == 1000
    assert [i for i, r in results.items() if not r["ok"]] == []


def test_deep_and_diverse_share_compose_training_problems_only(variants):
    compose = {s: {p["task_id"]: p for p in load_problems("compose", s)} for s in ("train", "val", "test")}
    held = {p["description"] for s in ("val", "test") for p in compose[s].values()}
    same = ("prompt", "test", "entry_point", "description", "signature", "composition")
    for rows in variants.values():
        for r in rows:
            original = compose["train"][r["task_id"]]
            assert {k: r[k] for k in same} == {k: original[k] for k in same}
            assert r["description"] not in held
    deep = [r["task_id"] for r in variants["deep"]]
    diverse = [r["task_id"] for r in variants["diverse"]]
    assert len(deep) == len(set(deep)) == len(diverse) == compose_variants.K
    assert list(dict.fromkeys(diverse)) == deep[: compose_variants.K // 5]  # diverse's problems are deep's first
    for r in variants["deep"]:
        assert r["canonical_solution"] == compose["train"][r["task_id"]]["canonical_solution"]
    meta = json.loads((datasets_dir() / "compose-variants" / "meta.json").read_text(encoding="utf-8"))
    assert meta["rows"] == {"deep": 500, "diverse": 500} and meta["problems"] == {"deep": 500, "diverse": 100}


def test_diverse_solutions_are_five_different_ways(variants):
    by_problem: dict[str, list[dict]] = {}
    for r in variants["diverse"]:
        by_problem.setdefault(r["task_id"], []).append(r)
    for task_id, rows in by_problem.items():
        kind = rows[0]["composition"].split("/")[0]
        assert [r["way"] for r in rows] == list(compose_variants.WAYS[kind])
        trees = {ast.dump(ast.parse(r["prompt"] + r["canonical_solution"])) for r in rows}
        assert len(trees) == 5, task_id
    loops = [r for r in variants["diverse"] if r["way"] == "loop"]
    assert all(re.search(r"^    for \w+ in ", r["canonical_solution"], re.M) for r in loops)
    assert all("lambda x:" in r["canonical_solution"] for r in variants["diverse"] if r["way"] == "functional")
    rows = load_builtin("compose-diverse")
    assert len({r["id"] for r in rows}) == 500
    assert all(r["output"] == f"{r['signature']}\n{r['canonical_solution']}" for r in rows)


def test_compose_variants_refuse_a_solution_that_fails_or_a_reference_they_cannot_read(tmp_path, monkeypatch,
                                                                                        variants):
    row = variants["diverse"][1]
    compose_variants.verify([row])
    with pytest.raises(RuntimeError, match="1 solution"):
        compose_variants.verify([{**row, "canonical_solution": row["canonical_solution"].replace("x", "(x + 1)", 1)}])
    problem = load_problems("compose", "train")[0]
    with pytest.raises(ValueError, match="does not re-render"):
        compose_variants.read_problem({**problem, "canonical_solution": problem["canonical_solution"].replace(" x ", " y ", 1)})
    real_solution = compose_variants.solution

    def one_wrong(p, way):
        body = real_solution(p, way)
        return body.replace("return", "return 1 +", 1) if way == "generator" else body

    monkeypatch.setattr(compose_variants, "solution", one_wrong)
    monkeypatch.setattr(sys, "argv", ["compose_variants", "--out", str(tmp_path)])
    with pytest.raises(RuntimeError, match="fail their problem's tests"):
        compose_variants.main()
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_study_config_inspects_its_stand_ins(data_tokenizer):
    from rich.console import Console

    from tunelab.config import Experiment
    from tunelab.data.inspect import render_inspect

    exp = Experiment.model_validate({
        "model": {"name": "builtin:tiny-code"},
        "data": {"sources": [{"builtin": "compose-diverse"}, {"builtin": "ts-instruct", "max_examples": 100}],
                 "val": [{"builtin": "compose", "split": "val"}], "test": [{"builtin": "ts-instruct", "split": "test"}]},
    })
    console = Console(record=True, width=160, color_system=None)
    render_inspect(exp, data_tokenizer, n_examples=40, console=console)
    text = console.export_text()
    for needle in ("compose-diverse", "ts-instruct", "builtin:compose-diverse[", ": number[]", "=>"):
        assert needle in text, needle
