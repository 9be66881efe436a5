"""The math task's wrong-answer categories, on hand-written generations against GSM8K-style references."""

from decimal import Decimal

import pytest

from tunelab.evaluation.registry import get_task
from tunelab.evaluation.task import Sample, ScoringContext
from tunelab.evaluation.tasks.math import normalize_number
from tunelab.evaluation.tasks.math_errors import evaluate, intermediate_results, looks_truncated, wrong_equations

REFERENCE = ("A book costs 4*6 = <<4*6=24>>24 dollars.\nTwo books cost 2*24 = <<2*24=48>>48.\n"
             "With the pen: 48+4 = <<48+4=52>>52.\n#### 52")
SAMPLE = Sample("q", {"question": "A pen costs $4 and a book 6 times as much. What do 2 books and a pen cost?",
                      "answer": REFERENCE, "final": "52"})


@pytest.mark.parametrize("generation,verdict", [
    ("A book is 4 * 6 = 24. Two are 2 * 24 = 48, plus 4 is 52.\n#### 52", "correct"),
    ("A book is 24 and two books and a pen are 52 dollars.", "flexible_only"),  # right number, no ####
    ("I am not sure how to solve this.", "no_answer"),
    ("", "no_answer"),
    ("A book costs 4 * 6 = 24 dollars. Two books cost 2 * 24 = 48 and then we", "truncated"),  # cut mid-sentence
    ("A book costs 4 * 6 = 24. Two books cost 2 * 24 =", "truncated"),  # cut mid-equation
    ("A book costs 4 * 6 = 24. Two books: 2 * 24 = 46. With the pen: 46 + 4 = 50.\n#### 50", "arithmetic_error"),
    ("A book costs <<4*6=24>>24. Two books <<2*24=48>>48, the pen <<48+4=54>>54.\n#### 54", "arithmetic_error"),
    ("A book costs 4 * 6 = 24. Two books cost 2 * 24 = 48.\n#### 48", "intermediate_answer"),  # stopped early
    ("A book costs 4 + 6 = 10. Two books and a pen: 2 * 10 + 4 = 24.\n#### 24", "intermediate_answer"),
    ("Books cost 5 * 6 = 30, so 30 + 4 = 34.\n#### 34", "wrong_answer"),  # right arithmetic, wrong reading
])
def test_each_wrong_answer_category(generation, verdict):
    score = get_task("math-word").score(SAMPLE, [generation], ScoringContext())
    assert score.generations[0]["verdict"] == verdict
    assert score.generations[0]["passed"] is (verdict == "correct")


def test_the_wrong_equations_are_kept_in_the_record():
    sc = get_task("math-word").score(SAMPLE, ["Two books: 2 * 24 = 46.\n#### 50"], ScoringContext())
    gen = sc.generations[0]
    assert gen["wrong_equations"] == ["2 * 24 = 46 (is 48)"] and "2 * 24 = 46 (is 48)" in gen["detail"]
    assert sc.values == {"accuracy_strict": 0.0, "accuracy_flexible": 0.0}


@pytest.mark.parametrize("text,wrong", [
    ("3 * 12 = 36 and 12 x 3 = 36 and 6 ÷ 2 = 3", []),
    ("$1,500 * 4 = $6,000.", []),
    ("(2 + 3) * 4 = 24", ["(2 + 3) * 4 = 24 (is 20)"]),
    ("4 × 3 = 13", ["4 × 3 = 13 (is 12)"]),
    ("10 / 3 = 3.33 and 1.25 * 3.5 = 4.38", []),  # rounded to the decimals written
    ("10 / 3 = 3.34", ["10 / 3 = 3.34 (is 3.33333)"]),
    ("5 - 8 = -3", []),
    ("0.1 * 3 = 0.3", []),  # exact decimals, not floats
    ("5 * 3 = 15 * 2 = 30", []),  # a chain is left alone
    ("y + 5 * 3 = 20 and 2x + 3 = 7 and 20% of 50 = 10", []),  # algebra and percentages are not checked
    ("3 - 1 = 2 apples and 2 + 2 = 5 pears", ["2 + 2 = 5 (is 4)"]),
])
def test_equations_are_checked_with_exact_arithmetic(text, wrong):
    assert wrong_equations(text) == wrong


def test_expressions_and_endings():
    assert evaluate("2 + 3 * (4 - 1)") == Decimal(11) and evaluate("1 / 0") is None and evaluate("2 +") is None
    assert looks_truncated("so she has") and looks_truncated("```python\nx = 1") and looks_truncated("<<4*6=")
    assert not looks_truncated("The answer is 5.") and not looks_truncated("2 * 24 = 48")
    assert intermediate_results(REFERENCE, normalize_number) == {"24", "48", "52"}
    assert intermediate_results("7 + 8 = 15, then 15 * 2 = 30.\n#### 30", normalize_number) == {"15", "30"}


def test_the_version_changed_with_the_scoring():
    assert get_task("math-word").version == "3"  # v2 records have no truncated/arithmetic/intermediate verdicts
