"""Mine `stdlib-instruct`: instruction -> function pairs from the Python standard library.

For every public top-level function, and every public method of a public top-level class, that
has a docstring, the instruction is "Write a Python function `sig` that <summary>." and the
output is the function's source without its docstring. The docstring's summary is already in the
instruction; leaving the docstring in the target would make the model spend much of its loss on
copying prose it was just given, and the point of this set is the code.

Splits are by top-level package (`json`, `email`, `os`, ...), the same module key the built-in
model's pretraining corpus uses. `test` is exactly the pretraining corpus's held-out modules, so
the built-in model never saw a test function's module in pretraining; `val` is a second hash
slice of the rest. Run:

    python -m tunelab_build.datasets.stdlib_instruct
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import sysconfig
import textwrap
from pathlib import Path

from tunelab_build.datasets import DATASETS_DIR, write_jsonl
from tunelab_build.pretrain.corpus import is_held_out, list_sources

NAME = "stdlib-instruct"
HELD_OUT_PERCENT = 4  # must match the pretraining recipe's `held_out_percent`
VAL_PERCENT = 6
TRAIN_CAP = 3000
MIN_BODY, MAX_BODY = 3, 40  # non-blank lines of the body, docstring excluded
MAX_NESTED = 8  # a nested def/class may have at most this many lines
SKIP_PARTS = {"test", "tests", "idlelib"}

# Imperative verbs whose third person is not just "+s" (the rest get "s"/"es" by rule).
_IRREGULAR = {"do": "does", "go": "goes", "undo": "undoes", "be": "is", "have": "has"}
# First words that are verbs in stdlib docstrings; anything else gets the neutral phrasing.
_VERBS = set(
    """return compute convert create make get set find add remove delete build parse format
    read write open close send receive check test try call run start stop load save copy move
    print emit encode decode escape unescape quote unquote split join strip replace generate
    yield update apply register unregister handle process search match compile translate
    insert append extend clear reset initialize install uninstall raise determine calculate
    construct produce fetch flush wrap unwrap push pop put mark mask validate verify ensure
    normalize normalise resolve render display show hide select sort filter map collect count
    iterate walk visit list lookup look transform extract pack unpack serialize deserialize
    dump dumps load loads release acquire wait notify signal shut shutdown connect disconnect
    bind listen accept close kill terminate cancel schedule submit register retrieve store
    prepare configure define declare detect guess infer decide tell determine indicate report
    log warn issue cause force allow enable disable toggle change modify fix adjust expand
    collapse reduce increase decrease limit truncate pad fill skip ignore drop keep use
    associate attach detach assign save restore restart refresh reload clean cleanup sanitize
    consume feed flatten merge combine concatenate compare query execute invoke perform turn
    destroy request ask fail draw disassemble take import override customize round arrange
    upgrade place block interpret divide shift spawn refactor wake instruct rotate pull
    transmit multiply invert reconfigure recalculate increment decrement reschedule dispatch
    seek edit isolate undefine assemble figure include reinitialize launch debug enter
    finalize unbind assert""".split()
)


def _third_person(verb: str) -> str:
    low = verb.lower()
    if low in _IRREGULAR:
        return _IRREGULAR[low]
    if re.search(r"(s|sh|ch|x|z)$", low):
        return low + "es"
    if re.search(r"[^aeiou]y$", low):
        return low[:-1] + "ies"
    return low + "s"


def summary_line(doc: str) -> str | None:
    """The first sentence of a docstring's first paragraph, or None if it is unusable."""
    para = textwrap.dedent(doc).strip().split("\n\n")[0]
    text = " ".join(para.split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    text = m.group(1) if m else text
    if not 10 <= len(text) <= 200 or "->" in text or not text.isascii():
        return None
    if text.startswith(">>>") or "deprecated" in text.lower():
        return None
    if re.match(r"^[\w.]+\(", text):  # C-style "S.join(iterable) -> str" signatures
        return None
    return text


def rephrase(summary: str) -> str:
    """'Return the size of X.' -> 'returns the size of X' (the clause after 'that')."""
    text = summary.rstrip(".!? ")
    first, _, rest = text.partition(" ")
    word = first.lower()
    if word in _VERBS:
        # "Flush and close the file" -> "flushes and closes the file"
        m = re.match(r"(and|or) (\w+)\b(.*)", rest)
        if m and m.group(2) in _VERBS:
            rest = f"{m.group(1)} {_third_person(m.group(2))}{m.group(3)}"
        clause = _third_person(word) + (" " + rest if rest else "")
    elif word.endswith("s") and (word[:-1] in _VERBS or word[:-2] in _VERBS or word[:-3] + "y" in _VERBS):
        clause = word + (" " + rest if rest else "")  # already "Returns ..."
    else:
        return f'matches this description: "{text}"'
    return clause


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    sig = f"{fn.name}({ast.unparse(fn.args)})"
    if fn.returns is not None:
        sig += f" -> {ast.unparse(fn.returns)}"
    return sig


def _nested_too_big(fn: ast.AST) -> bool:
    for node in ast.walk(fn):
        if node is not fn and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.end_lineno - node.lineno + 1 > MAX_NESTED:
                return True
    return False


def function_source(fn: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> str | None:
    """The function's source (decorators included) without its docstring, dedented."""
    doc = fn.body[0]
    start = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
    header_end = fn.body[0].lineno - 1  # last line before the docstring
    if doc.lineno <= fn.lineno or len(fn.body) < 2:
        return None  # docstring on the def line, or nothing but a docstring
    kept = lines[start - 1 : header_end] + lines[doc.end_lineno : fn.end_lineno]
    # Drop the blank lines the docstring left behind between the header and the code.
    head = header_end - start + 1
    while head < len(kept) and not kept[head].strip():
        del kept[head]
    src = textwrap.dedent("\n".join(kept)) + "\n"
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return None  # a multi-line string with less indentation than the def
    if len(tree.body) != 1 or not src.isascii():
        return None
    return src


def mine_file(relpath: str, text: str) -> list[dict]:
    """Instruction rows of one source file, in source order."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines = text.splitlines()
    module = relpath.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    found: list[tuple[ast.AST, str | None]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node, None))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.append((sub, node.name))
    rows = []
    for fn, cls in found:
        if fn.name.startswith("_"):
            continue
        doc = ast.get_docstring(fn, clean=True)
        summary = summary_line(doc) if doc else None
        if summary is None or _nested_too_big(fn):
            continue
        body = fn.body[1:]
        n_body = sum(1 for ln in lines[body[0].lineno - 1 : fn.end_lineno] if ln.strip()) if body else 0
        if not MIN_BODY <= n_body <= MAX_BODY:
            continue
        src = function_source(fn, lines)
        if src is None:
            continue
        kind = "async function" if isinstance(fn, ast.AsyncFunctionDef) else "function"
        if cls:
            kind = "async method" if kind.startswith("async") else "method"
            where = f" of class `{cls}`"
        else:
            where = ""
        instruction = f"Write a Python {kind} `{_signature(fn)}`{where} that {rephrase(summary)}."
        rows.append({
            "instruction": instruction,
            "input": "",
            "output": src,
            "module": module,
            "name": f"{cls}.{fn.name}" if cls else fn.name,
            "_key": ast.dump(ast.Module(body=body, type_ignores=[])),
        })
    return rows


def split_of(module_key: str) -> str:
    if is_held_out(module_key, HELD_OUT_PERCENT):
        return "test"
    digest = hashlib.sha256(f"{NAME}:val:{module_key}".encode()).hexdigest()
    return "val" if int(digest[:8], 16) % 100 < VAL_PERCENT else "train"


def _order(row: dict) -> str:
    return hashlib.sha256(f"{row['module']}:{row['name']}".encode()).hexdigest()


def build(root: Path | None = None, train_cap: int = TRAIN_CAP) -> dict[str, list[dict]]:
    """Mine every eligible file and return rows per split, deduplicated and capped."""
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    seen: set[str] = set()
    for f in list_sources(root):
        parts = f.relpath.split("/")
        if SKIP_PARTS & set(parts[:-1]) or parts[0].startswith("test"):
            continue
        try:
            text = f.path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for row in mine_file(f.relpath, text):
            key = row.pop("_key")
            if key in seen:
                continue
            seen.add(key)
            splits[split_of(f.module_key)].append(row)
    # Cap by a hash order (a spread over all modules, not the alphabetically first ones), then
    # sort the kept rows by module and name so that the files diff well.
    for name, rows in splits.items():
        if name == "train" and len(rows) > train_cap:
            rows = sorted(rows, key=_order)[:train_cap]
        splits[name] = sorted(rows, key=lambda r: (r["module"], r["name"]))
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATASETS_DIR / NAME)
    args = parser.parse_args()
    splits = build()
    for split, rows in splits.items():
        n = write_jsonl(args.out / f"{split}.jsonl", rows)
        print(f"{split}: {n} rows, {len({r['module'].split('.')[0] for r in rows})} packages")
    print(f"mined from Python {sysconfig.get_python_version()}")


if __name__ == "__main__":
    main()
