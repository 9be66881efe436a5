"""Build `basic-python`: small problems written for tunelab, in HumanEval and LiveCodeBench form.

The problems are authored in `problems/<family>.yaml` (one record each, checked by `schema`)
and the stdin/stdout versions in `basic_stdio.py`. This module reads them, assigns task ids and
the fixed train/test split, runs every canonical solution (tests and docstring examples) and
every stdin reference in subprocesses, computes the private stdin outputs, and writes:

    basic-python/problems.jsonl   HumanEval fields + description, topic, split
    basic-python/stdio.jsonl      LiveCodeBench fields + task_id, split, reference_solution

Run:

    python -m tunelab_build.datasets.basic_python
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import json
import random
import zlib
from pathlib import Path

from tunelab.data.builtin import decode_private_tests
from tunelab_build.datasets import DATASETS_DIR, write_jsonl
from tunelab_build.datasets.runner import run_jobs
from tunelab_build.datasets.schema import Problem, load_all

NAME = "basic-python"
TRAIN_PERCENT = 60
CONTEST_DATE = "2025-06-01T00:00:00"


def split_of(task_id: str) -> str:
    digest = hashlib.sha256(f"{NAME}:{task_id}".encode()).hexdigest()
    return "train" if int(digest[:8], 16) % 100 < TRAIN_PERCENT else "test"


def make_problem(index: int, problem: Problem) -> dict:
    """HumanEval fields: prompt (imports + signature + docstring) and canonical_solution (body)."""
    code, name = problem.code, problem.entry_point
    tree = ast.parse(code)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    doc = fn.body[0]  # the schema checked that it is the docstring
    lines = code.splitlines(keepends=True)
    prompt = "".join(lines[: doc.end_lineno])
    solution = "".join(lines[doc.end_lineno :])
    test = "\n\ndef check(candidate):\n" + "".join(f"    {a}\n" for a in problem.tests)
    task_id = f"basic/{index}"
    return {
        "task_id": task_id,
        "prompt": prompt,
        "entry_point": name,
        "canonical_solution": solution,
        "test": test,
        "description": problem.description,
        "topic": problem.topic,
        "split": split_of(task_id),
    }


def build_problems() -> list[dict]:
    """Every authored problem in HumanEval form, task ids in file order."""
    return [make_problem(i, p) for i, p in enumerate(load_all())]


def verify_problems(problems: list[dict]) -> None:
    """Every canonical solution passes its tests and its docstring examples (in subprocesses)."""
    jobs = [{"id": p["task_id"], "program": p["prompt"] + p["canonical_solution"], "test": p["test"],
             "entry_point": p["entry_point"], "doctest": True} for p in problems]
    failed = {k: v["error"] for k, v in run_jobs(jobs).items() if not v["ok"]}
    if failed:
        raise SystemExit(f"canonical solutions fail: {failed}")


# ---- stdin/stdout form (LiveCodeBench fields) ------------------------------------------------


def encode_private(cases: list[dict]) -> str:
    """base64(zlib(JSON)): LiveCodeBench's compressed shape minus the pickle layer."""
    return base64.b64encode(zlib.compress(json.dumps(cases).encode())).decode()


def reference_program(problem: dict, main_body: str) -> str:
    body = "".join(f"    {line}\n" if line else "\n" for line in main_body.strip("\n").splitlines())
    return (problem["prompt"] + problem["canonical_solution"].rstrip("\n") + "\n\n\n"
            "def main() -> None:\n" + body + "\n\nif __name__ == \"__main__\":\n    main()\n")


def _content(spec, public: list[dict]) -> str:
    parts = [spec.statement.strip(), "Input\n\n" + spec.input_format.strip(),
             "Output\n\n" + spec.output_format.strip()]
    for i, case in enumerate(public, 1):
        parts.append(f"Sample Input {i}\n\n{case['input'].rstrip()}\n\nSample Output {i}\n\n{case['output'].rstrip()}")
    return "\n\n".join(parts) + "\n"


def build_stdio(problems: list[dict]) -> list[dict]:
    """LiveCodeBench rows; private outputs are computed by running the reference program."""
    from tunelab_build.datasets.basic_stdio import SPECS

    by_name = {p["entry_point"]: p for p in problems}
    rows, jobs = [], []
    for spec in SPECS:
        problem = by_name[spec.entry_point]
        program = reference_program(problem, spec.main)
        rng = random.Random(f"{NAME}:stdio:{spec.entry_point}")
        inputs = list(spec.edge_inputs) + [spec.gen(rng) for _ in range(spec.n_random)]
        inputs = list(dict.fromkeys(i if i.endswith("\n") else i + "\n" for i in inputs))
        public = [{"input": i, "output": o, "testtype": "stdin"} for i, o in spec.examples]
        jobs += [{"id": f"{spec.entry_point}#{k}", "program": program, "stdin": s, "expected": None}
                 for k, s in enumerate(inputs)]
        rows.append((spec, problem, program, public, inputs))
    results = run_jobs(jobs)
    out = []
    for spec, problem, program, public, inputs in rows:
        private = []
        for k, stdin in enumerate(inputs):
            res = results[f"{spec.entry_point}#{k}"]
            if not res["ok"]:
                raise SystemExit(f"{spec.entry_point}: reference fails on {stdin!r}: {res['error']}")
            private.append({"input": stdin, "output": res["output"], "testtype": "stdin"})
        number = problem["task_id"].split("/")[1]
        out.append({
            "question_title": spec.title,
            "question_content": _content(spec, public),
            "platform": "tunelab",
            "question_id": f"tunelab_basic_{number}",
            "contest_id": "tunelab-basic",
            "contest_date": CONTEST_DATE,
            "difficulty": spec.difficulty,
            "starter_code": "",
            "public_test_cases": json.dumps(public),
            "private_test_cases": json.dumps(private),
            "private_test_cases_compressed": encode_private(private),
            "metadata": json.dumps({"func_name": None}),
            "reference_solution": program,
            "task_id": problem["task_id"],
            "split": problem["split"],
        })
    return out


def stdio_jobs(rows: list[dict]) -> list[dict]:
    """Jobs that check each reference program on its public and (decoded) private tests."""
    jobs = []
    for row in rows:
        cases = json.loads(row["public_test_cases"]) + decode_private_tests(row["private_test_cases_compressed"])
        for k, case in enumerate(cases):
            jobs.append({"id": f"{row['question_id']}#{k}", "program": row["reference_solution"],
                         "stdin": case["input"], "expected": case["output"]})
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATASETS_DIR / NAME)
    args = parser.parse_args()
    problems = build_problems()
    verify_problems(problems)
    stdio = build_stdio(problems)
    failed = {k: v["error"] for k, v in run_jobs(stdio_jobs(stdio)).items() if not v["ok"]}
    if failed:
        raise SystemExit(f"stdin references fail their public tests: {failed}")
    write_jsonl(args.out / "problems.jsonl", problems)
    write_jsonl(args.out / "stdio.jsonl", stdio)
    n_train = sum(p["split"] == "train" for p in problems)
    print(f"problems: {len(problems)} (train {n_train}, test {len(problems) - n_train}); stdio: {len(stdio)}")


if __name__ == "__main__":
    main()
