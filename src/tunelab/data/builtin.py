"""Built-in datasets: the registry, training rows, and raw benchmark problems.

Every dataset ships as JSONL under `tunelab/builtin/datasets/<dir>/` beside a `CARD.md` that
says where it comes from and which `python -m tunelab_build.datasets.<module>` rebuilt it (the
builders live in the repository, outside the installed package). Nothing is read at import;
each call reads its file.

- `load_builtin(name, split)` returns rows for fine-tuning: alpaca (`instruction`, `input`,
  `output`) plus an `id` and the dataset's raw fields, so a row can be traced to its problem.
- `load_problems(name, split)` returns the raw records in their benchmark's own shape
  (HumanEval, LiveCodeBench, GSM8K, ...) for the evaluation layer.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tunelab.errors import DataError, did_you_mean

Row = dict[str, Any]

REPAIR_INSTRUCTION = "Fix the bug in this function:"
HINT_INSTRUCTION = (
    "This function has a bug. Write a short hint that helps a student find it, without giving "
    "away the fix:"
)
STDIO_INSTRUCTION = (
    "Write a Python program that solves the problem below. It reads from standard input and "
    "writes to standard output."
)


@dataclass(frozen=True)
class BuiltinDataset:
    """One entry of the registry.

    `problems(split)` returns raw records (split None = all); `to_row(record)` turns one raw
    record into a training row. `formats` lists the training format first, then the raw one.
    """

    name: str
    description: str
    directory: str  # folder under builtin/datasets/, where CARD.md is
    splits: tuple[str, ...]
    formats: tuple[str, ...]
    problems: Callable[[str | None], list[Row]]
    to_row: Callable[[Row], Row]


_REGISTRY: dict[str, BuiltinDataset] = {}


def _register(ds: BuiltinDataset) -> None:
    if ds.name in _REGISTRY:
        raise ValueError(f"built-in dataset '{ds.name}' is registered twice")
    _REGISTRY[ds.name] = ds


def datasets_dir() -> Path:
    """The folder holding the shipped dataset folders."""
    return Path(str(resources.files("tunelab").joinpath("builtin", "datasets")))


def _read_jsonl(relpath: str) -> list[Row]:
    path = datasets_dir() / relpath
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"built-in data file missing or unreadable: {path} ({e.strerror})") from None
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _split_files(directory: str, splits: tuple[str, ...]) -> Callable[[str | None], list[Row]]:
    """Records stored one file per split, <directory>/<split>.jsonl; each gets `split`, `index`."""
    def load(split: str | None) -> list[Row]:
        return [{**row, "split": s, "index": i} for s in (splits if split is None else (split,))
                for i, row in enumerate(_read_jsonl(f"{directory}/{s}.jsonl"))]
    return load


def _one_split(relpath: str, split: str) -> Callable[[str | None], list[Row]]:
    """Records stored in one file that holds a single split; each gets `split` and `index`."""
    def load(_: str | None) -> list[Row]:  # `_lookup` has checked the split
        return [{**row, "split": split, "index": i} for i, row in enumerate(_read_jsonl(relpath))]
    return load


def _split_field(relpath: str) -> Callable[[str | None], list[Row]]:
    """Records stored in one file with a `split` field each."""
    def load(split: str | None) -> list[Row]:
        return [row for row in _read_jsonl(relpath) if split is None or row["split"] == split]
    return load


def _fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


# ---- training rows ---------------------------------------------------------------------------


def _alpaca(raw: Row, instruction: str, output: str, row_id: str) -> Row:
    # The raw fields first, so that the alpaca fields and the id always win.
    return {**raw, "instruction": instruction, "input": "", "output": output, "id": row_id}


def _stdlib_row(r: Row) -> Row:
    return _alpaca(r, r["instruction"], r["output"], f"{r['module']}.{r['name']}")


def _function_row(p: Row) -> Row:
    signature = next(line for line in p["prompt"].splitlines() if line.startswith("def "))
    instruction = f"{p['description']}\n\nUse this signature: `{signature.rstrip(':')}`"
    return _alpaca(p, instruction, p["prompt"] + p["canonical_solution"], p["task_id"])


def stdio_instruction(problem: Row) -> str:
    """The instruction of a stdin/stdout problem (LiveCodeBench fields), as training rows and the
    `stdio` task both word it."""
    return f"{STDIO_INSTRUCTION}\n\n{problem['question_content']}"


def _stdio_row(p: Row) -> Row:
    return _alpaca(p, stdio_instruction(p), p["reference_solution"], p["question_id"])


def math_instruction(problem: Row) -> str:
    """The instruction of a GSM8K-style problem (`question`), as training rows and the
    `math-word` task's default prompt both word it: the question alone."""
    return problem["question"]


def _math_row(p: Row) -> Row:
    return _alpaca(p, math_instruction(p), p["answer"], f"math-word/{p['split']}/{p['index']}")


def compose_instruction(problem: Row) -> str:
    """The instruction of a compose problem, as training rows and the `compose` task both word
    it: the one-sentence description, which names the function and its argument."""
    return problem["description"]


def _compose_row(p: Row) -> Row:
    # The answer starts from the plain signature the instruction names, not the typed prompt.
    return _alpaca(p, compose_instruction(p), f"{p['signature']}\n{p['canonical_solution']}", p["task_id"])


def _variant_row(p: Row) -> Row:
    # As a compose row; one problem has several rows in compose-diverse, told apart by `row_id`.
    return _alpaca(p, compose_instruction(p), f"{p['signature']}\n{p['canonical_solution']}", p["row_id"])


def _ts_row(r: Row) -> Row:
    return _alpaca(r, r["instruction"], r["output"], r["id"])


def _repair_row(m: Row) -> Row:
    return _alpaca(m, f"{REPAIR_INSTRUCTION}\n\n{_fenced(m['buggy_code'])}", m["fixed_code"], m["mutant_id"])


def _hint_row(m: Row) -> Row:
    return _alpaca(m, f"{HINT_INSTRUCTION}\n\n{_fenced(m['buggy_code'])}", m["hint"], m["mutant_id"])


# ---- the registry: every built-in dataset, in one place --------------------------------------

for _ds in (
    BuiltinDataset(
        "stdlib-instruct",
        "Instruction -> function pairs mined from the Python standard library, split by package.",
        "stdlib-instruct", ("train", "val", "test"), ("alpaca",),
        _split_files("stdlib-instruct", ("train", "val", "test")), _stdlib_row,
    ),
    BuiltinDataset(
        "basic-python",
        "125 small Python problems written for tunelab (HumanEval fields); rows ask for the function.",
        "basic-python", ("train", "test"), ("alpaca", "humaneval"),
        _split_field("basic-python/problems.jsonl"), _function_row,
    ),
    BuiltinDataset(
        "basic-python-stdio",
        "Stdin/stdout versions of basic-python problems (LiveCodeBench fields); rows ask for a program.",
        "basic-python", ("train", "test"), ("alpaca", "livecodebench"),
        _split_field("basic-python/stdio.jsonl"), _stdio_row,
    ),
    BuiltinDataset(
        "math-word",
        "Procedural GSM8K-style word problems with worked, annotated solutions ending in '#### n'.",
        "math-word", ("train", "test"), ("alpaca", "gsm8k"),
        _split_files("math-word", ("train", "test")), _math_row,
    ),
    BuiltinDataset(
        "compose",
        "Generated function problems composed from parts (HumanEval fields); test holds out part pairs.",
        "compose", ("train", "val", "test"), ("alpaca", "humaneval"),
        _split_files("compose", ("train", "val", "test")), _compose_row,
    ),
    BuiltinDataset(
        "compose-deep",
        "500 compose training problems with one solution each (compose's reference); pairs with compose-diverse.",
        "compose-variants", ("train",), ("alpaca", "humaneval"),
        _one_split("compose-variants/deep.jsonl", "train"), _variant_row,
    ),
    BuiltinDataset(
        "compose-diverse",
        "100 of compose-deep's problems with five differently written, tested solutions each (500 rows).",
        "compose-variants", ("train",), ("alpaca", "humaneval"),
        _one_split("compose-variants/diverse.jsonl", "train"), _variant_row,
    ),
    BuiltinDataset(
        "ts-instruct",
        "Generated English instructions -> short TypeScript functions; a stand-in for language-shift studies.",
        "ts-instruct", ("train", "val", "test"), ("alpaca",),
        _split_files("ts-instruct", ("train", "val", "test")), _ts_row,
    ),
    BuiltinDataset(
        "repair",
        "Buggy variants of basic-python solutions (AST mutations); rows ask for the fixed function.",
        "repair", ("train", "test"), ("alpaca", "repair"),
        _split_field("repair/mutants.jsonl"), _repair_row,
    ),
    BuiltinDataset(
        "repair-hint",
        "The repair bugs again; rows ask for a short hint that points at the bug without the fix.",
        "repair", ("train", "test"), ("alpaca", "repair"),
        _split_field("repair/mutants.jsonl"), _hint_row,
    ),
):
    _register(_ds)


# ---- public API ------------------------------------------------------------------------------


def list_builtin() -> dict[str, dict]:
    """Every built-in dataset: name -> {description, splits, formats, card}."""
    return {
        name: {
            "description": ds.description,
            "splits": list(ds.splits),
            "formats": list(ds.formats),
            "card": str(datasets_dir() / ds.directory / "CARD.md"),
        }
        for name, ds in _REGISTRY.items()
    }


def _lookup(name: str, split: str | None) -> BuiltinDataset:
    ds = _REGISTRY.get(name)
    if ds is None:
        names = list(_REGISTRY)
        raise DataError(f"unknown built-in dataset '{name}'{did_you_mean(name, names)}; "
                        f"available: {', '.join(names)}")
    if split is not None and split not in ds.splits:
        raise DataError(f"built-in dataset '{name}' has no split '{split}'{did_you_mean(split, ds.splits)}; "
                        f"its splits are: {', '.join(ds.splits)}")
    return ds


def load_builtin(name: str, split: str = "train") -> list[Row]:
    """Training rows of a built-in dataset: alpaca fields, an `id`, and the raw fields.

    Raises:
        DataError: unknown dataset or split (with the closest name and the choices).
    """
    ds = _lookup(name, split)
    return [ds.to_row(p) for p in ds.problems(split)]


def load_problems(name: str, split: str | None = None) -> list[Row]:
    """Raw records of a built-in dataset in their benchmark's shape; split None = all splits.

    basic-python: HumanEval (task_id, prompt, entry_point, canonical_solution, test).
    basic-python-stdio: LiveCodeBench (question_content, public/private_test_cases, ...); decode
    `private_test_cases_compressed` with `decode_private_tests`, never with pickle.
    math-word: GSM8K (question, answer, final). compose: HumanEval plus description, signature,
    composition; compose-deep / compose-diverse the same, `canonical_solution` being the row's
    solution, plus `way` and `row_id`. ts-instruct: instruction, output (TypeScript) and the
    fields it was generated from. repair / repair-hint: the mutants.

    Raises:
        DataError: unknown dataset or split.
    """
    return _lookup(name, split).problems(split)


def decode_private_tests(blob: str) -> list[dict]:
    """Decode `private_test_cases_compressed`: base64 of zlib of a JSON string (no pickle)."""
    return json.loads(zlib.decompress(base64.b64decode(blob)).decode("utf-8"))
