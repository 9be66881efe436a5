"""Share of tokens by class in whole generations, so "the tuned model writes code, not English"
is a number, not an impression.

Tokens here are lexical tokens of the text (words, numbers, operators, whitespace runs), not
the model's subword tokens: a keyword split into three BPE pieces is still one keyword, and the
shares are comparable across tokenizers. Each line is first called code or prose:

- code: inside a markdown fence; a line that starts like Python (a statement keyword,
  decorator, assignment, call); an indented line or a `#` comment right after code; or a line
  with code punctuation that parses on its own (`ast`, nothing runs). Inline `backticks` in
  prose are code too. A `#` line after prose is a Markdown heading or "#### 42": prose.
- prose: everything else.

Code tokens are keywords (Python's, soft keywords included), identifiers, literals (numbers
and strings) and punctuation (operators, brackets, fence markers); the words of a `# comment`
are natural language. Prose tokens are words (numbers included) and punctuation. Whitespace
runs are their own class. It is a heuristic for Python-like code and English-like prose.
"""

from __future__ import annotations

import keyword
import re
from collections import Counter
from collections.abc import Iterable

from tunelab.evaluation.tasks.code_extract import parses

CLASSES = ("code_keyword", "code_identifier", "code_literal", "code_punctuation",
           "nl_word", "nl_punctuation", "whitespace")
GROUPS = {"code": CLASSES[:4], "natural_language": CLASSES[4:6], "whitespace": CLASSES[6:]}

_KEYWORDS = set(keyword.kwlist) | (set(keyword.softkwlist) - {"_"})
_FENCE = re.compile(r"^\s*(```|~~~)")
# A line that starts Python: statement keyword, decorator, comment, assignment or call.
_CODE_START = re.compile(
    r"^\s*(?:(?:async\s+)?def\s+\w|class\s+\w|import\s+\w|from\s+[\w.]+\s+import\b|return\b|yield\b|"
    r"raise\b|assert\b|pass\s*$|break\s*$|continue\s*$|(?:el)?if\s.*:\s*$|else\s*:|for\s.*\sin\s.*:\s*$|"
    r"while\s.*:\s*$|try\s*:|except\b.*:\s*$|finally\s*:|with\s.*:\s*$|@\w|"
    r"[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s*(?:[-+*/%|&^]?=[^=]|\())"
)
_CODE_PUNCT = re.compile(r"[=()\[\]{}:]")
_CODE_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<comment>#[^\n]*)|(?P<str>[rbfuRBFU]{0,2}(?:\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?))|"
    r"(?P<num>(?:0[xob][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?|\.\d+))|"
    r"(?P<name>[^\W\d]\w*)|(?P<punct>[^\w\s]+?)"
)
_PROSE_TOKEN = re.compile(r"(?P<ws>\s+)|(?P<code>`[^`\n]+`)|(?P<word>\w+(?:['’]\w+)*)|(?P<punct>[^\w\s])")


def line_kinds(text: str) -> list[tuple[str, bool]]:
    """Split `text` into lines (newline kept) and say whether each is code."""
    out: list[tuple[str, bool]] = []
    in_fence = prev_code = False
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        if _FENCE.match(body):
            out.append((line, True))  # the fence marker itself is markup around code
            in_fence = not in_fence
            prev_code = in_fence
            continue
        if in_fence:
            is_code = True
        elif not body.strip():
            is_code = prev_code  # blank lines inside a code block stay code
        else:
            stripped = body.strip()
            # Indented lines and comments continue code; a "#" line on its own is a Markdown
            # heading or an answer marker ("#### 42"), which is prose.
            continues = prev_code and (body[:1] in (" ", "\t") or stripped.startswith("#"))
            is_code = bool(_CODE_START.match(body)) or continues or (
                bool(_CODE_PUNCT.search(stripped)) and parses(stripped))
        out.append((line, is_code))
        prev_code = is_code
    return out


def classify(text: str) -> Counter[str]:
    """Counts of tokens per class (keys from `CLASSES`) in one text."""
    return Counter(token_classes(text))


def token_classes(text: str) -> list[str]:
    """The class of every lexical token of `text`, in order (a whitespace run is one token,
    also across line ends)."""
    seq: list[str] = []
    for line, is_code in line_kinds(text):
        if is_code and _FENCE.match(line):
            # A fence line (```python) is one piece of markup, plus its newline.
            seq += ["code_punctuation"] + (["whitespace"] if line.endswith("\n") else [])
        else:
            seq += list(_code_tokens(line) if is_code else _prose_tokens(line))
    return [c for i, c in enumerate(seq) if not (c == "whitespace" and i and seq[i - 1] == "whitespace")]


def _code_tokens(text: str) -> Iterable[str]:
    for m in _CODE_TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            yield "whitespace"
        elif kind == "comment":
            yield "code_punctuation"  # the '#'; its words are natural language
            yield from _prose_tokens(m.group()[1:])
        elif kind in ("str", "num"):
            yield "code_literal"
        elif kind == "name":
            yield "code_keyword" if m.group() in _KEYWORDS else "code_identifier"
        else:
            yield "code_punctuation"


def _prose_tokens(text: str) -> Iterable[str]:
    for m in _PROSE_TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            yield "whitespace"
        elif kind == "code":  # `inline code`: backticks are punctuation, the inside is code
            yield "nl_punctuation"
            yield from _code_tokens(m.group()[1:-1])
            yield "nl_punctuation"
        elif kind == "word":
            yield "nl_word"
        else:
            yield "nl_punctuation"


def class_shares(texts: Iterable[str]) -> dict[str, object]:
    """Token counts and shares per class and per group (code / natural_language / whitespace)
    over many texts; shares are fractions of all tokens (0 when there are none)."""
    counts: Counter[str] = Counter()
    n_texts = 0
    for t in texts:
        counts.update(classify(t or ""))
        n_texts += 1
    total = sum(counts.values())
    share = {c: (counts[c] / total if total else 0.0) for c in CLASSES}
    groups = {g: sum(share[c] for c in members) for g, members in GROUPS.items()}
    words = sum(counts[c] for c in CLASSES[:6])
    return {"texts": n_texts, "tokens": total, "counts": {c: counts[c] for c in CLASSES}, "shares": share,
            "groups": groups,
            # Code among non-whitespace tokens: the number a shift from English to code moves.
            "code_share_of_words": (sum(counts[c] for c in GROUPS["code"]) / words) if words else 0.0}
