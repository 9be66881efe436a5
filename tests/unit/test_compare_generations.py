"""Side-by-side generations: word diffs, code checks, the per-prompt rows."""

from __future__ import annotations

from tunelab.compare.generations import code_check, diff_segments, side_by_side, similarity


def join(segs, kinds):
    return "".join(t for k, t in segs if k in kinds)


def test_diff_segments_rebuild_both_texts():
    ref = "def f(x):\n    return x + 1\n"
    out = "def f(x):\n    return x * 2  # doubled\n"
    segs = diff_segments(ref, out)
    assert join(segs, {"same", "new"}) == out
    assert join(segs, {"same", "gone"}) == ref
    assert {k for k, _ in segs} == {"same", "new", "gone"}
    assert diff_segments("same text", "same text") == [["same", "same text"]]
    assert diff_segments("", "new") == [["new", "new"]]


def test_similarity():
    assert similarity("a b c", "a b c") == 1.0
    assert similarity("", "") == 1.0
    assert 0 < similarity("a b c", "a b d") < 1


def test_code_check():
    assert code_check("```python\ndef f():\n    return 1\n```") == {"language": "python", "has_code": True, "parses": True}
    assert code_check("```python\ndef f(:\n```")["parses"] is False
    assert code_check("def f(x):\n    return x\n")["parses"] is True  # raw code, no fence
    assert code_check("```js\nlet x = 1;\n```") == {"language": "js", "has_code": True, "parses": None}
    # unfenced TypeScript is TypeScript, not Python that fails to parse
    ts = "function task(list: number[]): number {\n  return Math.min(...list.filter((x) => x < 7));\n}"
    assert code_check(ts) == {"language": "typescript", "has_code": True, "parses": None}
    assert code_check("Just some words.") == {"language": None, "has_code": False, "parses": None}
    assert code_check("")["has_code"] is False
    assert code_check("#\n#\n# nothing\n")["has_code"] is False  # comments only
    # prose around code does not count; code cut off mid-statement does
    assert code_check("Here it is:\ndef f(x):\n    return x\n\nThis returns x.")["parses"] is True
    assert code_check("def f(x):\n    if self.x ==\n")["parses"] is False


def test_side_by_side_rows():
    rows = side_by_side({"base": ["Hello.", "x"], "final": ["def f():\n    return 1\n", "x"]}, "base")
    assert len(rows) == 2
    assert rows[0]["base"]["diff"] is None and rows[0]["final"]["diff"] is not None
    assert rows[0]["final"]["parses"] is True and rows[0]["base"]["has_code"] is False
    assert rows[1]["final"]["similarity_to_reference"] == 1.0
