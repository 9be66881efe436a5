"""Why a math answer is wrong: the categories a person would otherwise tag by hand (a helper
module: no tasks).

Computed from the generation and the reference solution only (scoring sees the text, not the
token count, so a cut-off reply is read from how it ends):

- `flexible_only`: the right number, but not after `####` (the format, not the maths);
- `no_answer`: no number at all;
- `truncated`: no `####` answer and the reply stops mid-sentence or mid-equation (ends in a
  letter, a comma, an operator or `=`, or inside an open code fence or `<<` annotation): it
  ran into the token limit or stopped;
- `arithmetic_error`: an equation the reply writes, `a op b ... = c` (also GSM8K's `<<a*b=c>>`
  calculator annotations), is wrong in exact Decimal arithmetic; a result rounded or cut to
  the decimals it is written with counts as right (`10 / 3 = 3.33`);
- `intermediate_answer`: the final answer is a number the reference solution computes on the
  way (one of its `<<...=c>>` results, or a number after `=` where it has no annotations), not
  the final one: the reply stopped a step or more early;
- `wrong_answer`: any other wrong number.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext

TASKS = ()

ERROR_CATEGORIES = ("flexible_only", "no_answer", "truncated", "arithmetic_error", "intermediate_answer",
                    "wrong_answer")  # checked in this order; the first that applies is the verdict

_NUM = r"\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_OPERAND = rf"(?:\(\s*)*-?{_NUM}(?:\s*\))*"
_OP = r"[-+*/×÷xX]"
# An equation: an expression with at least one operator, `=`, a plain number that is not the
# start of another expression (`5 * 3 = 15 * 2 = 30` is a chain, left alone).
_EQUATION = re.compile(rf"(?P<lhs>{_OPERAND}(?:\s*{_OP}\s*{_OPERAND})+)\s*=\s*(?P<rhs>-?{_NUM})"
                       rf"(?!\d)(?![.,]\d)(?!\s*{_OP}\s*[\d($])")
_ANNOTATION = re.compile(r"<<([^<>]*?)=([^<>=]*)>>")
_AFTER_EQUALS = re.compile(rf"=\s*(-?{_NUM})")
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|(.))")


def _number(text: str) -> Decimal:
    return Decimal(text.replace("$", "").replace(",", "").replace(" ", ""))


def evaluate(expression: str) -> Decimal | None:
    """The exact value of `+ - * / ( )` arithmetic on decimal numbers (`x`, `×`, `÷` read as
    operators, `$` and thousands commas dropped); None if it is not such an expression."""
    text = expression.replace("$", "").replace(",", "").replace("×", "*").replace("÷", "/")
    text = re.sub(r"(?<=[\d)\s])[xX](?=[\s\d(])", "*", text)
    tokens: list[str] = []
    for m in _TOKEN.finditer(text):
        if m.group(1):
            tokens.append(m.group(1))
        elif m.group(2) and not m.group(2).isspace():
            tokens.append(m.group(2))
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def expr() -> Decimal:
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    def term() -> Decimal:
        value = factor()
        while peek() in ("*", "/"):
            value = value * factor() if take() == "*" else value / factor()
        return value

    def factor() -> Decimal:
        tok = peek()
        if tok == "-":
            take()
            return -factor()
        if tok == "(":
            take()
            value = expr()
            if take() != ")":
                raise ValueError("unbalanced")
            return value
        if tok is None or not tok[0].isdigit():
            raise ValueError("not a number")
        return Decimal(take())

    with localcontext() as ctx:
        ctx.prec = 50
        ctx.traps[DivisionByZero] = ctx.traps[InvalidOperation] = ctx.traps[Overflow] = True
        try:
            value = expr()
            return value if pos == len(tokens) else None
        except (ValueError, IndexError, ArithmeticError):
            return None


def _decimals(number: Decimal) -> int:
    exp = number.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def _agrees(value: Decimal, written: Decimal) -> bool:
    """`written` is `value`, or `value` rounded or cut to the decimals `written` shows."""
    if value == written:
        return True
    shown = _decimals(Decimal(str(written)))
    if _decimals(value) <= shown:
        return False
    step = Decimal(1).scaleb(-shown)
    return written in (value.quantize(step, rounding=ROUND_HALF_UP), value.quantize(step, rounding=ROUND_DOWN))


def wrong_equations(text: str) -> list[str]:
    """The equations in `text` whose result is wrong, each as `LHS = C (is V)`."""
    wrong = []
    for line in text.splitlines():
        for m in _EQUATION.finditer(line):
            start = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
            glued = start > 0 and (line[start - 1].isalnum() or line[start - 1] in "._")
            before = line[:start].rstrip()
            if glued or (before and before[-1] in "+-*/×÷^(="):
                continue  # glued to a word, or part of a longer expression (`y + 5 * 3 = 20`, a chain)
            lhs = m.group("lhs").strip()
            value = evaluate(lhs)
            if value is None:
                continue
            written = _number(m.group("rhs"))
            if not _agrees(value, written):
                wrong.append(f"{lhs} = {m.group('rhs').strip()} (is {_plain(value)})")
    return wrong


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if len(text) <= 24 else format(value, ".6g")


def intermediate_results(reference: str, normalize) -> set[str]:
    """Normalised numbers the reference solution computes before its final answer."""
    found = [m.group(2) for m in _ANNOTATION.finditer(reference)]
    if not found:
        found = [m.group(1) for m in _AFTER_EQUALS.finditer(reference.split("####")[0])]
    return {n for n in (normalize(x) for x in found) if n is not None}


def looks_truncated(text: str) -> bool:
    """The reply stops mid-sentence or mid-equation (or inside an open fence or annotation)."""
    t = text.rstrip()
    if not t:
        return False
    if t.count("```") % 2 == 1 or t.count("<<") > t.count(">>"):
        return True
    return t[-1].isalpha() or t[-1] in ",;:=+-*/×÷(<[{"


def categorize(generation: str, strict: str | None, flexible: str | None, want: str, reference: str,
               normalize) -> tuple[str, list[str]]:
    """The verdict of one generation and the wrong equations found in it (for wrong answers)."""
    if strict == want:
        return "correct", []
    if flexible == want:
        return "flexible_only", []
    if flexible is None:
        return "no_answer", []
    if strict is None and looks_truncated(generation):
        return "truncated", []
    answer = strict if strict is not None else flexible
    wrong = wrong_equations(generation)
    if wrong:
        return "arithmetic_error", wrong
    if answer in intermediate_results(reference, normalize) - {want}:
        return "intermediate_answer", []
    return "wrong_answer", []
