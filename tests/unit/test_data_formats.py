"""Normalising alpaca / messages / prompt-completion rows, and the errors for malformed ones."""

from __future__ import annotations

import pytest

from tunelab.config import SourceConfig
from tunelab.data.formats import to_chat
from tunelab.errors import DataError

ORIGIN = "data/train.jsonl:17"


def src(**kw) -> SourceConfig:
    return SourceConfig(path="data/train.jsonl", **kw)


def roles(ex) -> list[str]:
    return [m["role"] for m in ex.messages]


def test_alpaca_with_input_and_system():
    row = {"instruction": "Fix the bug.", "input": "def f(: pass", "output": "def f(): pass", "system": "Be terse."}
    ex = to_chat(row, ORIGIN, src())
    assert ex.messages == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Fix the bug.\n\ndef f(: pass"},
        {"role": "assistant", "content": "def f(): pass"},
    ]
    assert (ex.source, ex.origin) == ("train", ORIGIN)


def test_alpaca_without_input_and_numeric_output():
    ex = to_chat({"instruction": "6 * 7?", "input": "", "output": 42, "id": 7}, ORIGIN, src())
    assert ex.messages == [{"role": "user", "content": "6 * 7?"}, {"role": "assistant", "content": "42"}]
    assert ex.id == "7"


def test_prompt_completion():
    ex = to_chat({"prompt": "2+2=", "completion": "4"}, ORIGIN, src())
    assert ex.messages == [{"role": "user", "content": "2+2="}, {"role": "assistant", "content": "4"}]


def test_messages_pass_through():
    msgs = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    assert to_chat({"messages": msgs}, ORIGIN, src()).messages == msgs


def test_sharegpt_is_normalised_with_or_without_mapping():
    conv = [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]
    want = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert to_chat({"conversations": conv}, ORIGIN, src()).messages == want
    assert to_chat({"dialog": conv}, ORIGIN, src(columns={"messages": "dialog"})).messages == want
    turns = [{"speaker": "user", "text": "hi"}, {"speaker": "assistant", "text": "hello"}]
    mapped = src(columns={"messages": "turns", "role": "speaker", "content": "text"})
    assert to_chat({"turns": turns}, ORIGIN, mapped).messages == want


def test_columns_map_our_names_to_theirs():
    ex = to_chat({"question": "q?", "answer": "a."}, ORIGIN, src(columns={"instruction": "question", "output": "answer"}))
    assert ex.messages == [{"role": "user", "content": "q?"}, {"role": "assistant", "content": "a."}]


def test_missing_field_names_origin_columns_and_mapping():
    with pytest.raises(DataError) as err:
        to_chat({"question": "q?", "answer": "a."}, ORIGIN, src(format="alpaca", columns={"instruction": "question"}))
    assert str(err.value) == (
        "data/train.jsonl:17: field 'output' is missing "
        "(columns present: question, answer; map them with columns: {output: answer})"
    )


def test_unknown_format_suggests_a_mapping():
    with pytest.raises(DataError, match=r"^data/train.jsonl:17: cannot tell the data format \(columns present: "
                       r"question, answer\).*map yours with \{instruction: question, output: answer\}"):
        to_chat({"question": "q?", "answer": "a."}, ORIGIN, src())


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"instruction": "x", "output": ""}, "field 'output' is empty"),
        ({"instruction": "x", "output": None}, "field 'output' is null"),
        ({"instruction": ["x"], "output": "y"}, "field 'instruction' must be text, got list"),
        ({"messages": "hi"}, "field 'messages' must be a non-empty list"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]},
         r"messages\[1\]: unsupported role 'robot'"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
         r"messages\[1\]: role 'user' after 'user'; messages must alternate"),
        ({"messages": [{"role": "assistant", "content": "a"}]}, r"messages\[0\]: role 'assistant' at the start"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]},
         r"messages\[1\]: a system message may only come first"),
        ({"messages": [{"role": "user", "content": "a"}]}, "has no assistant message"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                       {"role": "user", "content": "c"}]}, "ends with a user message"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": " "}]},
         r"messages\[1\]: assistant message is empty"),
        ({"messages": [{"content": "a"}]}, r"messages\[0\]: no 'role'"),
    ],
)
def test_malformed_rows_name_origin_and_field(row, message):
    with pytest.raises(DataError, match=rf"^data/train.jsonl:17: .*{message}"):
        to_chat(row, ORIGIN, src())


def test_unknown_columns_key():
    with pytest.raises(DataError, match=r"columns: unknown field 'ouput' \(did you mean 'output'\?\)"):
        to_chat({"instruction": "x", "output": "y"}, ORIGIN, src(columns={"ouput": "answer"}))


def test_system_prompt_is_prepended_unless_the_row_has_one():
    ex = to_chat({"prompt": "p", "completion": "c"}, ORIGIN, src(system_prompt="You write Python."))
    assert roles(ex) == ["system", "user", "assistant"]
    assert ex.messages[0]["content"] == "You write Python."
    own = {"messages": [{"role": "system", "content": "Mine."}, {"role": "user", "content": "u"},
                        {"role": "assistant", "content": "a"}]}
    assert to_chat(own, ORIGIN, src(system_prompt="You write Python.")).messages[0]["content"] == "Mine."
