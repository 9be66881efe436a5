"""Share of tokens by class in whole generations, so "the tuned model writes code, not English"
is a number, not an impression.

Tokens here are lexical tokens of the text (words, numbers, operators, whitespace runs), not
the model's subword tokens: a keyword split into three BPE pieces is still one keyword, and the
shares are comparable across tokenizers. Each line is first called code or prose:

- code: inside a markdown fence; a line that starts like Python (a statement keyword,
  decorator, assignment, call) or like TypeScript/JavaScript (`function f(`, `const x =`,
  `let x:`, `interface T`, a closing `}`, a `for (...) {` block); an indented line or a `#`
  comment right after code; or a line with code punctuation that parses on its own (`ast`,
  nothing runs). Inline `backticks` in prose are code too. A `#` line after prose is a
  Markdown heading or "#### 42": prose.
- prose: everything else.

Code tokens are keywords (Python's, soft keywords included; on a TypeScript line, inside a
ts/js fence or with a TypeScript marker below, TypeScript's too: `function`, `const`, `let`,
`number`, ...), identifiers, literals (numbers and strings) and punctuation (operators,
brackets, fence markers); the words of a `# comment` are natural language. Prose tokens are
words (numbers included) and punctuation. Whitespace runs are their own class. It is a
heuristic for Python- or TypeScript-like code and English-like prose.

Which language the code looks like is counted apart from the classes, as **markers**: patterns
only one of the two languages writes (TypeScript: `function f(`, `const x =`, `let x =`, `=>`,
`: number`, `: string`, `interface T {`, `===` / `!==`; Python: `def f(`, `elif`, `lambda x:`,
`None` / `True` / `False`, a block-opening line ending in `:`, `self.`, `for x in`), searched in
the whole text. `typescript_share_of_markers` is the number a shift from Python to TypeScript
moves.
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
# A line that starts TypeScript/JavaScript.
_TS_START = re.compile(
    r"^\s*(?:(?:export\s+)?(?:async\s+)?function\b\s*\*?\s*[\w$]*\s*[(<]|(?:export\s+)?(?:const|let|var)\s+[\w$]+\s*[:=]|"
    r"(?:export\s+)?(?:interface|enum)\s+\w+\s*[{<]|(?:export\s+)?type\s+\w+\s*=|\}|"
    r"(?:for|if|while|switch)\s*\(.*\{\s*$)"
)
_CODE_PUNCT = re.compile(r"[=()\[\]{}:]")
_CODE_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<comment>#[^\n]*)|(?P<str>[rbfuRBFU]{0,2}(?:\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?))|"
    r"(?P<num>(?:0[xob][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?|\.\d+))|"
    r"(?P<name>[^\W\d]\w*)|(?P<punct>[^\w\s]+?)"
)
_TS_KEYWORDS = {"function", "const", "let", "var", "interface", "type", "enum", "export", "import", "extends",
                "implements", "new", "this", "typeof", "instanceof", "of", "null", "undefined", "true", "false",
                "void", "number", "string", "boolean", "any", "unknown", "never", "readonly", "public", "private",
                "protected", "static", "switch", "case", "default", "do", "throw", "catch", "delete"}
_TS_FENCE = re.compile(r"^\s*(?:```|~~~)\s*(?:ts|tsx|typescript|js|jsx|javascript)\b", re.I)
MARKERS = {
    "typescript": {
        "function": r"\bfunction\b\s*\*?\s*[\w$]*\s*[(<]",
        "const": r"\bconst\s+[\w$]+\s*(?:[:=]|of\b)",
        "let": r"\blet\s+[\w$]+\s*(?:[:=]|of\b)",
        "=>": r"=>",
        ": number": r":\s*number\b",
        ": string": r":\s*string\b",
        "interface": r"\binterface\s+[A-Z]\w*\s*(?:\{|<|extends\b)",
        "===": r"===|!==",
    },
    "python": {
        "def": r"\bdef\s+\w+\s*\(",
        "elif": r"\belif\b",
        "lambda": r"\blambda\b[^:\n]*:",
        "None/True/False": r"\b(?:None|True|False)\b",
        "block colon": r"^[ \t]*(?:if|elif|else|for|while|def|class|try|except|finally|with)\b[^\n{};]*:[ \t]*(?:#.*)?$",
        "self.": r"\bself\.",
        "for x in": r"\bfor\s+\w+(?:\s*,\s*\w+)*\s+in\b",
    },
}
_MARKER_RES = {lang: {m: re.compile(rx, re.M) for m, rx in table.items()} for lang, table in MARKERS.items()}
_TS_LINE = re.compile("|".join(f"(?:{rx})" for rx in MARKERS["typescript"].values()))
_PROSE_TOKEN = re.compile(r"(?P<ws>\s+)|(?P<code>`[^`\n]+`)|(?P<word>\w+(?:['’]\w+)*)|(?P<punct>[^\w\s])")


def line_kinds(text: str) -> list[tuple[str, bool]]:
    """Split `text` into lines (newline kept) and say whether each is code."""
    return [(line, is_code) for line, is_code, _ in _lines(text)]


def _lines(text: str) -> list[tuple[str, bool, bool]]:
    """(line, is code, is TypeScript) for every line: TypeScript inside a ts/js fence, or a
    code line with a TypeScript marker."""
    out: list[tuple[str, bool, bool]] = []
    in_fence = prev_code = ts_fence = False
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        if _FENCE.match(body):
            out.append((line, True, False))  # the fence marker itself is markup around code
            in_fence = not in_fence
            ts_fence = in_fence and bool(_TS_FENCE.match(body))
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
            is_code = bool(_CODE_START.match(body) or _TS_START.match(body)) or continues or (
                bool(_CODE_PUNCT.search(stripped)) and parses(stripped))
        out.append((line, is_code, is_code and (ts_fence or bool(_TS_LINE.search(body)))))
        prev_code = is_code
    return out


def classify(text: str) -> Counter[str]:
    """Counts of tokens per class (keys from `CLASSES`) in one text."""
    return Counter(token_classes(text))


def token_classes(text: str) -> list[str]:
    """The class of every lexical token of `text`, in order (a whitespace run is one token,
    also across line ends)."""
    seq: list[str] = []
    for line, is_code, ts in _lines(text):
        if is_code and _FENCE.match(line):
            # A fence line (```python) is one piece of markup, plus its newline.
            seq += ["code_punctuation"] + (["whitespace"] if line.endswith("\n") else [])
        else:
            seq += list(_code_tokens(line, ts) if is_code else _prose_tokens(line))
    return [c for i, c in enumerate(seq) if not (c == "whitespace" and i and seq[i - 1] == "whitespace")]


def _code_tokens(text: str, ts: bool = False) -> Iterable[str]:
    keywords = (_KEYWORDS | _TS_KEYWORDS) if ts else _KEYWORDS
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
            yield "code_keyword" if m.group() in keywords else "code_identifier"
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


def markers(text: str) -> dict[str, Counter[str]]:
    """How often each language's markers (`MARKERS`) occur in `text`."""
    return {lang: Counter({m: len(rx.findall(text)) for m, rx in table.items()}) for lang, table in _MARKER_RES.items()}


def class_shares(texts: Iterable[str]) -> dict[str, object]:
    """Token counts and shares per class and per group (code / natural_language / whitespace)
    over many texts; shares are fractions of all tokens (0 when there are none). Plus the
    language markers: counts per marker, and TypeScript's share of all markers (0 when none)."""
    counts: Counter[str] = Counter()
    found: dict[str, Counter[str]] = {lang: Counter() for lang in MARKERS}
    n_texts = 0
    for t in texts:
        counts.update(classify(t or ""))
        for lang, c in markers(t or "").items():
            found[lang].update(c)
        n_texts += 1
    ts, py = sum(found["typescript"].values()), sum(found["python"].values())
    total = sum(counts.values())
    share = {c: (counts[c] / total if total else 0.0) for c in CLASSES}
    groups = {g: sum(share[c] for c in members) for g, members in GROUPS.items()}
    words = sum(counts[c] for c in CLASSES[:6])
    return {"texts": n_texts, "tokens": total, "counts": {c: counts[c] for c in CLASSES}, "shares": share,
            "groups": groups,
            # Code among non-whitespace tokens: the number a shift from English to code moves.
            "code_share_of_words": (sum(counts[c] for c in GROUPS["code"]) / words) if words else 0.0,
            "markers": {lang: {m: found[lang][m] for m in MARKERS[lang]} for lang in MARKERS},
            # Of the markers found, TypeScript's: the number a shift from Python to TypeScript moves.
            "typescript_share_of_markers": ts / (ts + py) if ts + py else 0.0}
