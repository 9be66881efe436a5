"""The rule-based stand-in hint judge (`eval.judge.model: rules`): each rule, its replies through
the model judge's parser, and the loud warning it leaves in the summary."""

from __future__ import annotations

import pytest

from tunelab.config import EvalConfig
from tunelab.data.builtin import load_problems
from tunelab.evaluation.context import EvalContext, make_judge
from tunelab.evaluation.registry import get_task
from tunelab.evaluation.task import EvalError, Prompt, ScoringContext
from tunelab.evaluation.tasks.judge import RULE_JUDGE_MARK, judge_prompt, parse_judgement
from tunelab.evaluation.tasks.judge_rules import RuleJudge, judge_hint, read_change

BUGGY = '''def clamp_sum(xs, limit):
    """Sum xs, but never above limit."""
    total = 0
    for x in xs:
        total = total - x
    return min(total, limit)
'''
FIXED = BUGGY.replace("total = total - x", "total = total + x")


def verdicts(hint: str, buggy: str = BUGGY, fixed: str = FIXED) -> dict[str, bool]:
    return {k: ok for k, (ok, _) in judge_hint(buggy, fixed, hint).items()}


def test_the_change_is_read_from_the_diff():
    ch = read_change(BUGGY, FIXED)
    assert ch.lines == (5,) and ch.fixed_lines == ("total = total + x",)
    assert ch.fix_tokens == {"+"} and ch.fix_fragment == ("+",) and "-" in ch.bug_tokens
    assert ch.entry_point == "clamp_sum"
    # A removed line (a lost base case) points at the lines around where it belongs.
    lost = read_change("def f(n):\n    return n * f(n - 1)\n", "def f(n):\n    if n == 0:\n        return 1\n"
                                                             "    return n * f(n - 1)\n")
    assert lost.lines == (1, 2) and lost.fix_tokens == {"if", "==", "0"}  # `1` is on a line around it


@pytest.mark.parametrize("hint, want", [
    # a good hint: names the line and its operator, gives nothing away
    ("Look at how `total` changes on line 5: is `-` the right operation?",
     {"HCorrect": True, "HInformative": True, "HConceal": True, "HComprehensible": True}),
    # generic advice: names nothing of the program
    ("Check your code carefully and test it.",
     {"HCorrect": False, "HInformative": False, "HConceal": True, "HComprehensible": True}),
    # the fixed line, the fix without its assignment target, or the fix token: not concealed
    ("Change line 5 to `total = total + x`.", {"HConceal": False, "HCorrect": True}),
    ("It should be total + x there.", {"HConceal": False}),
    ("Use + instead.", {"HConceal": False}),
    # a wrong line number is misleading, however specific
    ("The bug is on line 3, in the `for` loop.", {"HCorrect": False, "HInformative": True}),
    # the function's own name is not specific (the student knows it)
    ("Something in clamp_sum is off.", {"HInformative": False, "HCorrect": False}),
    # a code block, too many sentences, or not English: not comprehensible
    ("```python\ntotal -= x\n```", {"HComprehensible": False}),
    ("Look. At. The. Loop.", {"HComprehensible": False}),
    ("total = total - x ; x += 1 ; return min(total, limit)", {"HComprehensible": False}),
])
def test_each_rule(hint, want):
    got = verdicts(hint)
    assert {k: got[k] for k in want} == want, judge_hint(BUGGY, FIXED, hint)


def test_words_that_are_also_code_do_not_trip_the_rules():
    # "not" and "a" are English first: outside backticks they name no code token.
    buggy, fixed = "def f(a, seen):\n    return a in seen\n", "def f(a, seen):\n    return a not in seen\n"
    assert verdicts("This is not quite a right test of `seen` on line 2.", buggy, fixed)["HConceal"]
    assert not verdicts("Use `not in` on line 2.", buggy, fixed)["HConceal"]
    # "count" of `return count` is not the `count` in `count_vowels`
    buggy = "def count_vowels(s):\n    count = 0\n    for ch in s:\n        count += ch in 'aeiou'\n    return ch\n"
    assert verdicts("Check what `count_vowels` returns (line 5).", buggy, buggy.replace("return ch", "return count"))[
        "HConceal"]


def test_swapped_arguments_are_given_away_by_the_fix_fragment():
    buggy = "def f(d, k):\n    return d.get(0, k) + 1\n"
    fixed = "def f(d, k):\n    return d.get(k, 0) + 1\n"
    assert read_change(buggy, fixed).fix_fragment == ("k", ",", "0")
    assert not verdicts("Pass k, 0 in that order.", buggy, fixed)["HConceal"]
    assert verdicts("Check the order of the arguments of `d.get` on line 2.", buggy, fixed) == {
        "HCorrect": True, "HInformative": True, "HConceal": True, "HComprehensible": True}


def test_the_shipped_reference_hints_are_judged_as_written():
    # The built-in hints name the construct and its line and never hold the fix; the rules agree,
    # except that "when should the recursion stop" (a lost base case) names no token of the program.
    mutants = load_problems("repair")
    good = [m for m in mutants if all(verdicts(m["hint"], m["buggy_code"], m["fixed_code"]).values())]
    missed = {m["mutation"] for m in mutants if m not in good}
    assert missed == {"removed_base_case"} and len(good) >= len(mutants) - 11
    assert all(verdicts(m["hint"], m["buggy_code"], m["fixed_code"])["HConceal"] for m in mutants)
    # ... and the fixed code given as a hint is never concealed
    assert not any(verdicts(m["fixed_code"], m["buggy_code"], m["fixed_code"])["HConceal"] for m in mutants[:60])


def test_the_rule_judge_replies_in_the_model_judge_format_and_is_made_by_make_judge():
    judge, ident = make_judge(EvalConfig(judge={"model": "rules"}), None, None)
    assert isinstance(judge, RuleJudge) and ident.startswith("rules:")
    prompt = judge_prompt(BUGGY, FIXED, "Look at `-` on line 5.")
    reply = judge.generate([prompt], None)[0][0]
    assert reply.splitlines()[0] == RULE_JUDGE_MARK
    assert parse_judgement(reply) == {"HCorrect": True, "HInformative": True, "HConceal": True, "HComprehensible": True}
    assert "HConceal: yes (" in reply  # each answer says why
    with pytest.raises(EvalError, match="only judges hint-judge prompts"):
        judge.generate([Prompt(messages=[{"role": "user", "content": "Is 2 + 2 = 4?"}])], None)


def test_hint_scores_of_the_rule_judge_carry_a_loud_warning():
    from tunelab.evaluation.engine import summarize

    task = get_task("hint-judge")
    samples = task.load("test")[:3]
    hints = [[s.data["reference_hint"]] for s in samples[:2]] + [["Check your code."]]
    with EvalContext(EvalConfig(judge={"model": "rules"}), [task]) as ectx:
        scores = task.score_batch(samples, hints, ectx.scoring(task))
    assert [sc.values["HGood"] for sc in scores] == [1.0, 1.0, 0.0]
    assert scores[2].generations[0]["verdict"] == "not_correct"
    records = [{"id": s.id, "values": sc.values, "scores": sc.generations, "extra": sc.extra, "generations": h,
                "timing": {"generate_s": 0.0, "score_s": 0.0}} for s, sc, h in zip(samples, scores, hints)]
    summary = summarize(task, samples, records, EvalConfig())
    assert summary["report"]["stand_in_judge"] == "rules"
    assert "RULE-BASED STAND-IN JUDGE" in summary["warning"] and "no measure of hint quality" in summary["warning"]
    # A model judge's scores carry no such warning.
    yes = "HCorrect: yes\nHInformative: yes\nHConceal: yes\nHComprehensible: yes"

    class Yes:
        def generate(self, prompts, settings):
            return [[yes] for _ in prompts]

    plain = task.score_batch(samples, hints, ScoringContext(judge=Yes()))
    assert "warning" not in task.report([{"values": sc.values, "scores": sc.generations, "extra": sc.extra}
                                         for sc in plain])
