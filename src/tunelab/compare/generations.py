"""Side-by-side generations: the same prompts, the same decoding settings, every variant.

Pure helpers (diffs, code checks) plus `generate_outputs`, which runs one loaded variant
through the evaluation layer's batched generator, so prompts are templated exactly as in
training and as in `tunelab eval`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from tunelab.compare.token_classes import line_kinds, markers
from tunelab.evaluation.tasks.code_extract import fenced_blocks, parses

_PYTHON_TAGS = {"python", "py", "python3", "py3"}
_WORDS = re.compile(r"\s+|\w+|[^\w\s]")


def diff_segments(reference: str, text: str) -> list[list[str]]:
    """`text` as [kind, piece] runs against `reference`, word by word.

    kind is "same" (also in the reference), "new" (inserted or replaced text) or "gone"
    (reference text this output lacks, to show struck through). Joining the "same" and "new"
    pieces gives `text` back.
    """
    ref, out = _WORDS.findall(reference), _WORDS.findall(text)
    segments: list[list[str]] = []

    def add(kind: str, piece: str) -> None:
        if not piece:
            return
        if segments and segments[-1][0] == kind:
            segments[-1][1] += piece
        else:
            segments.append([kind, piece])

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ref, out, autojunk=False).get_opcodes():
        if tag == "equal":
            add("same", "".join(out[j1:j2]))
            continue
        if tag in ("replace", "delete"):
            add("gone", "".join(ref[i1:i2]))
        if tag in ("replace", "insert"):
            add("new", "".join(out[j1:j2]))
    return segments


def similarity(a: str, b: str) -> float:
    """Word-level similarity in [0, 1] (difflib ratio): 1 = identical outputs."""
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, _WORDS.findall(a), _WORDS.findall(b), autojunk=False).ratio()


def code_check(text: str) -> dict[str, Any]:
    """Whether an output holds code and whether that code, as written, parses in its language.

    The code is the longest Python (or untagged) fenced block, else the lines from the first to
    the last line that reads as code (`token_classes.line_kinds`), so prose around it does not
    count but an output cut off mid-statement fails. A fence in another language is reported
    with `parses: None`: only Python is checked (`ast.parse`; nothing runs).

    Returns:
        {"language": str | None, "has_code": bool, "parses": bool | None}.
    """
    blocks = fenced_blocks(text)
    python = [code for tag, code in blocks if tag in _PYTHON_TAGS or not tag]
    other = [tag for tag, _ in blocks if tag and tag not in _PYTHON_TAGS]
    if other and not python:
        return {"language": other[0], "has_code": True, "parses": None}
    if python:
        code = max(python, key=len)
    else:
        kinds = line_kinds(text)
        lines = [i for i, (_, is_code) in enumerate(kinds) if is_code]
        code = "".join(line for line, _ in kinds[lines[0] : lines[-1] + 1]) if lines else ""
    if not code.strip() or _only_comments(code):
        return {"language": None, "has_code": False, "parses": None}
    found = markers(code)
    if not python and sum(found["typescript"].values()) > sum(found["python"].values()):
        # Unfenced TypeScript/JavaScript (`function f(xs: number[])`, `=>`, `===`): not Python
        # that fails to parse, and nothing here parses TypeScript.
        return {"language": "typescript", "has_code": True, "parses": None}
    return {"language": "python", "has_code": True, "parses": parses(code)}


def _only_comments(code: str) -> bool:
    """Lines of nothing but `#` comments (a model stuck repeating "#") are not code."""
    return all(not ln.strip() or ln.lstrip().startswith("#") for ln in code.splitlines())


def side_by_side(outputs: dict[str, list[str]], reference_variant: str) -> list[dict[str, Any]]:
    """Per prompt: every variant's output with its code check and its diff against the
    reference variant's output (`outputs[variant][i]` answers prompt i)."""
    variants = list(outputs)
    n = len(outputs[reference_variant])
    rows = []
    for i in range(n):
        ref_text = outputs[reference_variant][i]
        row = {}
        for v in variants:
            text = outputs[v][i]
            row[v] = {"text": text, **code_check(text), "similarity_to_reference": similarity(ref_text, text),
                      "diff": None if v == reference_variant else diff_segments(ref_text, text)}
        rows.append(row)
    return rows


def generate_outputs(generator: Any, prompts: Sequence[Any], max_new_tokens: int, seed: int) -> list[str]:
    """Greedy outputs of one loaded variant (a `TransformersGenerator`), one per prompt.

    Greedy decoding with one fixed setting for every variant: differences come from the
    weights, not from sampling noise.
    """
    from tunelab.evaluation.task import GenerationSettings

    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0, n=1, seed=seed)
    return [gens[0] for gens in generator.generate(list(prompts), settings)]


def decoding_settings(max_new_tokens: int, seed: int) -> dict[str, Any]:
    """The decoding settings `generate_outputs` uses, as recorded in compare/generations.json."""
    return {"strategy": "greedy", "temperature": 0.0, "max_new_tokens": max_new_tokens, "n": 1, "seed": seed,
            "stops": "eos and the chat template's end-of-turn marker"}
