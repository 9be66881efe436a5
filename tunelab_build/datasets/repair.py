"""Build `repair`: buggy variants of the basic-python canonical solutions, made by AST mutation.

Mutations are found on the AST but applied to the source text at the node's position, so that
a buggy program differs from the fixed one only where the bug is (no reformatting by
`ast.unparse`). Every candidate is checked to parse and to fail at least one of the problem's
tests; the tests run in child processes (`runner.run_jobs`), never in this process. Candidates
that only time out are dropped so that the shipped set can be re-checked quickly. Up to
`PER_PROBLEM` mutants per problem are kept, one per kind before any kind repeats.

Run (after `basic_python`, whose problems.jsonl this reads):

    python -m tunelab_build.datasets.repair
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tunelab_build.datasets import DATASETS_DIR, write_jsonl
from tunelab_build.datasets.runner import run_jobs

NAME = "repair"
PER_PROBLEM = 5
MUTANT_TIMEOUT_S = 1.0
# Kinds in the order they are preferred when choosing a problem's mutants: the rare ones first,
# so that a recursive problem gets its removed base case before a fourth operator swap.
KINDS = [
    "removed_base_case", "swapped_args", "bool_op", "wrong_init", "wrong_return",
    "off_by_one", "comparison", "negated_condition", "arithmetic",
]
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_CMP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
             ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
_ARITH_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.FloorDiv: ast.Mod,
               ast.Mod: ast.FloorDiv, ast.Div: ast.Mult, ast.Pow: ast.Mult}
_ARITH_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
               ast.Div: "/", ast.Pow: "**"}
# Calls whose swapped arguments make no realistic bug (commutative, or an empty `range`).
_NO_SWAP_CALLS = {"max", "min", "print", "isinstance", "set", "zip", "range"}


@dataclass
class Mutation:
    kind: str
    edits: list[tuple[int, int, str]]  # (start offset, end offset, replacement) in the program
    stmt: ast.stmt  # the statement the bug is in (for the hint's location)
    detail: str = ""  # e.g. "range", "index", "slice", a callee or variable name


class _Source:
    """Offsets of AST positions in one program text (ASCII, so columns are characters)."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0]
        for line in text.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.starts[node.lineno - 1] + node.col_offset,
                self.starts[node.end_lineno - 1] + node.end_col_offset)

    def seg(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.text[a:b]

    def between(self, left: ast.AST, right: ast.AST, token: str) -> tuple[int, int] | None:
        """Offsets of `token` in the text between two nodes (an operator), or None."""
        a, b = self.span(left)[1], self.span(right)[0]
        gap = self.text[a:b]
        core = gap.replace("(", " ").replace(")", " ").strip()
        if core != token:
            return None
        i = gap.index(token, len(gap) - len(gap.lstrip("() \n")))
        return a + i, a + i + len(token)


def apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _statements(fn: ast.FunctionDef) -> list[tuple[ast.stmt, ast.AST]]:
    """(innermost statement, node) for every node of the body below the docstring, skipping
    f-strings (whose inner positions are not reliable)."""
    pairs = []

    def visit(stmt: ast.stmt) -> None:
        stack = [c for c in ast.iter_child_nodes(stmt)]
        pairs.append((stmt, stmt))
        while stack:
            node = stack.pop()
            if isinstance(node, ast.JoinedStr):
                continue
            if isinstance(node, ast.stmt):
                visit(node)
                continue
            pairs.append((stmt, node))
            stack.extend(ast.iter_child_nodes(node))

    for stmt in fn.body[1:]:
        visit(stmt)
    return pairs


def _int_const(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _shift_int(src: _Source, node: ast.AST, stmt: ast.stmt, detail: str) -> list[Mutation]:
    """Off-by-one variants of an integer expression: c -> c +- 1; `x + 1` -> `x`; `x` -> `x + 1`."""
    a, b = src.span(node)
    if _int_const(node):
        return [Mutation("off_by_one", [(a, b, str(node.value + d))], stmt, detail) for d in (1, -1)]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _int_const(node.operand):
        return [Mutation("off_by_one", [(a, b, str(-node.operand.value + d))], stmt, detail) for d in (1, -1)]
    if (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)) and _int_const(node.right)
            and node.right.value == 1):
        return [Mutation("off_by_one", [(a, b, src.seg(node.left))], stmt, detail)]
    if isinstance(node, (ast.Name, ast.Call, ast.Attribute)):
        return [Mutation("off_by_one", [(b, b, " + 1")], stmt, detail)]
    return []


def _int_names(fn: ast.FunctionDef) -> set[str]:
    """Names that surely hold integers: `for i in range(...)` targets and names assigned an int
    constant, a `len(...)` or arithmetic on those (so `d[key]` on a dict is never shifted)."""
    names: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in ast.walk(fn):
            new: list[str] = []
            if (isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Call)
                    and isinstance(node.iter.func, ast.Name) and node.iter.func.id == "range"):
                new = [node.target.id]
            elif isinstance(node, ast.Assign) and _int_like(node.value, names):
                new = [t.id for t in node.targets if isinstance(t, ast.Name)]
            for name in new:
                if name not in names:
                    names.add(name)
                    changed = True
    return names


def _int_like(node: ast.AST, int_names: set[str]) -> bool:
    if _int_const(node):
        return True
    if isinstance(node, ast.Name):
        return node.id in int_names
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        return True
    if isinstance(node, ast.UnaryOp):
        return _int_like(node.operand, int_names)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.FloorDiv, ast.Mult)):
        return _int_like(node.left, int_names) and _int_like(node.right, int_names)
    return False


def find_mutations(program: str, entry_point: str) -> list[Mutation]:
    src = _Source(program)
    tree = ast.parse(program)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry_point)
    params = {a.arg for a in fn.args.args}
    local_names = sorted(params | {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
                                   and isinstance(n.ctx, ast.Store)})
    int_names = _int_names(fn)
    index_of: dict[int, str] = {}  # id(node) -> "index"/"slice" for the expressions inside brackets
    for sub in ast.walk(fn):
        if isinstance(sub, ast.Subscript):
            parts = [sub.slice.lower, sub.slice.upper] if isinstance(sub.slice, ast.Slice) else [sub.slice]
            for part in parts:
                for n in ast.walk(part) if part is not None else ():
                    index_of[id(n)] = "slice" if isinstance(sub.slice, ast.Slice) else "index"
    muts: list[Mutation] = []
    for stmt, node in _statements(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            for arg in node.args:
                muts += _shift_int(src, arg, stmt, "range")
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                for part in (node.slice.lower, node.slice.upper):
                    if part is not None:
                        muts += _shift_int(src, part, stmt, "slice")
            elif _int_const(node.slice) or _int_like(node.slice, int_names):
                muts += _shift_int(src, node.slice, stmt, "index")
        if isinstance(node, ast.Compare):
            # `n < 2` -> `n < 3` is a boundary bug; `n % 2 == 1` -> `== 2` is not a realistic one.
            parity = isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Mod)
            for op, comp in zip(node.ops, node.comparators):
                if _int_const(comp) and not (parity and isinstance(op, (ast.Eq, ast.NotEq))):
                    muts += _shift_int(src, comp, stmt, "bound")
            operands = [node.left] + node.comparators
            for i, op in enumerate(node.ops):
                pos = src.between(operands[i], operands[i + 1], _CMP_TEXT[type(op)])
                if pos:
                    muts.append(Mutation("comparison", [(*pos, _CMP_TEXT[_CMP_SWAP[type(op)]])], stmt))
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH_SWAP:
            strings = [n for n in (node.left, node.right) if isinstance(n, (ast.JoinedStr, ast.List))
                       or (isinstance(n, ast.Constant) and isinstance(n.value, str))]
            pos = src.between(node.left, node.right, _ARITH_TEXT[type(node.op)])
            if pos and not strings:
                # Inside an index (`nums[i - 1]` -> `nums[i + 1]`) this is a position bug.
                kind, detail = ("off_by_one", index_of[id(node)]) if id(node) in index_of else ("arithmetic", "")
                muts.append(Mutation(kind, [(*pos, _ARITH_TEXT[_ARITH_SWAP[type(node.op)]])], stmt, detail))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not _int_const(node.operand):
            muts.append(Mutation("arithmetic", [(*src.span(node), src.seg(node.operand))], stmt))  # lost sign
        if isinstance(node, ast.AugAssign) and type(node.op) in _ARITH_SWAP and not (
                isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            pos = src.between(node.target, node.value, _ARITH_TEXT[type(node.op)] + "=")
            if pos:
                muts.append(Mutation("arithmetic", [(*pos, _ARITH_TEXT[_ARITH_SWAP[type(node.op)]] + "=")], stmt))
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            pos = src.between(node.values[0], node.values[1], word)
            if pos:
                muts.append(Mutation("bool_op", [(*pos, "or" if word == "and" else "and")], stmt))
        if isinstance(node, (ast.If, ast.While, ast.IfExp)) and node is not None:
            test = node.test
            a, b = src.span(test)
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                new = src.seg(test.operand)
            elif isinstance(test, (ast.BoolOp, ast.IfExp, ast.NamedExpr)):
                new = f"not ({src.seg(test)})"
            else:
                new = f"not {src.seg(test)}"
            kind_word = {ast.If: "if", ast.While: "while", ast.IfExp: "conditional expression"}[type(node)]
            muts.append(Mutation("negated_condition", [(a, b, new)], stmt, kind_word))
        if isinstance(node, ast.Return) and node.value is not None:
            a, b = src.span(node.value)
            if isinstance(node.value, ast.Name):
                others = [n for n in local_names if n != node.value.id]
                if others:
                    alt = others[int(hashlib.sha256(src.seg(node).encode()).hexdigest(), 16) % len(others)]
                    muts.append(Mutation("wrong_return", [(a, b, alt)], stmt))
            elif isinstance(node.value, ast.Constant) and isinstance(node.value.value, bool):
                muts.append(Mutation("wrong_return", [(a, b, str(not node.value.value))], stmt))
        if (isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(x, ast.Starred) for x in node.args)
                and not (isinstance(node.func, ast.Name) and node.func.id in _NO_SWAP_CALLS)):
            x, y = node.args[0], node.args[1]
            if src.seg(x) != src.seg(y):
                callee = src.seg(node.func)
                muts.append(Mutation("swapped_args", [(*src.span(x), src.seg(y)), (*src.span(y), src.seg(x))],
                                     stmt, callee))
    # Initial values: `name = 0 / 1 / True / False` among the top-level statements.
    for stmt in fn.body[1:]:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Constant) and stmt.value.value in (0, 1) and
                type(stmt.value.value) in (int, bool)):
            value = stmt.value.value
            new = str(not value) if isinstance(value, bool) else str(1 - value)
            muts.append(Mutation("wrong_init", [(*src.span(stmt.value), new)], stmt, stmt.targets[0].id))
    # Base case of a recursion: the first top-level `if` whose body returns, deleted whole.
    recursive = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == entry_point
                    for n in ast.walk(fn))
    if recursive:
        for stmt in fn.body[1:]:
            if isinstance(stmt, ast.If) and not stmt.orelse and isinstance(stmt.body[-1], ast.Return):
                a = src.starts[stmt.lineno - 1]
                b = src.starts[stmt.end_lineno]
                muts.append(Mutation("removed_base_case", [(a, b, "")], stmt))
                break
    return muts


def _where(stmt: ast.stmt, line: int) -> str:
    if isinstance(stmt, ast.For):
        what = "the `for` loop"
    elif isinstance(stmt, ast.While):
        what = "the `while` loop"
    elif isinstance(stmt, ast.If):
        what = "the `if` statement"
    elif isinstance(stmt, ast.Return):
        what = "the `return` statement"
    elif isinstance(stmt, (ast.Assign, ast.AugAssign)):
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
        while isinstance(target, ast.Subscript):  # `groups[key]` could show the fixed index
            target = target.value
        what = f"the assignment to `{ast.unparse(target)}`"
    else:
        what = "the statement"
    return f"{what} on line {line}"


def hint_for(m: Mutation, entry_point: str, line: int) -> str:
    """A nudge toward the bug that names where to look, never what to change."""
    f, where = f"`{entry_point}`", _where(m.stmt, line)
    if m.kind == "off_by_one":
        return {
            "range": f"Look at the loop bounds in {f} ({where}).",
            "index": f"Check which position is accessed in {f} ({where}).",
            "slice": f"Check the slice boundaries in {f} ({where}).",
        }.get(m.detail, f"Check the boundary value used in {f} ({where}).")
    return {
        "comparison": f"One comparison in {f} is not quite right ({where}).",
        "arithmetic": f"Check the arithmetic in {f} ({where}).",
        "negated_condition": f"Re-read the condition in {where} of {f}: when should it hold?",
        "wrong_return": f"Check what {f} returns ({where}).",
        "removed_base_case": f"Think about when the recursion in {f} should stop.",
        "swapped_args": f"Check the order of the arguments passed to `{m.detail}` in {f} ({where}).",
        "bool_op": f"Check how the conditions are combined in {f} ({where}).",
        "wrong_init": f"Check the starting value of `{m.detail}` in {f}.",
    }[m.kind]


def candidates(problem: dict) -> list[dict]:
    """Every distinct, parseable mutant of one problem (not yet run)."""
    fixed = problem["prompt"] + problem["canonical_solution"]
    base = ast.dump(ast.parse(fixed))
    seen, out = set(), []
    for m in find_mutations(fixed, problem["entry_point"]):
        buggy = apply(fixed, m.edits)
        try:
            dump = ast.dump(ast.parse(buggy))
        except SyntaxError:
            continue
        if dump == base or buggy in seen:
            continue
        seen.add(buggy)
        line = fixed.count("\n", 0, min(e[0] for e in m.edits)) + 1
        out.append({
            "task_id": problem["task_id"],
            "mutation": m.kind,
            "buggy_code": buggy,
            "fixed_code": fixed,
            "hint": hint_for(m, problem["entry_point"], line),
            "test": problem["test"],
            "entry_point": problem["entry_point"],
            "line": line,
            "split": problem["split"],
        })
    return out


def _rank(row: dict) -> str:
    return hashlib.sha256(row["buggy_code"].encode()).hexdigest()


def choose(rows: list[dict], k: int = PER_PROBLEM) -> list[dict]:
    """Up to k mutants, one per kind (in KINDS order, a hash order within a kind) first."""
    by_kind = {kind: sorted((r for r in rows if r["mutation"] == kind), key=_rank) for kind in KINDS}
    chosen: list[dict] = []
    while len(chosen) < k and any(by_kind.values()):
        for kind in KINDS:
            if by_kind[kind] and len(chosen) < k:
                chosen.append(by_kind[kind].pop(0))
    return chosen


def build(problems: list[dict]) -> tuple[list[dict], dict]:
    """Verified mutants of every problem, plus statistics of the verification."""
    cands = [c for p in problems for c in candidates(p)]
    for i, c in enumerate(cands):
        c["mutant_id"] = f"{c['task_id']}/m{i}"
    jobs = [{"id": c["mutant_id"], "program": c["buggy_code"], "test": c["test"],
             "entry_point": c["entry_point"]} for c in cands]
    results = run_jobs(jobs, timeout=MUTANT_TIMEOUT_S)
    stats = {"candidates": len(cands), "equivalent": 0, "timeout": 0, "type_error": 0, "kept_pool": 0}
    pool: dict[str, list[dict]] = {}
    for c in cands:
        res = results[c["mutant_id"]]
        if res["ok"]:
            stats["equivalent"] += 1  # passes every test: not a bug these tests can see
        elif res["error"] in ("timeout", "child process died"):
            stats["timeout"] += 1
        elif c["mutation"] == "arithmetic" and res["error"].startswith("TypeError"):
            stats["type_error"] += 1  # `str - str`: a crash no one would write, not a bug to fix
        else:
            c["failure"] = res["error"].split(":")[0]
            pool.setdefault(c["task_id"], []).append(c)
            stats["kept_pool"] += 1
    rows = []
    for p in problems:
        for j, row in enumerate(choose(pool.get(p["task_id"], []))):
            row["mutant_id"] = f"{p['task_id']}/{j}"
            rows.append(row)
    return rows, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATASETS_DIR / NAME)
    args = parser.parse_args()
    path = DATASETS_DIR / "basic-python" / "problems.jsonl"
    problems = [json.loads(line) for line in path.read_text().splitlines()]
    rows, stats = build(problems)
    write_jsonl(args.out / "mutants.jsonl", rows)
    kinds = {k: sum(r["mutation"] == k for r in rows) for k in KINDS}
    stats.update({"shipped": len(rows), "by_kind": kinds,
                  "problems_without_mutant": sorted({p["task_id"] for p in problems} - {r["task_id"] for r in rows})})
    (args.out / "verification.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
