"""Code extraction from model output (a helper module: no tasks).

Chat models answer in prose around markdown fences; base models continue a prompt and then
keep talking. `function_program` turns either into the program the sandbox runs:

- fenced code: the ```python block that defines the entry point (several blocks: that one;
  none defines it: the longest), an unclosed last fence (the reply was cut off) included;
- raw code: prose lines before the first code line and trailing chatter after the last line
  that still parses are dropped;
- completion style: prompt + completion, cut back to the longest prefix that parses.

Nothing here runs code: parsing is `ast.parse` only.
"""

from __future__ import annotations

import ast
import warnings
import re

TASKS = ()

_FENCE = re.compile(r"^[ \t]*(```|~~~)[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
_PYTHON_TAGS = {"python", "py", "python3", "py3", "ipython", "pycon", "sage"}
# A line that starts Python code (not prose): a statement keyword, a decorator, an assignment
# or call, a comment, or indentation.
_CODE_LINE = re.compile(
    r"^(?:[ \t]+\S|#|@|(?:async\s+)?def\s|class\s|import\s|from\s+\S+\s+import\s|if\s|elif\s|else:|for\s|"
    r"while\s|try:|except|finally:|with\s|return\b|raise\b|assert\s|print\(|pass\b|"
    r"[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s*(?:[-+*/%|&^]?=[^=]|\()|[A-Za-z_][\w.]*\s*,\s*[A-Za-z_][\w.]*\s*=)"
)


def parse_quietly(code: str) -> ast.Module | None:
    """`ast.parse(code)`, or None when it is not Python. Model output is full of near-Python
    (`1st`, `3x`): the compiler's SyntaxWarnings about it would be printed to the user's
    console once per generation, so they are silenced here, where a verdict is all we want."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        try:
            return ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return None


def parses(code: str) -> bool:
    """Whether `code` is syntactically valid Python (no code is run)."""
    return parse_quietly(code) is not None


def defines(code: str, name: str) -> bool:
    """Whether `code` defines function `name` at the top level (textual check, no parse)."""
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, code) of every markdown fence, in order; an unclosed last one included."""
    return [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(text)]


def _longest_parsing_prefix(lines: list[str], keep: int = 0) -> list[str] | None:
    """The longest prefix of `lines` (at least `keep` lines) that parses, or None."""
    for end in range(len(lines), keep, -1):
        if parses("\n".join(lines[:end]) + "\n"):
            return lines[:end]
    return None


def strip_chatter(text: str) -> str | None:
    """Raw code from text that may have prose before and after it; None if no code line."""
    lines = text.replace("\r\n", "\n").split("\n")
    starts = [i for i, ln in enumerate(lines) if _CODE_LINE.match(ln) and not ln.startswith((" ", "\t"))]
    starts = starts or [i for i, ln in enumerate(lines) if _CODE_LINE.match(ln)]
    for start in starts[:20]:  # a prose line can look like code ("Note (x): ..."): try the next
        kept = _longest_parsing_prefix(lines[start:])
        if kept and "".join(kept).strip():
            return "\n".join(kept).strip("\n") + "\n"
    if not starts:
        return None
    # Nothing parses: hand the text over as is and let the sandbox report the syntax error.
    return "\n".join(lines[starts[0]:]).strip("\n") + "\n"


def extract_code(text: str, entry_point: str | None = None) -> str | None:
    """The program in a chat reply: a fenced block (the one defining `entry_point` if given,
    else the longest Python one) or raw code with prose stripped; None if there is no code."""
    if not text or not text.strip():
        return None
    blocks = fenced_blocks(text)
    if blocks:
        # Python-tagged blocks first, then untagged ones, then whatever else there is.
        python = ([c for t, c in blocks if t in _PYTHON_TAGS and c.strip()]
                  or [c for t, c in blocks if t == "" and c.strip()] or [c for _, c in blocks if c.strip()])
        if not python:
            return None
        if entry_point:
            for code in python:
                if defines(code, entry_point):
                    return code.strip("\n") + "\n"
        return max(python, key=len).strip("\n") + "\n"
    return strip_chatter(text)


def complete_program(prompt: str, completion: str) -> str:
    """Completion style: prompt + completion, with trailing text that breaks parsing cut off."""
    full = prompt + completion
    if parses(full):
        return full
    prompt_lines = prompt.rstrip("\n").count("\n") + 1
    kept = _longest_parsing_prefix(full.split("\n"), keep=prompt_lines)
    return "\n".join(kept).rstrip("\n") + "\n" if kept else full


def prompt_imports(prompt: str) -> str:
    """The import lines at the top level of a HumanEval prompt (e.g. `from typing import List`)."""
    return "".join(ln + "\n" for ln in prompt.splitlines() if re.match(r"(?:import|from)\s+\S", ln))


def sanitize(code: str, entry_point: str) -> str:
    """Keep imports, definitions and assignments at the top level; drop example usage (calls,
    prints, asserts, loops, `if __name__ == ...` blocks) that models add after a function and
    that could fail or read stdin. Code that does not parse is returned unchanged."""
    tree = parse_quietly(code)
    if tree is None:
        return code
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
            ast.AnnAssign, ast.Try)
    lines = code.split("\n")
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, keep):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            out += lines[first - 1 : node.end_lineno]
    kept = "\n".join(out) + "\n"
    return kept if defines(kept, entry_point) else code


def function_program(prompt: str, generation: str, entry_point: str) -> str | None:
    """The program for a HumanEval-style problem from either kind of generation.

    A generation that defines the entry point (fenced or raw: a chat reply, or a base model that
    repeats the signature) comes after the whole prompt, whose imports and helper functions it
    may use (HumanEval/10 calls `is_palindrome` from its prompt) and whose docstring-only stub
    it then redefines. Anything else is a completion: the function body continuing the prompt.
    None: nothing that looks like code.
    """
    if not generation.strip():
        return None
    if fenced_blocks(generation):
        code = extract_code(generation, entry_point)
        if code is None:
            return None
        if defines(code, entry_point):
            return prompt.rstrip("\n") + "\n\n\n" + sanitize(code, entry_point)
        return complete_program(prompt, code)  # a fenced body only
    if defines(generation, entry_point) and not generation.startswith((" ", "\t")):
        code = strip_chatter(generation)
        if code is not None and defines(code, entry_point):
            return prompt.rstrip("\n") + "\n\n\n" + sanitize(code, entry_point)
    if not any(_CODE_LINE.match(ln) for ln in generation.splitlines()):
        return None  # prose only
    return complete_program(prompt, generation)
