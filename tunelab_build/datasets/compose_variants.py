"""Build `compose-deep` and `compose-diverse`: the same compose training problems, one solution
each (deep) or five different correct solutions each (diverse), with the same number of rows.

A stand-in for a "deep vs diverse" study (tune on one solution per problem, or on several
diverse solutions of fewer problems, and compare pass@1). Both come from the shipped `compose`
*training* split only, so compose's val and test stay clean for selecting and scoring:

- `deep`: K problems drawn (seeded) from compose train, each with compose's own reference
  (the one-line list comprehension or string chain): K rows.
- `diverse`: the first K/5 of those problems, each with five solutions written in different
  ways: K rows.

The five ways, on lists (`[filter] [map] reduce`) and on strings (`[case] [edit] output`):

    lists    comprehension  return sum([x * 3 for x in nums if x > 2])      (compose's reference)
             loop           total = 0 / for x in nums: / if ...: total += x * 3
             functional     return sum(map(lambda x: x * 3, filter(lambda x: x > 2, nums)))
             steps          kept = [...]; changed = [...]; return sum(changed)
             generator      return sum(x * 3 for x in nums if x > 2)
    strings  chain          return len(s.upper().replace('a', ''))         (compose's reference)
             steps          cased = s.upper(); edited = cased.replace(...); return len(edited)
             builtins       str.upper(s), ''.join(t.split('a')), ''.join(reversed(t)), t[:1] == 'a'
             chars          a list of characters, one comprehension per step
             loop           out = '' / for ch in s: / ch = ch.upper() / if ch != 'a': out += ch

A problem's parts and constants are read back from its reference and must re-render to it
exactly with compose's own code (`compose.expression`), so a variant can only differ in how
it is written. Before anything is written, every solution (deep and diverse) runs against its
problem's asserts and docstring example in a child process (`runner.run_jobs`); one failure
and nothing is written. Run:

    python -m tunelab_build.datasets.compose_variants
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from tunelab_build.datasets import DATASETS_DIR, compose, write_jsonl
from tunelab_build.datasets.runner import run_jobs

NAME = "compose-variants"
SEED = 0
K = 500  # rows of each dataset: K problems x 1 (deep), K / 5 problems x 5 (diverse)
WAYS = {"list": ("comprehension", "loop", "functional", "steps", "generator"),
        "str": ("chain", "steps", "builtins", "chars", "loop")}
CANONICAL = {"list": "comprehension", "str": "chain"}  # compose's own reference


# ---- reading a problem back ---------------------------------------------------------------------


def _pattern(template: str) -> str:
    """A compose code template as a regex capturing its constants."""
    out = re.escape(template)
    for name, rx in (("k", r"(?P<k>\d+)"), ("n", r"(?P<n>\d+)"), ("c", r"(?P<c>.)"), ("d", r"(?P<d>.)")):
        out = out.replace(re.escape("{" + name + "}"), rx)
    return out.replace(re.escape("{e}"), r".*")


def read_problem(problem: dict) -> tuple[str, dict[str, str], dict[str, dict], str]:
    """(kind, parts, constants, argument) of a compose problem, from its composition and its
    reference; checked by re-rendering the reference with compose's own code.

    Raises:
        ValueError: the reference is not what compose writes for these parts.
    """
    kind, spec = problem["composition"].split("/", 1)
    parts = dict(p.split(":") for p in spec.split("+"))
    table = compose.KINDS[kind][0]
    arg = re.search(r"\((\w+):", problem["prompt"]).group(1)
    line = problem["canonical_solution"].strip().removeprefix("return ")
    consts: dict[str, dict] = {}
    for slot, part in parts.items():
        code, need = table[slot][part][1], table[slot][part][2]
        if need:
            m = re.search(_pattern(code), line)
            if m is None:
                raise ValueError(f"{problem['task_id']}: no {slot}:{part} in {line!r}")
            consts[slot] = {k: (int(v) if k in "kn" else v) for k, v in m.groupdict().items()}
    if compose.expression(kind, parts, consts, arg) != line:
        raise ValueError(f"{problem['task_id']}: {line!r} does not re-render from {parts} {consts}")
    return kind, parts, consts, arg


# ---- five ways to write it ----------------------------------------------------------------------


def _list_solution(way: str, parts: dict[str, str], consts: dict[str, dict], arg: str) -> list[str]:
    def code(slot: str) -> str:
        return compose.LIST_PARTS[slot][parts[slot]][1].format(**consts.get(slot, {}))

    f = code("filter") if "filter" in parts else None
    m = code("map") if "map" in parts else None
    red = parts["reduce"]
    wrap = {"sum": "sum({})", "max": "max({})", "min": "min({})", "count": "len({})", "sorted": "sorted({})",
            "list": "{}"}[red]
    if way == "comprehension":
        return [f"return {compose.expression('list', parts, consts, arg)}"]
    if way == "generator":
        elem = "1" if red == "count" else (m or "x")
        gen = f"{elem} for x in {arg}" + (f" if {f}" if f else "")
        outer = {"count": "sum", "list": "list", "sorted": "sorted"}.get(red, red)
        return [f"return {outer}({gen})"]
    if way == "functional":
        it = arg
        if f:
            it = f"filter(lambda x: {f}, {it})"
        if m:
            it = f"map(lambda x: {m}, {it})"
        return [f"return {({'count': 'len(list({}))', 'list': 'list({})'}.get(red, wrap)).format(it)}"]
    if way == "steps":
        lines, last = [], arg
        if f:
            lines.append(f"kept = [x for x in {last} if {f}]")
            last = "kept"
        if m:
            lines.append(f"changed = [{m} for x in {last}]")
            last = "changed"
        return lines + [f"return {wrap.format(last)}"]
    # loop
    acc, start, update, end = {
        "sum": ("total", "total = 0", f"total += {m or 'x'}", "return total"),
        "count": ("count", "count = 0", "count += 1", "return count"),
    }.get(red, ("result", "result = []", f"result.append({m or 'x'})", None))
    if end is None:
        end = "result.sort()\nreturn result" if red == "sorted" else f"return {wrap.format('result')}"
    body = [f"if {f}:", f"    {update}"] if f else [update]
    return [start, f"for x in {arg}:", *(f"    {b}" for b in body), *end.split("\n")]


# Per string part, how each way writes it: {e} the value so far (a string, or for `chars` a list
# of characters), then the part's constants.
_STR_BUILTINS = {
    "upper": "str.upper({e})", "lower": "str.lower({e})", "reverse": "''.join(reversed({e}))",
    "remove": "''.join({e}.split('{c}'))", "replace": "'{d}'.join({e}.split('{c}'))", "first": "{e}[0:{n}]",
    "string": "{e}", "length": "len({e})", "count": "len({e}.split('{c}')) - 1", "starts": "{e}[:1] == '{c}'",
}
_STR_CHARS = {
    "upper": "[ch.upper() for ch in {e}]", "lower": "[ch.lower() for ch in {e}]", "reverse": "{e}[::-1]",
    "remove": "[ch for ch in {e} if ch != '{c}']", "replace": "['{d}' if ch == '{c}' else ch for ch in {e}]",
    "first": "{e}[:{n}]", "string": "''.join({e})", "length": "len({e})", "count": "{e}.count('{c}')",
    "starts": "''.join({e}).startswith('{c}')",
}
_STR_LOOP_EDIT = {None: "out += ch", "first": "out += ch", "reverse": "out = ch + out",
                  "remove": "if ch != '{c}':\n    out += ch", "replace": "out += '{d}' if ch == '{c}' else ch"}
_STR_LOOP_OUT = {"string": "out", "length": "len(out)", "count": "out.count('{c}')", "starts": "out.startswith('{c}')"}
_STEP_NAMES = {"case": "cased", "edit": "edited"}


def _str_solution(way: str, parts: dict[str, str], consts: dict[str, dict], arg: str) -> list[str]:
    slots = compose.KINDS["str"][1]

    def fill(template: str, slot: str, e: str) -> str:
        return template.format(e=e, **consts.get(slot, {}))

    if way == "chain":
        return [f"return {compose.expression('str', parts, consts, arg)}"]
    if way == "builtins":
        e = arg
        for slot in slots:
            if slot in parts:
                e = fill(_STR_BUILTINS[parts[slot]], slot, e)
        return [f"return {e}"]
    if way == "steps":
        lines, e = [], arg
        for slot in slots[:-1]:
            if slot in parts:
                lines.append(f"{_STEP_NAMES[slot]} = {fill(compose.STR_PARTS[slot][parts[slot]][1], slot, e)}")
                e = _STEP_NAMES[slot]
        return lines + [f"return {fill(compose.STR_PARTS['output'][parts['output']][1], 'output', e)}"]
    if way == "chars":  # a list of characters from the first line on
        lines = [] if "case" in parts else [f"chars = list({arg})"]
        for slot in slots[:-1]:
            if slot in parts:
                lines.append(f"chars = {fill(_STR_CHARS[parts[slot]], slot, 'chars' if lines else arg)}")
        return lines + [f"return {fill(_STR_CHARS[parts['output']], 'output', 'chars')}"]
    # loop
    edit = parts.get("edit")
    source = f"{arg}[:{consts['edit']['n']}]" if edit == "first" else arg
    body = ([f"ch = ch.{parts['case']}()"] if "case" in parts else []) + fill(_STR_LOOP_EDIT[edit], "edit", "").split("\n")
    return ["out = ''", f"for ch in {source}:", *(f"    {b}" for b in body),
            f"return {fill(_STR_LOOP_OUT[parts['output']], 'output', '')}"]


def solution(problem: dict, way: str) -> str:
    """The body of `problem`'s function written `way` (4-space indented lines)."""
    kind, parts, consts, arg = read_problem(problem)
    if way not in WAYS[kind]:
        raise ValueError(f"no way '{way}' for {kind} problems; ways: {', '.join(WAYS[kind])}")
    lines = (_list_solution if kind == "list" else _str_solution)(way, parts, consts, arg)
    body = "".join(f"    {line}\n" for line in lines)
    if way == CANONICAL[kind] and body != problem["canonical_solution"]:
        raise ValueError(f"{problem['task_id']}: the canonical way differs from compose's reference")
    return body


# ---- the two datasets ---------------------------------------------------------------------------


def _record(problem: dict, way: str, dataset: str) -> dict:
    # compose's HumanEval fields; `canonical_solution` is this row's solution.
    raw = {k: v for k, v in problem.items() if k not in ("split", "index")}
    return {**raw, "canonical_solution": solution(problem, way), "way": way,
            "row_id": f"{problem['task_id']}/{way}", "dataset": dataset}


def build(train: list[dict]) -> tuple[dict[str, list[dict]], dict]:
    """{"deep": rows, "diverse": rows} from compose's training problems, and the metadata."""
    order = list(train)
    random.Random(SEED).shuffle(order)
    deep_problems = order[:K]
    deep = [_record(p, CANONICAL[p["composition"].split("/")[0]], "deep") for p in deep_problems]
    diverse = [_record(p, way, "diverse") for p in deep_problems[: K // 5]
               for way in WAYS[p["composition"].split("/")[0]]]
    for p in deep_problems[: K // 5]:
        bodies = [r["canonical_solution"] for r in diverse if r["task_id"] == p["task_id"]]
        if len(set(bodies)) != len(bodies):
            raise RuntimeError(f"{p['task_id']}: two ways wrote the same solution")
    sets = {"deep": deep, "diverse": diverse}
    meta = {"seed": SEED, "k": K, "ways": WAYS, "from": "compose/train",
            "problems": {n: len({r["task_id"] for r in rows}) for n, rows in sets.items()},
            "rows": {n: len(rows) for n, rows in sets.items()},
            "kinds": {n: {k: sum(r["composition"].startswith(k + "/") for r in rows) for k in WAYS}
                      for n, rows in sets.items()}}
    return sets, meta


def verify(rows: list[dict]) -> None:
    """Run every solution against its problem's asserts and docstring example in child processes.

    Raises:
        RuntimeError: naming the first failures.
    """
    jobs = [{"id": f"{r['dataset']}:{r['row_id']}", "program": r["prompt"] + r["canonical_solution"], "test": r["test"],
             "entry_point": r["entry_point"], "doctest": True} for r in rows]
    results = run_jobs(jobs)
    bad = [(i, r.get("error")) for i, r in results.items() if not r.get("ok")]
    if bad or len(results) != len(jobs):
        raise RuntimeError(f"{len(bad)} solution(s) fail their problem's tests, e.g. {bad[:5]}")


def compose_train() -> list[dict]:
    """The shipped compose training problems (their files are pinned by compose's regenerate test)."""
    path = DATASETS_DIR / "compose" / "train.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATASETS_DIR / NAME)
    args = parser.parse_args()
    sets, meta = build(compose_train())
    # Deep rows are compose's references, checked when compose was built; diverse rows are new.
    verify(sets["deep"] + sets["diverse"])
    for name, rows in sets.items():
        print(name, write_jsonl(args.out / f"{name}.jsonl", rows))
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
