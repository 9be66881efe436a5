"""The hand-written basic-python problems: one YAML file per family, one schema for every record.

`problems/<family>.yaml` holds a list of records such as

    - entry_point: sum_of_evens
      topic: lists
      description: Write a function that returns the sum of the even numbers in a list.
      code: |
        def sum_of_evens(nums: list) -> int:
            \"\"\"Return the sum of the even integers in nums.

            >>> sum_of_evens([1, 2, 3, 4])
            6
            \"\"\"
            return sum(n for n in nums if n % 2 == 0)
      tests:
      - assert candidate([1, 2, 3, 4]) == 6
      ...

`code` is the imports, then the function: signature, docstring with examples, body. The
HumanEval prompt is everything up to the end of the docstring; the rest is the canonical
solution. `tests` are the lines of `check(candidate)`, where `candidate` is the entry point:
one statement a line, at least four of them asserts. The families are read in `FAMILIES` order
and the task ids count through them, so new problems go at the end of the last family's file.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, ValidationInfo, field_validator

PROBLEMS_DIR = Path(__file__).resolve().parent / "problems"
# The order fixes the task ids.
FAMILIES = ("strings", "lists", "math", "dicts", "parsing")

OneLine = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"^[^\n]+$")]


class ProblemFileError(ValueError):
    """A problem file that cannot be read or has a record that breaks the schema."""


class Problem(BaseModel):
    """One hand-written problem; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry_point: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    topic: OneLine
    description: OneLine
    code: str
    tests: list[Annotated[str, StringConstraints(pattern=r"^\S[^\n]*$")]]

    @field_validator("code")
    @classmethod
    def _defines_entry_point_with_docstring(cls, code: str, info: ValidationInfo) -> str:
        try:
            tree = ast.parse(code)
        except SyntaxError as e:
            raise ValueError(f"does not parse: {e.msg} (line {e.lineno})") from None
        name = info.data.get("entry_point")
        if name is not None:  # else entry_point has its own error
            fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
            if fn is None:
                raise ValueError(f"defines no top-level function '{name}'")
            if ast.get_docstring(fn) is None:
                raise ValueError(f"'{name}' has no docstring (the prompt ends with it)")
        return code.strip("\n") + "\n"

    @field_validator("tests")
    @classmethod
    def _statements_with_asserts(cls, tests: list[str]) -> list[str]:
        try:
            ast.parse("\n".join(tests))
        except SyntaxError as e:
            raise ValueError(f"line {e.lineno} does not parse: {e.msg}") from None
        if sum(t.startswith("assert ") for t in tests) < 4:
            raise ValueError("needs at least four asserts")
        return tests


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        field = ".".join(str(x) for x in e["loc"])
        what = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"field '{field}': {what}")
    return "; ".join(parts)


def load_family(path: Path) -> list[Problem]:
    """Read and validate one problem file.

    Raises:
        ProblemFileError: unreadable YAML, not a list of records, or a record that breaks the
            schema; the message names the file, the problem and the field.
    """
    try:
        records = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ProblemFileError(f"{path}: cannot read problems: {e}") from None
    if not isinstance(records, list):
        raise ProblemFileError(f"{path}: expected a list of problem records, got {type(records).__name__}")
    problems = []
    for i, record in enumerate(records, 1):
        name = record.get("entry_point") if isinstance(record, dict) else None
        where = f"{path}: problem {i}" + (f" ({name})" if name else "")
        if not isinstance(record, dict):
            raise ProblemFileError(f"{where}: expected a mapping of fields, got {type(record).__name__}")
        try:
            problems.append(Problem.model_validate(record))
        except ValidationError as e:
            raise ProblemFileError(f"{where}: {_describe(e)}") from None
    return problems


def load_all(directory: Path = PROBLEMS_DIR) -> list[Problem]:
    """Every family's problems in task-id order.

    Raises:
        ProblemFileError: a file breaks the schema, or an entry point appears twice.
    """
    problems = [p for family in FAMILIES for p in load_family(directory / f"{family}.yaml")]
    names = [p.entry_point for p in problems]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ProblemFileError(f"{directory}: duplicate entry points: {dupes}")
    return problems
