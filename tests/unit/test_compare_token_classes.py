"""Token classes of generations: code vs natural language vs whitespace, on hand-written texts."""

from __future__ import annotations

import pytest

from tunelab.compare.token_classes import CLASSES, class_shares, classify, line_kinds, token_classes

REPLY = """Here is the function you asked for:

```python
def add(a, b):
    # add two numbers
    return a + b
```

It returns the `sum` of a and b.
"""


def test_lines_are_code_inside_fences_and_when_they_start_like_python():
    kinds = [k for _, k in line_kinds(REPLY)]
    assert kinds == [False, False, True, True, True, True, True, False, False]
    assert [k for _, k in line_kinds("x = add(1, 2)\nprint(x)\nThat prints three.")] == [True, True, False]
    # indented lines after code stay code; a sentence with parentheses does not parse
    assert [k for _, k in line_kinds("for i in range(3):\n    total += i\nUse f(x) to compute it.")] == [True, True, False]
    # "#" after prose is a heading or an answer marker; after code it is a comment
    assert [k for _, k in line_kinds("So the total is 42.\n#### 42")] == [False, False]
    assert [k for _, k in line_kinds("x = 1\n# note\ny = 2")] == [True, True, True]


def test_token_classes_by_hand():
    assert token_classes("return a + b") == ["code_keyword", "whitespace", "code_identifier", "whitespace",
                                              "code_punctuation", "whitespace", "code_identifier"]
    assert token_classes("Hello, world.") == ["nl_word", "nl_punctuation", "whitespace", "nl_word", "nl_punctuation"]
    assert token_classes('x = "hi" + 3.5') == ["code_identifier", "whitespace", "code_punctuation", "whitespace",
                                                "code_literal", "whitespace", "code_punctuation", "whitespace",
                                                "code_literal"]
    # a comment's words are natural language; inline `code` in prose is code
    assert token_classes("x = 1  # the answer")[-5:] == ["code_punctuation", "whitespace", "nl_word", "whitespace",
                                                         "nl_word"]
    assert token_classes("use `len(x)` here")[2:7] == ["nl_punctuation", "code_identifier", "code_punctuation",
                                                       "code_identifier", "code_punctuation"]
    # a whitespace run is one token, across line ends too
    assert token_classes("a\n\n  \nb").count("whitespace") == 1


def test_counts_of_a_mixed_reply():
    c = classify(REPLY)
    assert c["code_keyword"] == 2  # def, return
    assert c["code_identifier"] == 6  # add a b, a b, and the inline `sum` in the prose
    assert c["nl_word"] >= 12 and c["whitespace"] > 0
    assert set(c) <= set(CLASSES)


def test_shares_turn_a_shift_from_english_to_code_into_a_number():
    english = class_shares(["The function adds two numbers and returns their sum."])
    code = class_shares(["def add(a, b):\n    return a + b\n"])
    assert english["code_share_of_words"] == 0.0
    assert code["code_share_of_words"] == 1.0
    for s in (english, code, class_shares([REPLY, ""])):
        assert sum(s["shares"].values()) == pytest.approx(1.0)
        assert sum(s["groups"].values()) == pytest.approx(1.0)
    empty = class_shares([])
    assert empty["tokens"] == 0 and empty["code_share_of_words"] == 0.0


TS_REPLY = """function total(xs: number[]): number {
  const kept = xs.filter((x) => x % 2 === 0);
  let sum = 0;
  for (const x of kept) {
    sum += x;
  }
  return sum;
}
"""


def test_typescript_lines_are_code_and_its_keywords_are_keywords():
    assert all(k for _, k in line_kinds(TS_REPLY))
    assert [k for _, k in line_kinds("const f = (s: string): string =>\n  s.toUpperCase();\nThat is all.")] == [
        True, True, False]
    assert token_classes("const kept = xs;")[:3] == ["code_keyword", "whitespace", "code_identifier"]
    # TypeScript's words are keywords only on a TypeScript line: in Python, `string` is a name.
    assert token_classes("import string")[-1] == "code_identifier"
    assert token_classes("```ts\nlet n = 1\n```")[2] == "code_keyword"
    c = classify(TS_REPLY)
    assert c["code_keyword"] == 9  # function number number, const, let, for const of, return
    assert c["nl_word"] == 0


def test_markers_tell_typescript_from_python():
    ts = class_shares([TS_REPLY])
    assert ts["markers"]["typescript"] == {"function": 1, "const": 2, "let": 1, "=>": 1, ": number": 2,
                                           ": string": 0, "interface": 0, "===": 1}
    assert sum(ts["markers"]["python"].values()) == 0 and ts["typescript_share_of_markers"] == 1.0
    py = class_shares(["def total(xs):\n    return sum([x for x in xs if x % 2 == 0])\n"])
    assert py["markers"]["python"]["def"] == 1 and py["markers"]["python"]["for x in"] == 1
    assert py["typescript_share_of_markers"] == 0.0
    mixed = class_shares([TS_REPLY, "def f(x):\n    return x is None\n", "Just words here."])
    n_ts, n_py = sum(mixed["markers"]["typescript"].values()), sum(mixed["markers"]["python"].values())
    assert (n_ts, n_py) == (8, 3)  # def, block colon, None
    assert mixed["typescript_share_of_markers"] == pytest.approx(8 / 11)
    assert class_shares(["Let me explain: the interface is simple."])["typescript_share_of_markers"] == 0.0
