"""Prompting baselines of every task a study compares on: chain-of-thought and few-shot prompts of
the code, repair and hint tasks, how their shots are chosen, and that a reasoned (CoT) reply is
scored on its code or hint, not its prose (in the real sandbox)."""

from __future__ import annotations

import sys

import pytest

from tunelab.config import EvalConfig
from tunelab.data.builtin import load_builtin
from tunelab.evaluation.engine import evaluate_run, prompt_options
from tunelab.evaluation.registry import get_task
from tunelab.evaluation.sandbox import Limits, Sandbox
from tunelab.evaluation.task import EvalError, PromptOptions, ScoringContext
from tunelab.evaluation.tasks.humaneval import COT_INSTRUCTION
from tunelab.evaluation.tasks.judge import hint_text
from tunelab.evaluation.tasks.prompts import COT_FUNCTION, COT_HINT, COT_PROGRAM, COT_REPAIR
from tunelab.evaluation.tasks.repair import token_edit_distance

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox runs on Linux")
COT = PromptOptions(variant="chain-of-thought", style="chat")
# Each task's chain-of-thought line, appended to its zero-shot question (HumanEval rewords its head).
COT_LINES = {"basic-python": COT_FUNCTION, "compose": COT_FUNCTION, "stdio": COT_PROGRAM, "repair": COT_REPAIR,
             "hint-judge": COT_HINT}
# What identifies a problem (shots must show distinct problems, none of them evaluated).
PROBLEM = {"humaneval": "topic", "basic-python": "topic", "repair": "task_id", "hint-judge": "problem"}


@pytest.fixture(scope="module")
def ctx():
    sandbox = Sandbox(Limits(timeout_s=20.0), workers=2)
    yield ScoringContext(sandbox=sandbox)
    sandbox.close()


def last_user(prompt) -> str:
    return prompt.messages[-1]["content"]


@pytest.mark.parametrize("name", sorted(COT_LINES))
def test_the_chain_of_thought_prompt_is_the_zero_shot_question_plus_its_line(name):
    task = get_task(name)
    item = task.load()[0]
    zero = task.build_prompt(item, PromptOptions(style="chat"))
    cot = task.build_prompt(item, COT)
    assert len(cot.messages) == len(zero.messages) == 1
    assert last_user(cot) == f"{last_user(zero)}\n\n{COT_LINES[name]}"
    # A reasoned answer needs room: never fewer new tokens than the zero-shot answer.
    assert task.generation_settings(COT).max_new_tokens >= task.generation_settings(PromptOptions(style="chat")).max_new_tokens


def test_humaneval_asks_for_the_explanation_before_the_fenced_function():
    task = get_task("humaneval")
    item = task.load()[0]
    text = last_user(task.build_prompt(item, COT))
    assert text.startswith(COT_INSTRUCTION) and "First explain the approach in a few sentences" in text
    assert text.endswith(f"```python\n{item.data['prompt'].rstrip()}\n```")


@pytest.mark.parametrize("name", ["humaneval", "basic-python", "compose"])
def test_chain_of_thought_of_a_completion_style_task_is_asked_in_chat(name):
    task = get_task(name)
    auto = prompt_options(task, EvalConfig(prompt="chain-of-thought"))
    assert auto.style == "chat"
    assert prompt_options(task, EvalConfig(prompt="few-shot", style="completion")).style == "completion"
    with pytest.raises(EvalError, match=f"task '{name}' has the 'chain-of-thought' prompt only in the chat style; "
                                        "set eval.style to chat"):
        prompt_options(task, EvalConfig(prompt="chain-of-thought", style="completion"))


def test_a_prompt_a_task_lacks_is_refused_with_what_it_has():
    with pytest.raises(EvalError, match="task 'similarity' has no 'few-shot' prompt; it has: zero-shot"):
        prompt_options(get_task("similarity"), EvalConfig(prompt="few-shot"))


@pytest.mark.parametrize("name", ["humaneval", "basic-python", "compose", "stdio", "repair", "hint-judge"])
def test_few_shot_examples_are_fixed_distinct_problems_that_are_never_evaluated(name):
    task = get_task(name)
    opts = PromptOptions(variant="few-shot", style="chat", num_fewshot=3)
    shots = task.fewshot(opts)
    assert [s.id for s in shots] == [s.id for s in task.fewshot(opts)] and len(shots) == 3
    evaluated = task.load(task.default_split)
    assert not {s.id for s in shots} & {s.id for s in evaluated}
    if name in PROBLEM:  # one mutant / one topic each, and no evaluated problem among them
        key = PROBLEM[name]
        assert len({s.data[key] for s in shots}) == 3
        if key != "topic":
            assert not {s.data[key] for s in shots} & {s.data[key] for s in evaluated}
    item = evaluated[0]
    prompt = task.build_prompt(item, opts, shots)
    roles = [m["role"] for m in prompt.messages]
    assert roles == ["user", "assistant"] * 3 + ["user"]
    assert last_user(prompt) == last_user(task.build_prompt(item, PromptOptions(style="chat")))
    # Each shot is asked as an item is asked and answered as the training rows answer.
    for i, shot in enumerate(shots):
        assert prompt.messages[2 * i]["content"] == last_user(task.build_prompt(shot, PromptOptions(style="chat")))
    answers = [prompt.messages[2 * i + 1]["content"] for i in range(3)]
    answer = {
        "humaneval": lambda d: f"```python\n{(d['prompt'] + d['canonical_solution']).rstrip()}\n```",
        "basic-python": lambda d: d["prompt"] + d["canonical_solution"],
        "compose": lambda d: f"{d['signature']}\n{d['canonical_solution']}",
        "stdio": lambda d: d["reference_solution"],
        "repair": lambda d: d["fixed_code"],
        "hint-judge": lambda d: d["reference_hint"],
    }[name]
    assert answers == [answer(s.data) for s in shots]
    # Other prompts show no shots, even when handed some.
    assert len(task.build_prompt(item, PromptOptions(style="chat"), shots).messages) == 1


def test_humaneval_shots_are_shipped_problems_and_completion_shots_precede_the_prompt():
    task = get_task("humaneval")
    opts = PromptOptions(variant="few-shot", style="completion", num_fewshot=2)
    shots = task.fewshot(opts)
    train = {r["task_id"] for r in load_builtin("basic-python", "train")}
    assert {s.id for s in shots} <= train  # tunelab's own train problems, never a HumanEval item
    item = task.load()[0]
    text = task.build_prompt(item, opts, shots).text
    programs = [s.data["prompt"] + s.data["canonical_solution"] for s in shots]
    assert text == programs[0] + "\n\n" + programs[1] + "\n\n" + item.data["prompt"]
    # The completion still continues the item's own prompt: the program to run is built from it.
    body = item.data["canonical_solution"]
    assert task.program(item, body) == item.data["prompt"] + body


def test_a_hint_after_reasoning_is_what_the_judge_sees():
    assert hint_text("The loop starts at 1.\nSo count is off.\nHint: Check where `count` starts.") == \
        "Check where `count` starts."
    assert hint_text("Reasoning...\n**Hint:** look at the return value.") == "look at the return value."
    assert hint_text("  Check the loop bounds.  ") == "Check the loop bounds."  # no marker: the whole reply

    class Judge:
        def __init__(self):
            self.prompts = []

        def generate(self, prompts, settings):
            self.prompts += prompts
            return [["HCorrect: yes\nHInformative: yes\nHConceal: yes\nHComprehensible: yes"] for _ in prompts]

    task, judge = get_task("hint-judge"), Judge()
    item = task.load()[0]
    reply = "The function subtracts b where it should add it: `return a + b + c` is the fix.\nHint: Look at the operators."
    score = task.score_batch([item], [[reply]], ScoringContext(judge=judge))[0]
    shown = judge.prompts[0].messages[0]["content"]
    assert '"""Look at the operators."""' in shown and "is the fix" not in shown
    assert score.generations[0]["hint"] == "Look at the operators." and score.values["HGood"] == 1.0


# ---- a reasoned reply is scored on its code, in the sandbox ----------------------------------------

PROSE = ("The approach: walk over the input once and keep what we need.\n"
         "for each value we update the result; return it at the end.\n"
         "def broken(x): return None  # not the answer, just talk\n\n")


def reasoned(code: str) -> str:
    return f"{PROSE}```python\n{code.rstrip()}\n```\nThis runs in linear time."


@linux_only
@pytest.mark.parametrize("name", ["humaneval", "basic-python", "compose"])
def test_a_chain_of_thought_function_is_scored_on_its_code_block(name, ctx):
    task = get_task(name)
    item = task.load()[0]
    right = item.data["prompt"] + item.data["canonical_solution"]
    wrong = item.data["prompt"] + "    return None\n"
    program = task.program(item, reasoned(right))
    assert "The approach" not in program and "def broken" not in program
    scores = task.score_batch([item], [[reasoned(right), reasoned(wrong)]], ctx)[0]
    assert [g["verdict"] for g in scores.generations] == ["passed", "failed"]


@linux_only
def test_a_chain_of_thought_stdio_program_is_scored_on_its_code_block(ctx):
    task = get_task("stdio")
    item = task.load()[0]
    solution = next(r["reference_solution"] for r in load_builtin("basic-python-stdio", "test")
                    if r["question_id"] == item.id)
    score = task.score_batch([item], [[reasoned(solution), PROSE]], ctx)[0]
    assert score.generations[0]["verdict"] == "passed" and score.generations[1]["verdict"] != "passed"


@linux_only
def test_a_chain_of_thought_repair_is_run_and_measured_without_its_explanation(ctx):
    task = get_task("repair")
    item = task.load()[0]
    fixed = item.data["fixed_code"]
    score = task.score_batch([item], [[reasoned(fixed)]], ctx)[0]
    assert score.values["rpass"] == 1.0
    # REdit counts the fix alone: the explanation's tokens are not edits.
    assert score.values["redit"] == token_edit_distance(item.data["buggy_code"], fixed) > 0


# ---- baselines end to end: evaluated like any variant, one table per task in the report --------------


class RepairSession:
    """Leaves the bug in zero-shot; fixes it when shown examples, after reasoning, or tuned."""

    def __init__(self, ref, fixes):
        self.ref, self.backend, self.identity, self.fixes = ref, "fake", f"fake:{ref}", fixes

    def generator(self):
        return self

    def generate(self, prompts, settings):
        out = []
        for p in prompts:
            ask = p.messages[-1]["content"]
            buggy = ask.split("```python\n")[1].split("```")[0]
            fixed = self.fixes[buggy]
            if ask.endswith(COT_REPAIR):
                out.append([reasoned(fixed)] * settings.n)
            elif len(p.messages) > 1 or self.ref == "final":
                out.append([fixed] * settings.n)
            else:
                out.append([buggy] * settings.n)
        return out

    def close(self):
        pass


@linux_only
def test_prompting_baselines_of_a_code_task_are_evaluated_and_tabled_beside_the_tuned_model(tmp_path):
    from tunelab.compare.paired import baseline_table
    from tunelab.config import validate_config
    from tunelab.report import write_report
    from tunelab.runs import read_json, read_jsonl

    exp = validate_config({"model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"builtin": "repair"}]},
                           "eval": {"tasks": ["repair"], "allow_code_execution": True, "limit": 3}})
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "adapter_config.json").write_text("{}")
    (run / "config.yaml").write_text(exp.to_yaml())
    task = get_task("repair")
    fixes = {s.data["buggy_code"]: s.data["fixed_code"] for s in task.load()}
    cfg = exp.eval.model_copy(update={"models": ["base", "base+cot", "base+few-shot", "final"]})
    results = evaluate_run(run, exp, cfg, session_factory=lambda ref: RepairSession(ref, fixes))
    rpass = {v: results[v]["repair"]["metrics"]["rpass"]["value"] for v in results}
    assert rpass == {"base": 0.0, "base+cot": 1.0, "base+few-shot": 1.0, "final": 1.0}
    shots = [s.id for s in task.fewshot(PromptOptions(variant="few-shot", num_fewshot=3))]
    few = read_json(run / "eval" / "base+few-shot" / "repair" / "summary.json")
    assert few["fewshot_ids"] == shots and few["prompt"]["variant"] == "few-shot"
    assert len(read_jsonl(run / "eval" / "base+few-shot" / "repair" / "samples.jsonl")[0]["prompt"]) == 7
    rows = {(r["variant"], r["prompt"], r["style"]) for r in baseline_table(run) if r["metric"] == "rpass"}
    assert rows == {("base", "zero-shot", "chat"), ("base+cot", "chain-of-thought", "chat"),
                    ("base+few-shot", "few-shot", "chat"), ("final", "zero-shot", "chat")}
    html = write_report([run]).read_text()
    table = html.split('id="results"')[1].split("repair (v")[1].split("</table>")[0]
    for variant, prompt in (("base", "zero-shot · chat"), ("base+cot", "chain-of-thought · chat"),
                            ("base+few-shot", "few-shot · chat"), ("final", "zero-shot · chat")):
        assert f">{variant}</td><td" in table and f">{prompt}</td>" in table
    assert f'title="few-shot examples: {", ".join(shots)}"' in table
