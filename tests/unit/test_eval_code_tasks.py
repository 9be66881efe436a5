"""Code extraction and the code tasks (humaneval, basic-python, stdio, repair), scored in the real
sandbox on hand-written right and wrong generations."""

from __future__ import annotations

import base64
import json
import pickle
import sys
import zlib

import pytest

from tunelab.data.builtin import load_builtin
from tunelab.errors import DataError
from tunelab.evaluation.registry import get_task
from tunelab.evaluation.sandbox import Limits, Sandbox
from tunelab.evaluation.task import EvalError, PromptOptions, Sample, ScoringContext
from tunelab.evaluation.tasks.code_extract import complete_program, extract_code, function_program, sanitize
from tunelab.evaluation.tasks.humaneval import failure_report
from tunelab.evaluation.tasks.repair import code_tokens, token_edit_distance
from tunelab.evaluation.tasks.stdio import decode_tests, outputs_match

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox runs on Linux")


@pytest.fixture(scope="module")
def ctx():
    sandbox = Sandbox(Limits(timeout_s=20.0), workers=2)
    yield ScoringContext(sandbox=sandbox)
    sandbox.close()


def verdicts(score) -> list[str]:
    return [g["verdict"] for g in score.generations]


# ---- code extraction ---------------------------------------------------------------------------------

ADD = "def add(a, b):\n    return a + b\n"


def test_fenced_blocks_pick_the_one_defining_the_entry_point():
    reply = ("Sure! First a helper:\n```python\ndef helper():\n    return 1\n```\nThen the answer:\n"
             f"```py\n{ADD}```\nIt adds.")
    assert extract_code(reply, "add") == ADD
    assert extract_code("```\nint main() {}\n```\n```python\nx = 1\n```") == "x = 1\n"  # python-tagged wins
    assert extract_code(f"```python\n{ADD}", "add") == ADD  # cut off before the closing fence
    assert extract_code("I'm not sure how to do this.") is None and extract_code("  ") is None


def test_raw_code_loses_leading_prose_and_trailing_chatter():
    reply = f"Here is the function (in Python):\n{ADD}\nThis function adds a and b. Hope it helps!"
    assert extract_code(reply, "add") == ADD


def test_completion_style_keeps_the_prompt_and_cuts_chatter():
    prompt = 'def add(a, b):\n    """Sum."""\n'
    assert complete_program(prompt, "    return a + b\n\nThe code above adds.") == prompt + "    return a + b\n"
    assert function_program(prompt, "    return a + b\n", "add") == prompt + "    return a + b\n"
    assert function_program(prompt, "I cannot help with that.", "add") is None


def test_chat_answers_follow_the_prompt_and_lose_example_usage():
    prompt = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n'
    reply = ("```python\ndef total(xs: List[int]) -> int:\n    return sum(xs)\n\n"
             "print(total([1, 2]))\nassert total([]) == 1\nif __name__ == '__main__':\n    input()\n```")
    program = function_program(prompt, reply, "total")
    # The prompt first (its imports and helpers), then the answer's definition replaces the stub.
    assert program == prompt + "\n\n" + "def total(xs: List[int]) -> int:\n    return sum(xs)\n"
    assert sanitize("def f(:\n", "f") == "def f(:\n"  # unparsable code is left for the sandbox to judge


# ---- humaneval -----------------------------------------------------------------------------------------


@linux_only
def test_all_humaneval_canonical_solutions_pass(ctx):
    task = get_task("humaneval")
    samples = task.load("test")
    assert len(samples) == 164
    scores = task.score_batch(samples, [[s.data["canonical_solution"]] for s in samples], ctx)
    failed = [(s.id, sc.generations[0]["detail"]) for s, sc in zip(samples, scores) if not sc.generations[0]["passed"]]
    assert failed == []
    assert all(sc.values == {"pass@1": 1.0} for sc in scores)
    assert scores[0].generations[0]["isolation"] == ctx.sandbox.isolation


@linux_only
def test_humaneval_wrong_completions_get_their_verdicts(ctx):
    task = get_task("humaneval", pass_k=(1, 2), timeout_s=2.0)
    s = task.load("test")[0]  # has_close_elements(numbers, threshold)
    fenced = ("Here you go:\n```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], "
              "threshold: float) -> bool:\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) "
              "for b in numbers[i + 1:])\n```")
    gens = [s.data["canonical_solution"], "    return True\n", "    return (\n", "    return numbers[99]\n",
            "    while True:\n        pass\n", "I don't know.", fenced]
    sc = task.score(s, gens, ctx)
    assert verdicts(sc) == ["passed", "failed", "syntax_error", "runtime_error", "timeout", "no_code", "passed"]
    assert "assert candidate(" in sc.generations[1]["detail"]  # which test failed
    assert sc.generations[3]["detail"].startswith("IndexError")
    assert sc.values["pass@1"] == pytest.approx(2 / 7)
    assert sc.values["pass@2"] == pytest.approx(1 - (5 / 7) * (4 / 6))
    report = failure_report([{"id": s.id, "scores": sc.generations}])
    assert report["runtime_errors"] == {"IndexError": 1} and set(report["failure_examples"]) == {
        "failed", "syntax_error", "runtime_error", "timeout", "no_code"}


@linux_only
def test_humaneval_chat_answers_may_use_the_prompts_helpers(ctx):
    task = get_task("humaneval")
    problems = {s.id: s for s in task.load("test")}
    samples = [problems["HumanEval/10"], problems["HumanEval/38"]]  # call is_palindrome / encode_cyclic
    gens = []
    for s in samples:
        signature = next(ln for ln in s.data["prompt"].splitlines() if ln.startswith(f"def {s.data['entry_point']}("))
        gens.append([f"Sure:\n```python\n{signature}\n{s.data['canonical_solution']}```\nDone."])
    assert [sc.generations[0]["verdict"] for sc in task.score_batch(samples, gens, ctx)] == ["passed", "passed"]


def test_humaneval_prompts_and_settings():
    task = get_task("humaneval")
    s = task.load("test")[2]
    assert task.build_prompt(s, PromptOptions(style="completion")).text == s.data["prompt"]
    chat = task.build_prompt(s, PromptOptions(style="chat")).messages[0]["content"]
    assert s.data["prompt"].strip() in chat and "```python" in chat
    assert "\ndef " in task.generation_settings(PromptOptions(style="completion")).stop
    assert [m.name for m in get_task("humaneval", pass_k=[1, 10]).metrics] == ["pass@1", "pass@10"]
    with pytest.raises(EvalError, match="pass_k"):
        get_task("humaneval", pass_k=(0,))
    with pytest.raises(EvalError, match="sandbox"):
        task.score(s, ["    return 1\n"], ScoringContext())


# ---- basic-python ----------------------------------------------------------------------------------------


@linux_only
def test_basic_python_scores_chat_and_completion_answers(ctx):
    task = get_task("basic-python")
    samples = task.load("test")
    assert len(samples) == 51 and task.load("train")[0].data["split"] == "train"
    # As the fine-tuned model answers (training rows' output: the whole function, no fence).
    whole = [[s.data["prompt"] + s.data["canonical_solution"]] for s in samples]
    assert all(sc.generations[0]["passed"] for sc in task.score_batch(samples, whole, ctx))
    s = samples[0]
    sc = task.score(s, [s.data["canonical_solution"], "    return None\n"], ctx)
    assert verdicts(sc) == ["passed", "failed"]
    prompt = task.build_prompt(s, PromptOptions(style="chat"))
    assert prompt.messages[0]["content"] == load_builtin("basic-python", "test")[0]["instruction"]


# ---- compose ---------------------------------------------------------------------------------------------


@linux_only
def test_compose_references_pass_and_a_wrong_step_fails(ctx):
    task = get_task("compose")
    samples = task.load()
    assert len(samples) >= 100 and {s.data["split"] for s in samples} == {"test"}
    assert len(task.load("val")) == 100
    # As the fine-tuned model answers (training rows' output: plain signature + the line, no fence).
    rows = {r["id"]: r["output"] for r in load_builtin("compose", "test")}
    answers = [[rows[s.id]] for s in samples]
    assert all(sc.generations[0]["passed"] for sc in task.score_batch(samples, answers, ctx))
    s = next(s for s in samples if "sum([" in s.data["canonical_solution"])
    wrong = rows[s.id].replace("sum([", "max([")  # one step swapped for another of its slot
    sc = task.score(s, [rows[s.id], wrong, "I cannot write that."], ctx)
    assert verdicts(sc) == ["passed", "failed", "no_code"]
    assert sc.values == {"pass@1": pytest.approx(1 / 3)}


# ---- stdio ---------------------------------------------------------------------------------------------


def test_outputs_are_compared_line_by_line_with_tolerance():
    assert outputs_match("1 2\n3\n", "1  2 \n3")
    assert outputs_match("0.30000000000000004\n", "0.3\n") and outputs_match("1e-7", "0.0")
    assert not outputs_match("0.31\n", "0.3\n")
    assert not outputs_match("123456789012345679\n", "123456789012345678\n")  # integers exactly
    assert not outputs_match("007", "7") and not outputs_match("1\n2\n", "1\n")
    assert outputs_match("a\n\nb\n", "a\nb")


def test_private_tests_decode_without_unpickling():
    cases = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    lcb = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()  # LiveCodeBench's way
    ours = base64.b64encode(zlib.compress(json.dumps(cases).encode())).decode()
    assert decode_tests(lcb) == cases and decode_tests(ours) == cases and decode_tests(json.dumps(cases)) == cases

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(DataError, match="refusing"):
        decode_tests(evil)


def test_stdio_filters():
    assert len(get_task("stdio").load("test")) == 20
    hard = get_task("stdio", difficulty="hard").load(None)
    assert hard and all(s.data["difficulty"] == "hard" for s in hard)
    assert len(get_task("stdio", platform="tunelab", date_from="2025-01-01", date_to="2025-12-31").load("test")) == 20
    with pytest.raises(EvalError, match="no problems left"):
        get_task("stdio", date_from="2030-01-01").load("test")


def lcb_row(qid: str, platform: str, date: str, difficulty: str) -> dict:
    """A problem as LiveCodeBench ships it: private tests pickled, zlib'd, base64'd."""
    private = [{"input": "2 3\n", "output": "5\n", "testtype": "stdin"}]
    return {"question_id": qid, "question_title": "Sum", "question_content": "Print a + b.", "platform": platform,
            "contest_date": date, "difficulty": difficulty, "starter_code": "", "metadata": "{}",
            "public_test_cases": json.dumps([{"input": "1 1\n", "output": "2\n", "testtype": "stdin"}]),
            "private_test_cases": base64.b64encode(zlib.compress(pickle.dumps(json.dumps(private)))).decode()}


def test_stdio_reads_livecodebench_files_and_filters_them(tmp_path):
    rows = [lcb_row("a1", "atcoder", "2024-03-02T00:00:00", "easy"),
            lcb_row("c1", "codeforces", "2023-05-01T00:00:00", "hard"),
            {**lcb_row("l1", "leetcode", "2024-06-01T00:00:00", "easy"),  # functional: left out
             "public_test_cases": json.dumps([{"input": "[1]", "output": "1", "testtype": "functional"}])}]
    path = tmp_path / "lcb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    every = get_task("stdio", path=str(path)).load("test")
    assert [s.id for s in every] == ["a1", "c1"] and every[0].data["inputs"] == ["1 1\n", "2 3\n"]
    assert [s.id for s in get_task("stdio", path=str(path), platform="atcoder").load("test")] == ["a1"]
    assert [s.id for s in get_task("stdio", path=str(path), date_from="2024-01-01").load("test")] == ["a1"]
    assert [s.id for s in get_task("stdio", path=str(path), date_to="2023-12-31", difficulty="hard").load("test")] == ["c1"]
    prompt = get_task("stdio", path=str(path)).build_prompt(every[0], PromptOptions()).messages[0]["content"]
    assert prompt.endswith("Print a + b.") and "standard input" in prompt


@linux_only
def test_stdio_reference_programs_pass_and_wrong_ones_do_not(ctx):
    task = get_task("stdio")
    samples = task.load("test")
    refs = {r["question_id"]: r["reference_solution"] for r in load_builtin("basic-python-stdio", "test")}
    scores = task.score_batch(samples, [[f"```python\n{refs[s.id]}```"] for s in samples], ctx)
    assert [s.id for s, sc in zip(samples, scores) if not sc.generations[0]["passed"]] == []
    s = next(x for x in samples if x.data["question_title"])
    sc = task.score(s, ["```python\nprint('nope')\n```", "```python\nprint(\n```", "No idea."], ctx)
    assert verdicts(sc) == ["wrong_answer", "syntax_error", "no_code"]
    assert sc.generations[0]["detail"].startswith("case 0")
    assert sc.extra["tests"] == len(s.data["inputs"]) > sc.extra["public_tests"]


# ---- repair ---------------------------------------------------------------------------------------------


def test_token_edit_distance_ignores_comments_and_whitespace():
    a = "def f(x):\n    return x + 1\n"
    assert token_edit_distance(a, "def f( x ):  # note\n\n    return x+1\n") == 0
    assert token_edit_distance(a, "def f(x):\n    return x - 1\n") == 1
    assert token_edit_distance(a, "def f(x):\n    return x\n") == 2
    assert code_tokens("def f(:\n    '''unterminated") == ["def", "f", "(", ":"]


@linux_only
def test_repair_rpass_and_redit(ctx):
    task = get_task("repair")
    s = task.load("test")[0]
    assert s.data["instruction"].startswith("Fix the bug")
    fixed, buggy = s.data["fixed_code"], s.data["buggy_code"]
    sc = task.score(s, [f"Fixed:\n```python\n{fixed}```", buggy, "Looks right to me."], ctx)
    assert verdicts(sc) == ["passed", "failed", "no_code"]
    distance = token_edit_distance(buggy, fixed)
    assert distance >= 1 and sc.generations[0]["redit"] == distance and sc.generations[1]["redit"] == 0
    assert sc.values == {"rpass": pytest.approx(1 / 3), "redit": pytest.approx(distance / 2),
                         "redit_success": distance, "parse_rate": pytest.approx(2 / 3)}
    none = task.score(s, [buggy], ctx)
    assert none.values["redit_success"] is None and none.values["rpass"] == 0.0


def test_code_tasks_are_registered_as_code_executing():
    for name in ("humaneval", "basic-python", "stdio", "repair", "compose"):
        task = get_task(name)
        assert task.executes_code and task.load(task.default_split)
        assert isinstance(task.load(task.default_split)[0], Sample)


@linux_only
def test_a_truncated_repair_gets_no_redit_and_lowers_the_parse_rate(ctx):
    task = get_task("repair")
    s = task.load("test")[0]
    fixed = s.data["fixed_code"]
    cut = fixed[: len(fixed) // 2].rstrip() + "\n    return ("  # generation stopped mid-expression
    sc = task.score(s, [f"```python\n{fixed}```", f"```python\n{cut}\n```"], ctx)
    assert sc.generations[1]["parses"] is False and sc.generations[1]["redit"] is None
    assert sc.values["parse_rate"] == 0.5
    assert sc.values["redit"] == token_edit_distance(s.data["buggy_code"], fixed)  # the parsed repair only


def test_checking_near_python_prints_no_compiler_warnings(capfd):
    # `1if` is valid but an "invalid decimal literal" SyntaxWarning: model output
    # is full of it, and each check used to print a warning to the user's console.
    import warnings

    from tunelab.evaluation.tasks import repair
    from tunelab.evaluation.tasks.code_extract import parses, sanitize

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert parses("x = 1if y else 2") and not repair.parses("a = 0x1for")
        assert sanitize("def f(x): return 1if x else 2\nf(1)\n", "f") .strip() == "def f(x): return 1if x else 2"
        assert parses("x = [1]\n")
    assert "SyntaxWarning" not in capfd.readouterr().err
