"""stdio: programs that read stdin and write stdout, in the LiveCodeBench format.

A problem has public and private test cases (`{input, output, testtype}`); the program passes
when its output matches on every one. Private tests may come compressed as in LiveCodeBench
(base64 of zlib of a pickled JSON string); they are decoded without unpickling anything:
the pickle's opcodes are read (`pickletools`) and only a lone string is accepted.

Outputs are compared line by line with whitespace normalised (trailing spaces and blank lines
ignored, tokens split on runs of whitespace) and a numeric tolerance of 1e-6 for tokens with a
decimal point or exponent. LiveCodeBench compares exactly (as Decimals), which fails correct
programs that print 0.30000000000000004 for 0.3; integers are still compared exactly here.

Only `stdin` tests are run; LeetCode-style `functional` problems are left out at load time.

Data: the built-in problems, a LiveCodeBench JSONL (`path`), or `dataset`:
`livecodebench/code_generation_lite` (or a folder holding its files) with `release_version`
naming the files as the dataset's `version_tag` configs do (`release_v5`: test.jsonl ..
test5.jsonl; `v5`: test5.jsonl only; `v4_v5`: test4.jsonl and test5.jsonl), read through
`tunelab.evaluation.hub` (`datasets` no longer runs the dataset's loading script, so its data
files are read directly); any other dataset in the same columns loads by config (`subset`).
The platform, difficulty and date filters run on those columns before the tests are decoded.
LiveCodeBench has only a test split; `val_release_version` (e.g. `v6` beside `release_v5`) reads
later releases, with the same filters, as a `val` split to choose checkpoints on.

Prompting baselines: chain-of-thought appends `prompts.COT_PROGRAM` (the program is the longest
```python block of the reply, the prose around it dropped); few-shot shots are the first
problems of the built-in train split (shipped with tunelab, also for a LiveCodeBench `path`),
answered with their reference solution as the training rows answer.
"""

from __future__ import annotations

import base64
import json
import math
import pickletools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import DataError
from tunelab.evaluation.task import (
    EvalError, GenerationSettings, Prompt, PromptOptions, Sample, SampleScore, ScoringContext,
)
from tunelab.evaluation.tasks.code_extract import extract_code
from tunelab.evaluation.tasks.prompts import COT_PROGRAM, VARIANTS, chat_prompt, distinct_shots, shots_for, with_cot
from tunelab.evaluation.tasks.humaneval import (
    NO_CODE, PassAtKTask, need_sandbox, pass_values, result_fields,
)

TOLERANCE = 1e-6
_FLOATY = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)$")


def outputs_match(got: str, expected: str, tol: float = TOLERANCE) -> bool:
    """Line-by-line comparison, whitespace-normalised (runs of spaces, trailing spaces and blank
    lines do not count), with numeric tolerance for tokens with a decimal point or exponent."""
    a = [ln.split() for ln in got.splitlines() if ln.strip()]
    b = [ln.split() for ln in expected.splitlines() if ln.strip()]
    return len(a) == len(b) and all(
        len(x) == len(y) and all(_tokens_match(s, t, tol) for s, t in zip(x, y)) for x, y in zip(a, b))


def _tokens_match(got: str, want: str, tol: float) -> bool:
    if got == want:
        return True
    if not (_FLOATY.match(got) or _FLOATY.match(want)):
        return False  # integers and words compare exactly ("007" is not "7")
    try:
        x, y = float(got), float(want)
    except ValueError:
        return False
    return math.isfinite(x) and math.isfinite(y) and math.isclose(x, y, rel_tol=tol, abs_tol=tol)


# ---- reading LiveCodeBench test cases --------------------------------------------------------------

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_HARMLESS_OPS = {"PROTO", "FRAME", "MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT", "STOP"}


def _pickled_string(data: bytes) -> str:
    """The string inside a pickle that holds only a string, read from its opcodes (never
    unpickled). Anything else in it (globals, reduce, objects) is refused."""
    found: list[str] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in _STRING_OPS and not found:
            found.append(arg if isinstance(arg, str) else arg.decode("utf-8"))
        elif op.name not in _HARMLESS_OPS:
            raise DataError(f"refusing a pickled test-case blob with opcode {op.name} (only a string is allowed)")
    if not found:
        raise DataError("pickled test-case blob holds no string")
    return found[0]


def decode_tests(value: Any) -> list[dict[str, Any]]:
    """Test cases from a list, a JSON string, or a compressed blob (base64 of zlib of a JSON
    string, or of a pickle of one as in LiveCodeBench)."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        decoded = json.loads(value)
        if isinstance(decoded, list):
            return decoded
    except ValueError:
        pass
    try:
        raw = zlib.decompress(base64.b64decode(value))
    except (ValueError, zlib.error) as e:
        raise DataError(f"test cases are neither JSON nor base64+zlib ({e})") from None
    text = raw.decode("utf-8") if raw[:1] in (b"[", b"{", b'"') else _pickled_string(raw)
    decoded = json.loads(text)
    if isinstance(decoded, str):  # a JSON string holding JSON
        decoded = json.loads(decoded)
    if not isinstance(decoded, list):
        raise DataError("decoded test cases are not a list")
    return decoded


def _problem(row: dict[str, Any]) -> dict[str, Any] | None:
    """The fields a sample keeps; None for problems that have non-stdin tests."""
    public = decode_tests(row.get("public_test_cases"))
    private_raw = row.get("private_test_cases_compressed") or row.get("private_test_cases")
    private = decode_tests(private_raw)
    tests = public + private
    if not tests or any(t.get("testtype", "stdin") != "stdin" for t in tests):
        return None
    return {
        "question_id": str(row.get("question_id", row.get("task_id"))), "question_title": row.get("question_title", ""),
        "question_content": row["question_content"], "starter_code": row.get("starter_code", ""),
        "platform": row.get("platform", ""), "difficulty": row.get("difficulty", ""),
        "contest_date": str(row.get("contest_date", "")), "instruction": row.get("instruction"),
        "inputs": [t["input"] for t in tests], "outputs": [t["output"] for t in tests], "n_public": len(public),
    }


LCB_FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
_RELEASE = re.compile(r"^(?:release_v(\d+)|release_latest|v(\d+)(?:_v(\d+))?)$")


def release_files(version: str) -> tuple[str, ...]:
    """The code_generation_lite files of a `version_tag`: `release_vN` (releases 1..N),
    `release_latest` (every release listed here: 1..6), `vN` (release N only), `vA_vB` (A..B)."""
    m = _RELEASE.match(version)
    if m is None:
        raise EvalError(f"task 'stdio': release_version '{version}' is not release_vN, release_latest, vN or "
                        "vA_vB (e.g. release_v5)")

    def name(i: int) -> str:
        return "test.jsonl" if i == 1 else f"test{i}.jsonl"

    if version == "release_latest":
        return LCB_FILES
    if m.group(1):
        return tuple(name(i) for i in range(1, int(m.group(1)) + 1))
    first, last = int(m.group(2)), int(m.group(3) or m.group(2))
    if not 1 <= first <= last:
        raise EvalError(f"task 'stdio': release_version '{version}' names no releases (A must be <= B)")
    return tuple(name(i) for i in range(first, last + 1))


# ---- the task ------------------------------------------------------------------------------------------


@dataclass
class StdioTask(PassAtKTask):
    """Built-in basic-python-stdio problems, a LiveCodeBench JSONL via `path`, or LiveCodeBench
    (livecodebench/code_generation_lite, a `release_version`) via `dataset`."""

    name = "stdio"
    version = "1"
    description = "stdin/stdout programs (LiveCodeBench format): all public + private tests must pass."
    data_source = ("builtin:basic-python-stdio (41 problems), a LiveCodeBench JSONL (path), or "
                   "livecodebench/code_generation_lite (dataset, release_version)")
    executes_code = True
    prompt_variants = VARIANTS
    styles = ("chat",)
    splits = ("train", "test")
    default_split = "test"
    fewshot_split = "train"  # of the built-in problems, whatever `path` says (see `fewshot`)
    generation = GenerationSettings(max_new_tokens=768)

    path: str | None = None  # a LiveCodeBench-format JSONL instead of the built-in problems
    platform: str | None = None  # keep problems of these platforms (comma-separated)
    difficulty: str | None = None  # keep these difficulties (comma-separated: easy,medium,hard)
    date_from: str | None = None  # keep contest_date >= this (ISO date, inclusive)
    date_to: str | None = None  # keep contest_date <= this (ISO date, inclusive)
    timeout_s: float = 30.0  # wall-clock per program, all its test cases together
    case_timeout_s: float = 6.0  # per test case
    dataset: str | None = None  # livecodebench/code_generation_lite, a folder of its files, or a dataset in its columns
    release_version: str | None = None  # code_generation_lite files: release_v5, v5, v4_v5, release_latest (default)
    subset: str | None = None  # config of a dataset read by config (not code_generation_lite)
    split_map: dict[str, str] = field(default_factory=dict)  # task split -> dataset split
    revision: str | None = None  # hub branch, tag or commit of `dataset`
    # code_generation_lite files read as a `val` split (same filters), e.g. v6 beside release_v5: later
    # problems than any test one, to choose checkpoints on (LiveCodeBench itself has only test)
    val_release_version: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.release_version is not None:
            release_files(self.release_version)  # a bad name fails when the task is made, not after a model loads
        if self.val_release_version is not None:
            shared = set(release_files(self.val_release_version)) & set(release_files(self.release_version or
                                                                                      "release_latest"))
            if shared:
                raise EvalError(f"task 'stdio': val_release_version '{self.val_release_version}' and release_version "
                                f"'{self.release_version or 'release_latest'}' share {', '.join(sorted(shared))}: the "
                                "val problems would be test problems; name releases after the test ones (e.g. v6 "
                                "beside release_v5)")
            self.splits = ("train", "val", "test")

    def load(self, split: str | None = None) -> list[Sample]:
        split = split or self.default_split
        if self.path is None and self.dataset is None:
            from tunelab.data.builtin import load_builtin

            rows = load_builtin("basic-python-stdio", split)
            self.record_data(split, {"source": "builtin:basic-python-stdio", "split": split, "rows": len(rows)})
        else:
            rows = self._load_rows(split)
        samples = []
        for row in rows:
            problem = _problem(row)
            if problem is not None and self._keep(problem):
                samples.append(Sample(problem["question_id"], problem))
        if not samples:
            raise EvalError(f"task 'stdio': no problems left after filtering ({self._filters()})")
        return samples

    def _load_rows(self, split: str) -> list[dict[str, Any]]:
        """Rows of a file, saved folder or dataset, filtered on the cheap columns first."""
        from tunelab.evaluation.hub import load_benchmark

        where = str(self.path or self.dataset)
        lcb = self.release_version is not None or Path(where).name == "code_generation_lite"
        if Path(where).is_file() or not lcb:
            if lcb:
                raise EvalError(f"task 'stdio': release_version names code_generation_lite files; {where} is a file")
            data = load_benchmark(self.name, path=self.path, dataset=self.dataset, subset=self.subset,
                                  split=self.split_map.get(split, split), revision=self.revision, keep=self._keep,
                                  keep_columns=("platform", "difficulty", "contest_date", "split"))
            rows = data.rows
            if data.provenance["source"] == "file" and split != self.default_split:
                rows = [r for r in rows if r.get("split", self.default_split) == split]  # a JSONL's own split column
        else:
            version = self.release_version or "release_latest"
            if split == "val" and self.val_release_version is not None:
                version = self.val_release_version
            elif split != self.default_split:
                raise EvalError(f"task 'stdio': LiveCodeBench has only a test split, not '{split}' (a val split: "
                                "val_release_version, releases after the test ones)")
            data = load_benchmark(self.name, path=self.path, dataset=self.dataset, revision=self.revision,
                                  files=release_files(version), keep=self._keep,
                                  keep_columns=("platform", "difficulty", "contest_date"))
            data.provenance["release_version"] = version
            rows = data.rows
        self.record_data(split, data.provenance)
        return rows

    def _keep(self, p: dict[str, Any]) -> bool:
        def listed(value: Any, allowed: str | None) -> bool:
            return allowed is None or str(value or "").lower() in {a.strip().lower() for a in allowed.split(",")}

        day = str(p.get("contest_date") or "")[:10]
        return (listed(p.get("platform"), self.platform) and listed(p.get("difficulty"), self.difficulty)
                and (self.date_from is None or day >= self.date_from[:10])
                and (self.date_to is None or day <= self.date_to[:10]))

    def _filters(self) -> str:
        f = {k: getattr(self, k) for k in ("path", "dataset", "release_version", "platform", "difficulty",
                                           "date_from", "date_to")}
        return ", ".join(f"{k}={v}" for k, v in f.items() if v is not None) or "no filters"

    def fewshot(self, opts: PromptOptions) -> list[Sample]:
        """The first `num_fewshot` built-in train problems with their reference solutions."""
        from tunelab.data.builtin import load_builtin

        pool = []
        for row in load_builtin("basic-python-stdio", "train"):
            problem = _problem(row)
            if problem is not None:
                pool.append(Sample(problem["question_id"], {**problem, "reference_solution": row["reference_solution"]}))
        return distinct_shots(pool, opts.num_fewshot)

    def build_prompt(self, sample: Sample, opts: PromptOptions, shots: Sequence[Sample] = ()) -> Prompt:
        return chat_prompt(with_cot(self.question(sample), opts, COT_PROGRAM), shots_for(opts, shots), self.question,
                           lambda s: s.data["reference_solution"])

    def question(self, sample: Sample) -> str:
        """The zero-shot chat question of one problem."""
        from tunelab.data.builtin import stdio_instruction

        # A row's own instruction (built-in training rows carry theirs) wins, so rows are asked as taught.
        text = sample.data.get("instruction") or stdio_instruction(sample.data)
        if sample.data.get("starter_code"):
            text += f"\n\nStart from:\n```python\n{sample.data['starter_code']}\n```"
        return text

    def score_batch(self, samples: Sequence[Sample], generations: Sequence[list[str]],
                    ctx: ScoringContext) -> list[SampleScore]:
        from tunelab.evaluation.sandbox import StdioJob

        sandbox = need_sandbox(ctx, self.name)
        jobs, where = [], []
        per_sample: list[list[dict[str, Any]]] = [[dict(NO_CODE) for _ in gens] for gens in generations]
        for i, (s, gens) in enumerate(zip(samples, generations, strict=True)):
            for j, g in enumerate(gens):
                program = extract_code(g)
                if program is not None:
                    jobs.append(StdioJob(program, tuple(s.data["inputs"]), tuple(s.data["outputs"]), outputs_match))
                    where.append((i, j))
        results = sandbox.run_many(jobs, timeout_s=self.timeout_s, case_timeout_s=self.case_timeout_s)
        for (i, j), res in zip(where, results, strict=True):
            per_sample[i][j] = {**result_fields(res), "tests_run": len(res.cases)}
        return [SampleScore(values=pass_values([g["passed"] for g in gens], self.pass_k), generations=gens,
                            extra={"tests": len(s.data["inputs"]), "public_tests": s.data["n_public"]})
                for s, gens in zip(samples, per_sample, strict=True)]


TASKS = (StdioTask,)
