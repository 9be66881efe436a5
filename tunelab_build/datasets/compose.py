"""Build `compose`: procedurally generated function-writing problems in HumanEval form.

Every problem composes parts from a small vocabulary, on lists of integers or on strings,
written as one plain sentence per part and as one line of code:

    lists   : [filter] [map] reduce       return R([M for x in nums if F])
    strings : [case] [edit] output        return O(s.C().E())

Held-out compositions: among all pairs of parts from different slots (filter:gt + map:mul,
map:square + reduce:max, ...) a seeded 30% is held out. Train and val problems contain no
held-out pair; every test problem contains at least one, so the model has seen each part in
training but never that pair together. Test problems also use other function names than
training. Argument names and constants come from one pool for all splits: with disjoint
constants the tiny model copies training numbers (held-out pass@1 fell to ~20%), and with
disjoint argument names it mangles the unseen name's tokens, which says nothing about
composition.

Each problem has a one-line reference solution and 4-7 asserts on inputs chosen so that the
reference's outputs are not all equal and every neighbour program (one part dropped, or
swapped for another of its slot) fails at least one: a solution must do every step. Before
writing, every reference runs against its asserts and its docstring example in a child
process (`runner.run_jobs`); one failure and nothing is written. Run:

    python -m tunelab_build.datasets.compose
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tunelab_build.datasets import DATASETS_DIR, write_jsonl
from tunelab_build.datasets.runner import run_jobs

NAME = "compose"
SEED = 0
SIZES = {"train": 2000, "val": 100, "test": 120}
HELD_FRAC = 0.3  # fraction of part pairs held out of training

# ---- the vocabulary ------------------------------------------------------------------------------
# slot -> part -> (phrase, code, constant it takes). {k} a number, {c}/{d} characters, {n} a count,
# {e} the expression so far.

LIST_PARTS = {
    "filter": {
        "even": ("keeps only the even numbers", "x % 2 == 0", None),
        "odd": ("keeps only the odd numbers", "x % 2 == 1", None),
        "positive": ("keeps only the positive numbers", "x > 0", None),
        "negative": ("keeps only the negative numbers", "x < 0", None),
        "gt": ("keeps only the numbers greater than {k}", "x > {k}", "k"),
        "lt": ("keeps only the numbers less than {k}", "x < {k}", "k"),
        "div": ("keeps only the numbers divisible by {k}", "x % {k} == 0", "k"),
        "nonzero": ("keeps only the numbers that are not zero", "x != 0", None),
    },
    "map": {
        "mul": ("multiplies each number by {k}", "x * {k}", "k"),
        "add": ("adds {k} to each number", "x + {k}", "k"),
        "sub": ("subtracts {k} from each number", "x - {k}", "k"),
        "abs": ("takes the absolute value of each number", "abs(x)", None),
        "square": ("squares each number", "x * x", None),
        "negate": ("negates each number", "-x", None),
    },
    "reduce": {
        "list": ("returns the numbers as a list", "[{e}]", None),
        "sum": ("returns their sum", "sum([{e}])", None),
        "max": ("returns the largest of them", "max([{e}])", None),
        "min": ("returns the smallest of them", "min([{e}])", None),
        "count": ("returns how many numbers there are", "len([{e}])", None),
        "sorted": ("returns them sorted from smallest to largest", "sorted([{e}])", None),
    },
}
STR_PARTS = {
    "case": {
        "upper": ("converts it to uppercase", "{e}.upper()", None),
        "lower": ("converts it to lowercase", "{e}.lower()", None),
    },
    "edit": {
        "reverse": ("reverses it", "{e}[::-1]", None),
        "remove": ("removes every '{c}'", "{e}.replace('{c}', '')", "c"),
        "replace": ("replaces every '{c}' with '{d}'", "{e}.replace('{c}', '{d}')", "cd"),
        "first": ("keeps its first {n} characters", "{e}[:{n}]", "n"),
    },
    "output": {
        "string": ("returns the result", "{e}", None),
        "length": ("returns its length", "len({e})", None),
        "count": ("returns how many times '{c}' appears in it", "{e}.count('{c}')", "c"),
        "starts": ("returns whether it starts with '{c}'", "{e}.startswith('{c}')", "c"),
    },
}
KINDS = {  # kind -> (parts, slots in code order (the last always present), argument type, intro)
    "list": (LIST_PARTS, ("filter", "map", "reduce"), "list[int]", "takes a list of integers"),
    "str": (STR_PARTS, ("case", "edit", "output"), "str", "takes a string"),
}
RETURNS = {"list": "list[int]", "sorted": "list[int]", "string": "str", "length": "int", "count": "int",
           "starts": "bool"}  # by the last part; int otherwise

# Function names: disjoint between train (and val) and test; a large training pool, so that
# copying the asked-for name is learnt rather than a list of names.
NAMES = {
    "train": ["process", "compute", "transform", "calc", "handle", "do_task", "apply_steps", "work",
              "evaluate", "convert", "make_result", "run_steps", "crunch", "reshape", "pipeline",
              "combine", "reduce_list", "total", "helper", "task", "clean", "prepare", "summarize",
              "measure", "scan", "walk", "mix", "shape", "adjust", "derive", "produce", "extract",
              "digest", "refine", "collect", "gather", "check_list", "tally", "fold", "step"],
    "test": ["solve", "answer", "get_result", "my_func", "find_value", "build", "f", "go", "execute",
             "operate", "calculate", "compose", "result", "apply", "do_it"],
}
# Shared by all splits (see the module docstring for why).
ARGS = {"list": ["nums", "values", "items", "data", "xs", "numbers", "arr", "lst", "seq"],
        "str": ["s", "text", "word", "string", "line", "phrase"]}
KS = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
NS = [2, 3, 4, 5, 6, 7]
CHARS = "aestoSTAEO inrluNRILU"

Consts = dict[str, dict]


@dataclass(frozen=True)
class Comp:
    """One composition: (slot, part) in code order, absent slots left out."""

    kind: str  # "list" | "str"
    parts: tuple[tuple[str, str], ...]

    def pairs(self) -> list[tuple[str, ...]]:
        names = [f"{s}:{p}" for s, p in self.parts]
        return [tuple(sorted(pair)) for pair in itertools.combinations(names, 2)]

    def key(self) -> str:
        return self.kind + "/" + "+".join(f"{s}:{p}" for s, p in self.parts)


def all_compositions() -> list[Comp]:
    """Every composition, minus those where a step cannot matter (a map before a count, a case
    change before a length)."""
    comps = []
    for kind, (table, slots, _, _) in KINDS.items():
        first, second, last = slots
        for a in [None, *table[first]]:
            for b in [None, *table[second]]:
                for c in table[last]:
                    if a is None and b is None:
                        continue
                    if kind == "list" and b is not None and c == "count":
                        continue
                    if kind == "str" and a is not None and b is None and c == "length":
                        continue
                    comps.append(Comp(kind, tuple((s, p) for s, p in zip(slots, (a, b, c)) if p is not None)))
    return comps


def valid_compositions(comps: list[Comp], tries: int = 20) -> list[Comp]:
    """The compositions that can make a problem at all: some are degenerate whatever the
    constants (reversing before taking a length: dropping the step changes nothing)."""
    rng = random.Random(12345)
    return [c for c in comps if any(make_problem(c, rng, "train", 0) for _ in range(tries))]


# ---- one concrete problem ---------------------------------------------------------------------------


def expression(kind: str, parts: dict[str, str], consts: Consts, arg: str) -> str:
    """The reference's return expression."""
    if kind == "list":
        def code(slot: str) -> str:
            return LIST_PARTS[slot][parts[slot]][1].format(**consts.get(slot, {}))
        elem = code("map") if "map" in parts else "x"
        inner = f"{elem} for x in {arg}" + (f" if {code('filter')}" if "filter" in parts else "")
        return LIST_PARTS["reduce"][parts["reduce"]][1].format(e=inner)
    e = arg
    for slot in KINDS["str"][1]:
        if slot in parts:
            e = STR_PARTS[slot][parts[slot]][1].format(e=e, **consts.get(slot, {}))
    return e


def _pick_consts(kind: str, parts: dict[str, str], rng: random.Random) -> Consts:
    consts: Consts = {}
    table = KINDS[kind][0]
    case = parts.get("case")
    for slot, name in parts.items():
        need = table[slot][name][2]
        if need == "k":
            consts[slot] = {"k": rng.choice(KS)}
        elif need == "n":
            consts[slot] = {"n": rng.choice(NS)}
        elif need is not None:  # characters; after a case step, one of that case
            pool = [ch for ch in CHARS if ch != " "] if need == "cd" else list(CHARS)
            if case == "upper":
                pool = [ch for ch in pool if not ch.islower()]
            elif case == "lower":
                pool = [ch for ch in pool if not ch.isupper()]
            c = rng.choice(pool)
            d = {"d": rng.choice([ch for ch in pool if ch.lower() != c.lower()])} if need == "cd" else {}
            consts[slot] = {"c": c, **d}
    # Counting (or testing the start) after a replace is half the time about the new letter, so
    # that the step matters.
    if kind == "str" and parts.get("output") in ("count", "starts") and parts.get("edit") == "replace":
        if rng.random() < 0.5:
            consts["output"] = {"c": consts["edit"]["d"]}
    return consts


def _input(kind: str, rng: random.Random, consts: Consts) -> list[int] | str:
    if kind == "list":
        n = rng.randint(0, 8)
        hi = 12 if any("k" in v and v["k"] >= 7 for v in consts.values()) else 9
        return [rng.randint(-hi, hi) for _ in range(n)]
    letters = "abcdeghilmnoprstuyABEHINORSTU"
    chars = [v.get(x) for v in consts.values() for x in ("c", "d") if v.get(x)]
    out = []
    for _ in range(rng.randint(0, 10)):
        r = rng.random()
        if chars and r < 0.3:  # the problem's own characters, sometimes in the other case
            ch = rng.choice(chars)
            out.append(ch if rng.random() < 0.7 else ch.swapcase())
        elif r < 0.4:
            out.append(" ")
        else:
            out.append(rng.choice(letters))
    return "".join(out)


def _function(expr: str, arg: str) -> Callable:
    # Our own one-line expressions, built from the tables above (not model output); the shipped
    # references are checked again in a child process before anything is written.
    return eval(f"lambda {arg}: {expr}")  # noqa: S307


def _outcome(f: Callable, x: object) -> tuple[str, object]:
    try:
        return ("ok", f(x))
    except Exception as e:  # max/min of an empty list
        return ("err", type(e).__name__)


def _neighbours(comp: Comp, consts: Consts) -> list[tuple[dict[str, str], Consts]]:
    """Programs one part away: a part dropped (not the last slot) or replaced by another part of
    its slot (with the same constants where it takes the same kind)."""
    table, slots = KINDS[comp.kind][0], KINDS[comp.kind][1]
    parts = dict(comp.parts)
    out = []
    for slot in slots:
        if slot not in parts:
            continue
        if slot != slots[-1]:
            out.append(({k: v for k, v in parts.items() if k != slot}, consts))
        for other, (_, _, need) in table[slot].items():
            if other == parts[slot]:
                continue
            c = dict(consts)
            have = consts.get(slot, {})
            if need == "k":
                c[slot] = {"k": have.get("k", 3)}
            elif need == "n":
                c[slot] = {"n": have.get("n", 3)}
            elif need is not None:
                c[slot] = {"c": have.get("c", "a"), "d": have.get("d", "b")}
            out.append(({**parts, slot: other}, c))
    return out


def _choose_inputs(ref: Callable, neighbours: list[Callable], draw: Callable) -> list:
    """Inputs the reference handles, until its outputs vary and every neighbour failed one."""
    inputs, seen, alive = [], set(), list(neighbours)
    for _ in range(400):
        x = draw()
        if repr(x) in seen:
            continue
        status, y = _outcome(ref, x)
        if status != "ok":
            continue
        killed = [g for g in alive if _outcome(g, x) != ("ok", y)]
        if killed or len(inputs) < 5:
            inputs.append(x)
            seen.add(repr(x))
            alive = [g for g in alive if g not in killed]
        if not alive and len(inputs) >= 5 and len({repr(ref(i)) for i in inputs}) > 1:
            break
        if len(inputs) >= 7:
            break
    if alive or len({repr(ref(i)) for i in inputs}) <= 1 or len(inputs) < 4:
        return []
    return inputs


def make_problem(comp: Comp, rng: random.Random, split: str, index: int) -> dict | None:
    """One problem of `comp` (None: this draw of constants is degenerate, draw again)."""
    table, _, argtype, intro = KINDS[comp.kind]
    parts = dict(comp.parts)
    consts = _pick_consts(comp.kind, parts, rng)
    name = rng.choice(NAMES["test" if split == "test" else "train"])
    arg = rng.choice(ARGS[comp.kind])
    expr = expression(comp.kind, parts, consts, arg)
    ret = RETURNS.get(parts[KINDS[comp.kind][1][-1]], "int")
    ref = _function(expr, arg)
    neighbours = []
    for p, c in _neighbours(comp, consts):
        try:
            neighbours.append(_function(expression(comp.kind, p, c, arg), arg))
        except Exception:  # a neighbour that does not even build is no threat
            pass
    inputs = _choose_inputs(ref, neighbours, lambda: _input(comp.kind, rng, consts))
    if not inputs:
        return None
    phrases = [table[s][p][0].format(**consts.get(s, {})) for s, p in comp.parts]
    steps = ", ".join(phrases[:-1]) + (", and " if len(phrases) > 1 else "") + phrases[-1]
    example = next((i for i in inputs if len(i) > 0), inputs[0])  # a nonempty docstring example
    # No backticks round the name: "`go(" tokenizes the name without its leading space, unlike
    # "def go(" in the answer, and the tiny model then writes "defgo(" for names it never saw.
    return {
        "task_id": f"compose/{split}/{index}",
        "prompt": (f"def {name}({arg}: {argtype}) -> {ret}:\n    \"\"\"{intro[0].upper() + intro[1:]}, {steps}.\n\n"
                   f"    >>> {name}({example!r})\n    {ref(example)!r}\n    \"\"\"\n"),
        "entry_point": name,
        "canonical_solution": f"    return {expr}\n",
        "test": "\n\ndef check(candidate):\n" + "".join(f"    assert candidate({i!r}) == {ref(i)!r}\n" for i in inputs),
        "description": f"Write a function {name}({arg}) that {intro}, {steps}.",
        "signature": f"def {name}({arg}):",
        "composition": comp.key(),
    }


# ---- the split and the files ------------------------------------------------------------------------


def split_compositions(comps: list[Comp], rng: random.Random) -> tuple[list[Comp], list[Comp], set]:
    """(train compositions, test compositions, held-out pairs): pairs are held out in a seeded
    order while every part keeps >= 3 training compositions."""
    pairs = sorted({p for c in comps for p in c.pairs()})
    order = list(pairs)
    rng.shuffle(order)
    held: set[tuple[str, ...]] = set()
    for pair in order:
        if len(held) >= round(HELD_FRAC * len(pairs)):
            break
        trial = held | {pair}
        counts: dict[tuple[str, str], int] = {}
        for c in comps:
            if not set(c.pairs()) & trial:
                for p in c.parts:
                    counts[p] = counts.get(p, 0) + 1
        if all(counts.get(p, 0) >= 3 for c in comps for p in c.parts):
            held = trial
    train = [c for c in comps if not set(c.pairs()) & held]
    test = [c for c in comps if set(c.pairs()) & held]
    return train, test, held


def sample_problems(comps: list[Comp], n: int, rng: random.Random, split: str, taken: set[str]) -> list[dict]:
    """n problems cycling through `comps` in shuffled rounds; a description already in `taken`
    (any split) is drawn again, so no two problems anywhere share one."""
    out: list[dict] = []
    order: list[Comp] = []
    for _ in range(50 * n):
        if len(out) == n:
            return out
        if not order:
            order = list(comps)
            rng.shuffle(order)
        p = make_problem(order.pop(), rng, split, len(out))
        if p is not None and p["description"] not in taken:
            taken.add(p["description"])
            out.append(p)
    if len(out) < n:
        raise RuntimeError(f"could not make {n} {split} problems")
    return out


def build() -> tuple[dict[str, list[dict]], dict]:
    """The three splits (test drawn first) and the metadata (held-out pairs, counts)."""
    rng = random.Random(SEED)
    comps = valid_compositions(all_compositions())
    train_c, test_c, held = split_compositions(comps, rng)
    unseen = {p for c in test_c for p in c.parts} - {p for c in train_c for p in c.parts}
    if unseen:
        raise RuntimeError(f"parts never seen in training: {sorted(unseen)}")
    taken: set[str] = set()
    splits = {"test": sample_problems(test_c, SIZES["test"], rng, "test", taken),
              "train": sample_problems(train_c, SIZES["train"], rng, "train", taken),
              "val": sample_problems(train_c, SIZES["val"], rng, "val", taken)}
    meta = {
        "seed": SEED, "held_frac": HELD_FRAC,
        "compositions": {"all": len(comps), "train": len(train_c), "test": len(test_c)},
        "held_out_pairs": sorted("+".join(p) for p in held),
        "counts": {s: len(rows) for s, rows in splits.items()},
        "kinds": {s: {k: sum(p["composition"].startswith(k + "/") for p in rows) for k in KINDS}
                  for s, rows in splits.items()},
    }
    return splits, meta


def verify(problems: list[dict]) -> None:
    """Run every reference against its asserts and docstring example in child processes.

    Raises:
        RuntimeError: naming the first failures.
    """
    jobs = [{"id": p["task_id"], "program": p["prompt"] + p["canonical_solution"], "test": p["test"],
             "entry_point": p["entry_point"], "doctest": True} for p in problems]
    results = run_jobs(jobs)
    bad = [(i, r.get("error")) for i, r in results.items() if not r.get("ok")]
    if bad or len(results) != len(jobs):
        raise RuntimeError(f"{len(bad)} reference solution(s) fail their tests, e.g. {bad[:5]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATASETS_DIR / NAME)
    args = parser.parse_args()
    splits, meta = build()
    verify([p for rows in splits.values() for p in rows])
    for split in ("train", "val", "test"):
        print(split, write_jsonl(args.out / f"{split}.jsonl", splits[split]))
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
