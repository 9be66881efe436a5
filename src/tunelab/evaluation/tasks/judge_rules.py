"""A rule-based stand-in for the hint judge (`eval.judge.model: rules`): no model, fixed rules.

A tiny offline model cannot judge hints, so an offline study would have no hint scores at all.
This judge answers the four rubric questions of `hint-judge` from the hint's text and the
(buggy, fixed) pair alone, and replies in the format the model judge is asked for, so the same
prompt, parser, scores and report run. It is a **stand-in, not a judge**: its replies start with
`RULE_JUDGE_MARK`, the task's summary then carries a warning, and the reports say so. It knows
nothing a diff does not show: use a model or endpoint judge for numbers that mean anything.

What it reads. The change is the line diff of buggy -> fixed (`difflib`), then the token diff
(Python `tokenize`) of the changed lines. The *changed lines* are the buggy program's changed
lines, or for a pure insertion (a removed base case) the lines around the insertion point; the
*fix tokens* are the fixed side's tokens that are not on the changed buggy lines; the *fix
fragment* is the fixed side's text from its first to its last differing token. A hint "names"
a program token when it holds it inside backticks, or, for identifiers, numbers and operators,
as a whole word or symbol; Python keywords that are English words too (`and`, `or`, `not`,
`in`, `is`, `if`) and one-letter names (`a`) count only inside backticks. "line N" is a line
reference, and its number is not a literal.

The rules, one per question:
- **HConceal**: the hint holds no changed line of the fixed program, nor what such a line says
  without its statement keyword or assignment target (`a + b + c` of `return a + b + c`; at
  least 4 characters, whitespace ignored), not the fix fragment when it has two tokens or more
  and the buggy program does not hold it too (swapping `a, b` for `b, a` gives away `b, a`),
  and names no fix token.
- **HCorrect**: the hint names a token of a changed line or its line number, and every line it
  refers to ("line N") is a changed line (a wrong line is misleading).
- **HInformative**: the hint names something specific: an identifier of the program other than
  the function's own name (the student knows it), an operator or literal of the program, or a
  line number; "check your code carefully" names nothing.
- **HComprehensible**: no code block (```), one to three sentences, at most 60 words, and at
  least 70% of the words outside backticks are plain English words (letters only).

Each answer line carries its reason in parentheses, so the report's failure examples show why.
"""

from __future__ import annotations

import difflib
import io
import keyword
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass

from tunelab.evaluation.task import EvalError, GenerationSettings, Prompt
from tunelab.evaluation.tasks.judge import JUDGE_PROMPT, RULE_JUDGE_MARK

RULES_VERSION = "1"  # part of the judge's identity: a change of the rules invalidates cached verdicts
MAX_WORDS = 60
MIN_ENGLISH_SHARE = 0.7
_ENGLISH_KEYWORDS = {"and", "or", "not", "in", "is", "if"}
_PUNCTUATION = set("()[]{},:.;")
_WORD = re.compile(r"[(\"']*(?:[A-Za-z]+(?:['-][A-Za-z]+)*|\d+)[)\"'.,;:!?]*")
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
         tokenize.ENDMARKER}
_HINT_TOKEN = re.compile(r"\"[^\"\n]*\"|(?<![A-Za-z])'[^'\n]*'|[A-Za-z_]\w*|\d+(?:\.\d+)?|\*\*=?|//=?|->|[<>=!]=|<<|>>|[-+*/%<>=&|^~@]=?|[()\[\]{},:.;]")
_LINE_REF = re.compile(r"\blines?\s+(\d+)(?:\s*(?:-|to|and)\s*(\d+))?", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


def _prompt_pattern() -> re.Pattern[str]:
    parts = re.split(r"\{(buggy|fixed|hint)\}", JUDGE_PROMPT)  # literal, name, literal, name, ...
    out = ""
    for i, part in enumerate(parts):
        out += f"(?P<{part}>.*{'?' if part != 'hint' else ''})" if i % 2 else re.escape(part)
    return re.compile(f"^{out}$", re.DOTALL)


_PROMPT = _prompt_pattern()


@dataclass(frozen=True)
class Change:
    """What the diff of buggy -> fixed shows (see the module docstring)."""

    lines: tuple[int, ...]  # 1-based numbers of the changed buggy lines
    bug_tokens: frozenset[str]  # every token on those lines
    fix_tokens: frozenset[str]  # fixed-side tokens not on them
    fix_fragment: tuple[str, ...]  # fixed tokens from the first to the last differing one
    fixed_lines: tuple[str, ...]  # the fixed program's changed lines, stripped
    program_tokens: frozenset[str]  # every token of the buggy program
    entry_point: str | None


def _tokens(code: str) -> list[tokenize.TokenInfo]:
    out: list[tokenize.TokenInfo] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type not in _SKIP:
                out.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def _strings(code: str) -> list[str]:
    return [t.string for t in _tokens(code)]


def read_change(buggy: str, fixed: str) -> Change:
    """The change from `buggy` to `fixed`, as the rules see it."""
    b, f = buggy.splitlines(), fixed.splitlines()
    lines, fixed_lines = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, b, f, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        lines += range(i1 + 1, i2 + 1) if i2 > i1 else [n for n in (i1, i1 + 1) if 1 <= n <= len(b)]
        fixed_lines += [ln.strip() for ln in f[j1:j2] if ln.strip()]
    bug_side = [b[n - 1] for n in lines]
    bug_tokens = [t for ln in bug_side for t in _strings(ln.strip())]
    fix_tokens = [t for ln in fixed_lines for t in _strings(ln)]
    ops = difflib.SequenceMatcher(None, bug_tokens, fix_tokens, autojunk=False).get_opcodes()
    spans = [(j1, j2) for op, _, _, j1, j2 in ops if op != "equal"]
    fragment = tuple(fix_tokens[spans[0][0]:spans[-1][1]]) if spans else ()
    entry = next((m.group(1) for m in re.finditer(r"^\s*def\s+([A-Za-z_]\w*)", buggy, re.MULTILINE)), None)
    return Change(tuple(lines), frozenset(bug_tokens), frozenset(fix_tokens) - frozenset(bug_tokens), fragment,
                  tuple(fixed_lines), frozenset(_strings(buggy)), entry)


def _hint_tokens(text: str) -> list[str]:
    """A hint's text as a token sequence (words, numbers, operators, string literals)."""
    return _HINT_TOKEN.findall(text)


def _holds(tokens: Sequence[str], part: Sequence[str]) -> bool:
    """Whether `part` occurs in `tokens` as a contiguous run (so `count` is not found in `count_vowels`)."""
    n = len(part)
    return n > 0 and any(tuple(tokens[i:i + n]) == tuple(part) for i in range(len(tokens) - n + 1))


def _line_parts(line: str) -> list[str]:
    """A fixed line and what it says without its statement keyword, assignment target or colon
    (`return a + b`: also `a + b`; `if x < n:`: also `x < n`)."""
    body = re.sub(r"^(return|if|elif|while|for|assert|yield|else)\b\s*", "", line).rstrip(":").strip()
    target = re.match(r"^[\w.\[\], ]+?\s*(?:[-+*/%]|//)?=(?!=)\s*(.+)$", body)
    return [line, body] + ([target.group(1)] if target else [])


def _line_refs(hint: str) -> set[int]:
    refs: set[int] = set()
    for m in _LINE_REF.finditer(hint):
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        refs.update(range(min(a, b), max(a, b) + 1) if abs(b - a) < 50 else (a, b))
    return refs


def _named(hint: str) -> set[str]:
    """The program-like tokens a hint names: everything inside backticks, and outside them the
    identifiers, numbers and operators (numbers of line references and English-word keywords left out)."""
    ticked = re.findall(r"`([^`]*)`", hint)
    out = {t for span in ticked for t in (_strings(span) or _HINT_TOKEN.findall(span))}
    plain = _LINE_REF.sub(" ", re.sub(r"`[^`]*`", " ", hint))
    out |= {t for t in _HINT_TOKEN.findall(plain)
            if t not in _ENGLISH_KEYWORDS and not (len(t) == 1 and t.isalpha())}  # "a", "I": English first
    return out - _PUNCTUATION


def judge_hint(buggy: str, fixed: str, hint: str) -> dict[str, tuple[bool, str]]:
    """The four rubric answers for one hint, each with its reason."""
    ch = read_change(buggy, fixed)
    named, refs = _named(hint), _line_refs(hint)
    said = _hint_tokens(hint)

    given = next((ln for ln in ch.fixed_lines for part in _line_parts(ln)
                  if len("".join(_strings(part))) >= 4 and _holds(said, _strings(part))), None)
    fragment_given = (len(ch.fix_fragment) > 1 and _holds(said, ch.fix_fragment)
                      and not _holds(_strings(buggy), ch.fix_fragment))
    fix_named = sorted(named & ch.fix_tokens)
    if given:
        conceal = (False, f"holds the fixed line `{given}`")
    elif fragment_given:
        conceal = (False, f"holds the fix `{' '.join(ch.fix_fragment)}`")
    elif fix_named:
        conceal = (False, f"names the fix token(s) {', '.join(f'`{t}`' for t in fix_named)}")
    else:
        conceal = (True, "no fixed line, fix or fix token")

    on_line = sorted(named & ch.bug_tokens)
    wrong_refs = sorted(refs - set(ch.lines))
    if wrong_refs:
        correct = (False, f"refers to line {', '.join(map(str, wrong_refs))}; the bug is on line "
                          f"{', '.join(map(str, ch.lines))}")
    elif on_line or refs:
        correct = (True, "names " + (", ".join(f"`{t}`" for t in on_line[:3]) if on_line else
                                     f"line {', '.join(map(str, sorted(refs)))}") + " of the changed line")
    else:
        correct = (False, "names nothing on the changed line")

    specific = sorted((named & ch.program_tokens) - {ch.entry_point} - set(keyword.kwlist))
    if specific or refs:
        informative = (True, "names " + (", ".join(f"`{t}`" for t in specific[:3]) if specific else "a line"))
    else:
        informative = (False, "names no identifier, operator, literal or line of the program")

    prose = re.sub(r"`[^`]*`", " x ", hint)  # a code span reads as one word
    words = re.sub(r"`[^`]*`", " ", hint).split()
    english = [w for w in words if _WORD.fullmatch(w)]
    sentences = len([s for s in _SENTENCE_END.split(prose.strip()) if s.strip()])
    if "```" in hint:
        comprehensible = (False, "holds a code block")
    elif not hint.strip():
        comprehensible = (False, "empty")
    elif not 1 <= sentences <= 3:
        comprehensible = (False, f"{sentences} sentences (1 to 3 wanted)")
    elif len(words) > MAX_WORDS:
        comprehensible = (False, f"{len(words)} words (at most {MAX_WORDS})")
    elif words and len(english) / len(words) < MIN_ENGLISH_SHARE:
        comprehensible = (False, f"{len(english)} of {len(words)} words are English words")
    else:
        comprehensible = (True, f"{sentences} sentence(s) of English words")
    return {"HCorrect": correct, "HInformative": informative, "HConceal": conceal, "HComprehensible": comprehensible}


def rules_reply(buggy: str, fixed: str, hint: str) -> str:
    """The reply the rule judge gives: the mark, then one `NAME: yes|no (reason)` line per question."""
    answers = judge_hint(buggy, fixed, hint)
    return "\n".join([RULE_JUDGE_MARK] + [f"{k}: {'yes' if ok else 'no'} ({why})" for k, (ok, why) in answers.items()])


class RuleJudge:
    """The judge generator of `eval.judge.model: rules`: reads each hint-judge prompt back into
    (buggy, fixed, hint) and answers by `judge_hint`; deterministic, no model."""

    identity = f"rules:hint-v{RULES_VERSION}"

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[list[str]]:
        out = []
        for p in prompts:
            text = (p.messages or [{}])[-1].get("content", "") if p.is_chat else p.text or ""
            m = _PROMPT.match(text)
            if m is None:
                raise EvalError("the rule-based stand-in judge (eval.judge.model: rules) only judges hint-judge "
                                "prompts; use a model (eval.judge.model) or an endpoint (eval.judge.base_url) here")
            out.append([rules_reply(m["buggy"], m["fixed"], m["hint"])])
        return out

    def close(self) -> None:
        """Nothing to release."""


TASKS = ()
