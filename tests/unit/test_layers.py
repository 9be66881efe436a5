"""The package's import graph: no cycles, and no layer imports one above it.

Function-level imports count: an import moved into a function to dodge a cycle is still a
cycle (it only fails later, at run time, and hides which layer depends on which). The layer
order is the one in docs/dev/contracts.md; a new module joins the layer of its package.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

CONTRACTS = SRC.parent / "docs" / "dev" / "contracts.md"


def _layers() -> list[set[str]]:
    """The layer order, lowest first, from the `layers` block of docs/dev/contracts.md.

    Each line names the packages (or top-level modules) of one layer; a module may import its
    own layer and any lower one.
    """
    text = CONTRACTS.read_text(encoding="utf-8")
    block = text.split("```layers\n", 1)[1].split("```", 1)[0]
    return [set(line.split()) for line in block.splitlines() if line.strip()]


LAYERS = _layers()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (SRC / "tunelab").rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every tunelab module `name` imports, at any depth of the file (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import submodule` depends on the submodule; `from mod import name` on mod.
            subs = [f"{module}.{alias.name}" for alias in node.names]
            targets = [t for t in subs if t in known] or [module]
            if len(targets) < len(subs):
                targets.append(module)
        for target in targets:
            # `import a.b.c` also runs a and a.b: the deepest known module is the edge.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("tunelab") and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"{module} belongs to no layer: add its package to the layers block of docs/dev/contracts.md")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_no_module_imports_a_higher_layer() -> None:
    graph = _graph()
    upward = sorted(
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, targets in graph.items()
        if a != "tunelab"
        for b in targets
        if b != "tunelab" and _layer(b) > _layer(a)
    )
    assert upward == []


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    """A cycle through an import inside a function is found (the checker is not blind to it)."""
    pkg = tmp_path / "tunelab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from tunelab import b\n")
    (pkg / "b.py").write_text("def f():\n    from tunelab.a import x\n")
    mods = {_module_name_in(tmp_path, p): p for p in pkg.rglob("*.py")}
    graph = {n: _imports(n, p, set(mods)) for n, p in mods.items()}
    assert _cycles(graph) == [["tunelab.a", "tunelab.b"]]


def _module_name_in(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
