"""Build `ts-instruct`: English instructions -> short TypeScript functions, generated.

A stand-in for the instruction sets of a "code language shift" study (tune a Python-leaning
model on English -> TypeScript pairs and ask whether its next tokens turn into TypeScript). Like
`compose`, every task composes parts from a small vocabulary, here written in TypeScript:

    arrays  : [filter] [map] reduce     xs.filter((x) => F).map((x) => M) + R
    strings : [case] [edit] output      s.toUpperCase().slice(0, n).length

in one of four layouts, which the instruction names: a chained `return`, an arrow function
assigned to a `const`, one `const` per step, or a `for...of` loop (arrays reduced to a sum or a
count in a `let`, or to an array in a `const`).

Nothing here runs TypeScript. Every part has a small Python re-implementation with
JavaScript's semantics (`x % 2 !== 0` for odd numbers, `Math.max` of the kept numbers) that
computes the instruction's example; `check(row)` rebuilds a row from its fields (composition,
constants, layout, name, argument) and compares the code, the example and the instruction, and
checks that the code is balanced and uses only this generator's tokens. `build` checks every
row before anything is written; the unit tests check the shipped rows again. Run:

    python -m tunelab_build.datasets.ts_instruct
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from pathlib import Path

from tunelab_build.datasets import DATASETS_DIR, write_jsonl

NAME = "ts-instruct"
SEED = 0
SIZES = {"test": 60, "val": 60, "train": 1500}  # drawn in this order

# ---- the vocabulary: slot -> part -> (phrase, TypeScript, Python with JS semantics, constant) ------
# {k} a number, {n} a count, {c}/{d} characters; TypeScript code of a map/filter is about `x`,
# of a reduce/string part about the expression so far {e}.

Py = Callable[..., object]
LIST_PARTS: dict[str, dict[str, tuple[str, str, Py, str | None]]] = {
    "filter": {
        "even": ("keeps only the even numbers", "x % 2 === 0", lambda x: x % 2 == 0, None),
        "odd": ("keeps only the odd numbers", "x % 2 !== 0", lambda x: x % 2 != 0, None),
        "positive": ("keeps only the positive numbers", "x > 0", lambda x: x > 0, None),
        "negative": ("keeps only the negative numbers", "x < 0", lambda x: x < 0, None),
        "gt": ("keeps only the numbers greater than {k}", "x > {k}", lambda x, k: x > k, "k"),
        "lt": ("keeps only the numbers less than {k}", "x < {k}", lambda x, k: x < k, "k"),
        "div": ("keeps only the numbers divisible by {k}", "x % {k} === 0", lambda x, k: x % k == 0, "k"),
        "nonzero": ("keeps only the numbers that are not zero", "x !== 0", lambda x: x != 0, None),
    },
    "map": {
        "mul": ("multiplies each number by {k}", "x * {k}", lambda x, k: x * k, "k"),
        "add": ("adds {k} to each number", "x + {k}", lambda x, k: x + k, "k"),
        "sub": ("subtracts {k} from each number", "x - {k}", lambda x, k: x - k, "k"),
        "abs": ("takes the absolute value of each number", "Math.abs(x)", abs, None),
        "square": ("squares each number", "x * x", lambda x: x * x, None),
        "negate": ("negates each number", "-x", lambda x: -x, None),
    },
    "reduce": {
        "list": ("returns the numbers as an array", "{e}", list, None),
        "sum": ("returns their sum", "{e}.reduce((acc, x) => acc + x, 0)", sum, None),
        "max": ("returns the largest of them", "Math.max(...{e})", max, None),
        "min": ("returns the smallest of them", "Math.min(...{e})", min, None),
        "count": ("returns how many numbers there are", "{e}.length", len, None),
        "sorted": ("returns them sorted from smallest to largest", "{e}.sort((a, b) => a - b)", sorted, None),
        "label": ("returns the text \"count: \" followed by how many there are", "`count: ${{{e}.length}}`",
                  lambda v: f"count: {len(v)}", None),
    },
}
STR_PARTS: dict[str, dict[str, tuple[str, str, Py, str | None]]] = {
    "case": {
        "upper": ("converts it to uppercase", "{e}.toUpperCase()", str.upper, None),
        "lower": ("converts it to lowercase", "{e}.toLowerCase()", str.lower, None),
    },
    "edit": {
        "reverse": ("reverses it", '{e}.split("").reverse().join("")', lambda s: s[::-1], None),
        "remove": ("removes every \"{c}\"", '{e}.replaceAll("{c}", "")', lambda s, c: s.replace(c, ""), "c"),
        "replace": ("replaces every \"{c}\" with \"{d}\"", '{e}.replaceAll("{c}", "{d}")',
                    lambda s, c, d: s.replace(c, d), "cd"),
        "first": ("keeps its first {n} characters", "{e}.slice(0, {n})", lambda s, n: s[:n], "n"),
    },
    "output": {
        "string": ("returns the result", "{e}", str, None),
        "length": ("returns its length", "{e}.length", len, None),
        "count": ("returns how many times \"{c}\" appears in it", '{e}.split("{c}").length - 1',
                  lambda s, c: s.count(c), "c"),
        "starts": ("returns whether it starts with \"{c}\"", '{e}.startsWith("{c}")', lambda s, c: s.startswith(c), "c"),
        "wrap": ("returns it wrapped in square brackets", "`[${{{e}}}]`", lambda s: f"[{s}]", None),
    },
}
KINDS = {  # kind -> (parts, slots in order (the last always present), TypeScript type, intro)
    "list": (LIST_PARTS, ("filter", "map", "reduce"), "number[]", "takes an array of numbers"),
    "str": (STR_PARTS, ("case", "edit", "output"), "string", "takes a string"),
}
RETURNS = {"list": "number[]", "sorted": "number[]", "label": "string", "string": "string", "wrap": "string",
           "starts": "boolean"}  # by the last part; number otherwise
LAYOUTS = {
    "chain": "Return a single chained expression.",
    "arrow": "Write it as an arrow function assigned to a const.",
    "steps": "Store the result of each step in a const.",
    "loop": "Use a for...of loop.",
}
LOOP_REDUCES = ("sum", "count", "list")  # the reduces a loop layout writes
STEP_NAMES = {"filter": "kept", "map": "mapped", "case": "cased", "edit": "edited"}

NAMES = {
    "train": ["process", "compute", "transform", "calc", "handleItems", "applySteps", "runSteps", "work",
              "evaluate", "convert", "makeResult", "crunch", "reshape", "pipeline", "combine", "total",
              "helper", "task", "clean", "prepare", "summarize", "measure", "scan", "walk", "mix", "adjust",
              "derive", "produce", "extract", "digest", "refine", "collect", "gather", "tally", "fold", "step"],
    "test": ["solve", "answer", "getResult", "myFunc", "findValue", "build", "go", "execute", "operate",
             "calculate", "compose", "result", "apply", "doIt"],
}
ARGS = {"list": ["nums", "values", "items", "data", "xs", "numbers", "arr", "list"],
        "str": ["s", "text", "word", "str", "line", "phrase"]}
KS = [2, 3, 4, 5, 6, 7, 8, 9, 10]
NS = [2, 3, 4, 5]
CHARS = "aestoAEST inrl"
LETTERS = "abcdeghilmnoprstuyABEHINORSTU"

# Every token a reference may contain (the grammar check): TypeScript keywords and names used
# above, the layouts' variable names, operators and brackets; plus numbers, one-character
# string literals, template strings, and the row's own function and argument names.
WORDS = {"function", "return", "const", "let", "for", "of", "if", "number", "string", "boolean", "x", "a", "b",
         "acc", "total", "count", "out", "push", "filter", "map", "reduce", "sort", "length", "Math", "abs", "max",
         "min", "toUpperCase", "toLowerCase", "split", "reverse", "join", "replaceAll", "slice", "startsWith",
         *STEP_NAMES.values()}
TOKEN = re.compile(r'\s+|(?P<template>`[^`]*`)|(?P<str>"[^"\\]*")|(?P<num>\d+)|(?P<word>[A-Za-z_]\w*)|'
                   r"(?P<op>===|!==|=>|\+=|\.\.\.|[-+*%<>=(){}\[\]:;,.])|(?P<bad>.)")
PAIRS = {")": "(", "]": "[", "}": "{"}


# ---- one task -----------------------------------------------------------------------------------


def render(kind: str, parts: dict[str, str], consts: dict[str, dict], layout: str, name: str, arg: str) -> str:
    """The TypeScript reference of one task."""
    table, slots, argtype, _ = KINDS[kind]
    ret = RETURNS.get(parts[slots[-1]], "number")

    def step(slot: str, e: str) -> str:
        """One part applied to the expression so far (filter and map take an arrow callback)."""
        code = table[slot][parts[slot]][1].format(e=e, **consts.get(slot, {}))
        return f"{e}.{slot}((x) => {code})" if slot in ("filter", "map") else code

    if layout == "loop":
        return _render_loop(parts, consts, name, arg, ret)
    if layout == "steps":
        lines, e = [], arg
        for slot in slots[:-1]:
            if slot in parts:
                lines.append(f"  const {STEP_NAMES[slot]} = {step(slot, e)};")
                e = STEP_NAMES[slot]
        body = "\n".join(lines) + f"\n  return {step(slots[-1], e)};"
        return f"function {name}({arg}: {argtype}): {ret} {{\n{body}\n}}"
    e = arg
    for slot in slots[:-1]:
        if slot in parts:
            e = step(slot, e)
    expr = step(slots[-1], e)
    if layout == "arrow":
        return f"const {name} = ({arg}: {argtype}): {ret} =>\n  {expr};"
    return f"function {name}({arg}: {argtype}): {ret} {{\n  return {expr};\n}}"


def _render_loop(parts: dict[str, str], consts: dict[str, dict], name: str, arg: str, ret: str) -> str:
    def code(slot: str) -> str:
        return LIST_PARTS[slot][parts[slot]][1].format(**consts.get(slot, {}))

    value = code("map") if "map" in parts else "x"
    reduce = parts["reduce"]
    acc, start, update = {"sum": ("total", "let total = 0;", f"total += {value};"),
                          "count": ("count", "let count = 0;", "count += 1;"),
                          "list": ("out", "const out: number[] = [];", f"out.push({value});")}[reduce]
    inner = [update] if "filter" not in parts else [f"if ({code('filter')}) {{", f"  {update}", "}"]
    body = [start, f"for (const x of {arg}) {{", *(f"  {line}" for line in inner), "}", f"return {acc};"]
    return f"function {name}({arg}: number[]): {ret} {{\n" + "\n".join(f"  {line}" for line in body) + "\n}"


def evaluate(kind: str, parts: dict[str, str], consts: dict[str, dict], value: list[int] | str) -> object:
    """What the reference returns for `value`, by the Python re-implementation of each part."""
    table, slots, _, _ = KINDS[kind]

    def fn(slot: str) -> Callable:
        f, need = table[slot][parts[slot]][2], table[slot][parts[slot]][3]
        args = [consts[slot][ch] for ch in need] if need else []
        return lambda v: f(v, *args)

    if kind == "list":
        kept = [x for x in value if fn("filter")(x)] if "filter" in parts else list(value)
        mapped = [fn("map")(x) for x in kept] if "map" in parts else kept
        return fn("reduce")(mapped)
    for slot in slots:
        if slot in parts:
            value = fn(slot)(value)
    return value


def js(value: object) -> str:
    """A value as TypeScript writes it (arrays, numbers, strings in double quotes, booleans)."""
    return json.dumps(value)


def instruction(kind: str, parts: dict[str, str], consts: dict[str, dict], layout: str, name: str, arg: str,
                example: list[int] | str) -> str:
    table, _, _, intro = KINDS[kind]
    phrases = [table[s][p][0].format(**consts.get(s, {})) for s, p in parts.items()]
    steps = ", ".join(phrases[:-1]) + (", and " if len(phrases) > 1 else "") + phrases[-1]
    out = js(evaluate(kind, parts, consts, example))
    return (f"Write a TypeScript function {name}({arg}) that {intro}, {steps}. {LAYOUTS[layout]} "
            f"For example, {name}({js(example)}) returns {out}.")


def compositions() -> list[tuple[str, dict[str, str]]]:
    """Every (kind, parts) in slot order; at least one step before the last, and no step whose
    effect the last one hides (a map before a count, a case change before a length)."""
    out = []
    for kind, (table, (first, second, last), _, _) in KINDS.items():
        for a in [None, *table[first]]:
            for b in [None, *table[second]]:
                for c in table[last]:
                    if (a is None and b is None) or (kind == "list" and b is not None and c in ("count", "label")):
                        continue
                    if kind == "str" and a is not None and b not in ("remove", "replace") and c == "length":
                        continue
                    parts = {s: p for s, p in zip((first, second, last), (a, b, c)) if p is not None}
                    out.append((kind, parts))
    return out


def _consts(kind: str, parts: dict[str, str], rng: random.Random) -> dict[str, dict]:
    table = KINDS[kind][0]
    consts: dict[str, dict] = {}
    for slot, part in parts.items():
        need = table[slot][part][3]
        if need == "k":
            consts[slot] = {"k": rng.choice(KS)}
        elif need == "n":
            consts[slot] = {"n": rng.choice(NS)}
        elif need:  # characters; after a case step, one of that case
            pool = [ch for ch in CHARS if ch != " "] if need == "cd" else list(CHARS)
            if parts.get("case") == "upper":
                pool = [ch for ch in pool if not ch.islower()]
            elif parts.get("case") == "lower":
                pool = [ch for ch in pool if not ch.isupper()]
            c = rng.choice(pool)
            consts[slot] = {"c": c} if need == "c" else {"c": c, "d": rng.choice([x for x in pool if x.lower() != c.lower()])}
    return consts


def _example(kind: str, parts: dict[str, str], consts: dict[str, dict], rng: random.Random) -> list[int] | str | None:
    """An input whose steps all show: some numbers kept and some dropped by a filter, a non-empty
    array for max/min, a string that holds the characters the task names."""
    for _ in range(50):
        if kind == "list":
            value: list[int] | str = [rng.randint(-9, 12) for _ in range(rng.randint(3, 6))]
            if "filter" in parts:
                keep = LIST_PARTS["filter"][parts["filter"]]
                args = [consts["filter"]["k"]] if keep[3] else []
                kept = [x for x in value if keep[2](x, *args)]
                if not kept or len(kept) == len(value):
                    continue
        else:
            chars = [v for c in consts.values() for k, v in c.items() if k in "cd"]
            out = []
            for _ in range(rng.randint(4, 9)):
                if chars and rng.random() < 0.3:  # the task's own characters, sometimes in the other case
                    ch = rng.choice(chars)
                    out.append(ch if rng.random() < 0.7 else ch.swapcase())
                else:
                    out.append(rng.choice(LETTERS))
            value = "".join(out)
            if chars and chars[0] not in value:
                continue
        return value
    return None


def make_task(kind: str, parts: dict[str, str], rng: random.Random, split: str, index: int) -> dict | None:
    layouts = [x for x in LAYOUTS if x != "loop" or (kind == "list" and parts["reduce"] in LOOP_REDUCES)]
    layout = rng.choice(layouts)
    consts = _consts(kind, parts, rng)
    name = rng.choice(NAMES["test" if split == "test" else "train"])
    arg = rng.choice(ARGS[kind])
    example = _example(kind, parts, consts, rng)
    if example is None:
        return None
    slots = KINDS[kind][1]
    return {
        "id": f"{NAME}/{split}/{index}",
        "instruction": instruction(kind, parts, consts, layout, name, arg, example),
        "output": render(kind, parts, consts, layout, name, arg),
        "kind": kind,
        "composition": kind + "/" + "+".join(f"{s}:{parts[s]}" for s in slots if s in parts),
        "consts": {s: consts[s] for s in slots if s in consts},
        "layout": layout,
        "name": name,
        "arg": arg,
        "example_input": example,
        "example_output": evaluate(kind, parts, consts, example),
    }


# ---- checks -------------------------------------------------------------------------------------


def tokens(code: str) -> list[tuple[str, str]]:
    """(kind, text) of every non-space token of a reference, by this generator's grammar."""
    return [(m.lastgroup, m.group()) for m in TOKEN.finditer(code) if m.lastgroup]


def check(row: dict) -> list[str]:
    """What is wrong with one row (empty: nothing): it must rebuild from its own fields, and its
    code must be balanced and made of this generator's tokens only."""
    problems = []
    kind = row["kind"]
    parts = dict(p.split(":") for p in row["composition"].split("/", 1)[1].split("+"))
    if row["output"] != render(kind, parts, row["consts"], row["layout"], row["name"], row["arg"]):
        problems.append("code does not rebuild from the composition")
    if row["example_output"] != evaluate(kind, parts, row["consts"], row["example_input"]):
        problems.append("example output is not what the parts compute")
    if row["instruction"] != instruction(kind, parts, row["consts"], row["layout"], row["name"], row["arg"],
                                         row["example_input"]):
        problems.append("instruction does not rebuild from the fields")
    stack = []
    code = row["output"]
    inside = [t for tmpl in re.findall(r"`[^`]*`", code) for t in re.findall(r"\$\{([^{}]*)\}", tmpl)]
    for tag, text in tokens(code) + [t for e in inside for t in tokens(e)]:
        if tag == "bad" or (tag == "word" and text not in WORDS | {row["name"], row["arg"]}):
            problems.append(f"token outside the grammar: {text!r}")
        elif tag == "str" and len(text) > 3:
            problems.append(f"string literal longer than one character: {text}")
        elif tag == "op" and text in "([{":
            stack.append(text)
        elif tag == "op" and text in PAIRS and (not stack or stack.pop() != PAIRS[text]):
            problems.append(f"unbalanced {text!r}")
    if stack:
        problems.append(f"unclosed {''.join(stack)!r}")
    if not row["output"].startswith(("function ", "const ")) or not row["output"].endswith(("}", ";")):
        problems.append("not one function declaration or const")
    return problems


# ---- the splits ---------------------------------------------------------------------------------


def build() -> dict[str, list[dict]]:
    """The three splits: tasks cycling through the compositions in shuffled rounds, test first;
    no instruction occurs twice in or across splits, test function names are not training's."""
    rng = random.Random(SEED)
    comps = compositions()
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {}
    for split, size in SIZES.items():
        rows: list[dict] = []
        order: list[tuple[str, dict[str, str]]] = []
        for _ in range(50 * size):
            if len(rows) == size:
                break
            if not order:
                order = list(comps)
                rng.shuffle(order)
            task = make_task(*order.pop(), rng, split, len(rows))
            if task is not None and task["instruction"] not in seen:
                seen.add(task["instruction"])
                rows.append(task)
        if len(rows) < size:
            raise RuntimeError(f"could not make {size} {split} tasks")
        splits[split] = rows
    bad = [(r["id"], p) for rows in splits.values() for r in rows for p in check(r)]
    if bad:
        raise RuntimeError(f"{len(bad)} malformed task(s), e.g. {bad[:5]}")
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATASETS_DIR / NAME)
    args = parser.parse_args()
    splits = build()
    for split in ("train", "val", "test"):
        print(split, write_jsonl(args.out / f"{split}.jsonl", splits[split]))


if __name__ == "__main__":
    main()
