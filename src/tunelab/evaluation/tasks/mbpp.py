"""MBPP: write a short Python function from a one-line description; its asserts run in the sandbox.

Data (`dataset`, through `tunelab.evaluation.hub`): `google-research-datasets/mbpp` (the
default; configs `full`, the default, with `text`, `code`, `test_list`, `test_setup_code`,
`challenge_test_list`, splits train/test/validation/prompt; and `sanitized`, with `prompt`
and `test_imports`), `evalplus/mbppplus` (MBPP+: `test` holds EvalPlus's extra inputs; test
split), a folder laid out like either repository, or a `save_to_disk` folder.

The prompt is the description and one of its test asserts, as in the MBPP paper (the assert
names the function and shows how it is called). The program passes when the problem's tests
pass: `test_list` (after `test_setup_code` / `test_imports`), or MBPP+'s `test`; the
`challenge_test_list` is not used, as in the paper's results. The function's name (entry point)
is the first non-builtin function the first assert calls (the one the reference code defines).
Scored like HumanEval: pass@k with the unbiased estimator, a chat reply's fenced code or a
completion appended to the prompt (`code_extract.function_program`).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tunelab.evaluation.task import EvalError, GenerationSettings, Prompt, PromptOptions, Sample
from tunelab.evaluation.tasks.humaneval import HumanEvalTask

PROMPT = "You are an expert Python programmer, and here is your task: {text} Your code should pass this test:\n\n{test}"
CHAT_FORMAT = "Answer with the function in one ```python code block."
COMPLETION_STOPS = ("\nassert ", "\nprint(", "\nif __name__", '\n"""', "\n```")
_CHECK = "\n\n\ndef check(candidate):\n    pass  # the asserts above are the tests\n"


def entry_point(test: str, code: str = "") -> str | None:
    """The function a test assert checks: the first called name that is not a builtin, preferring
    one that the reference `code` defines (`assert set(f(x)) == ...` -> `f`)."""
    try:
        calls = [n.func.id for n in ast.walk(ast.parse(test)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    except SyntaxError:
        return None
    defined = set()
    try:
        defined = {n.name for n in ast.walk(ast.parse(code)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    except SyntaxError:
        pass
    named = [c for c in calls if not hasattr(builtins, c)]
    return next((c for c in named if c in defined), named[0] if named else None)


def problem(row: dict[str, Any], origin: str) -> dict[str, Any]:
    """The fields a sample keeps from an MBPP, MBPP-sanitized or MBPP+ row."""
    text = row.get("text") or row.get("prompt")
    tests = list(row.get("test_list") or [])
    if not isinstance(text, str) or not tests or "task_id" not in row:
        raise EvalError(f"{origin}: an MBPP row needs task_id, text (or prompt) and test_list; it has: "
                        f"{', '.join(sorted(row))}")
    code = str(row.get("code") or "")
    entry = entry_point(tests[0], code)
    if entry is None:
        raise EvalError(f"{origin}: no function call in the first test ({tests[0][:80]!r})")
    setup = "\n".join([*(row.get("test_imports") or []), str(row.get("test_setup_code") or "")]).strip()
    body = row["test"] if isinstance(row.get("test"), str) and row["test"].strip() else "\n".join(tests)
    prompt = f'"""\n{text.strip()}\n{tests[0].strip()}\n"""\n'
    return {"task_id": row["task_id"], "text": text.strip(), "shown_test": tests[0].strip(), "prompt": prompt,
            "entry_point": entry, "test": (setup + "\n\n" if setup else "") + body.rstrip() + _CHECK,
            "canonical_solution": code}


@dataclass
class MBPPTask(HumanEvalTask):
    """MBPP or MBPP+ problems from a dataset (default google-research-datasets/mbpp, config full)."""

    name = "mbpp"
    version = "1"
    description = "MBPP: write the function a one-line description asks for; its asserts run in the sandbox."
    data_source = ("google-research-datasets/mbpp (full: test 500; sanitized: test 257) or evalplus/mbppplus "
                   "(test 378), from the hub, a folder or a save_to_disk folder (dataset)")
    prompt_variants = ("zero-shot",)
    styles = ("chat", "completion")
    splits = ("test", "train", "validation", "prompt")
    default_split = "test"
    generation = GenerationSettings(max_new_tokens=512)

    dataset: str = "google-research-datasets/mbpp"  # or evalplus/mbppplus, a folder laid out like them, a saved folder
    subset: str | None = None  # config: default "full" for google-research-datasets/mbpp ("sanitized" is the other)
    split_map: dict[str, str] = field(default_factory=dict)  # task split -> dataset split
    revision: str | None = None  # hub branch, tag or commit of `dataset`

    def dataset_config(self) -> str | None:
        """The config read: `subset`, else `full` for the original MBPP."""
        return self.subset or ("full" if self.dataset.rstrip("/").endswith("google-research-datasets/mbpp") else None)

    def load(self, split: str | None = None) -> list[Sample]:
        from tunelab.evaluation.hub import load_benchmark

        split = split or self.default_split
        theirs = self.split_map.get(split, split)
        data = load_benchmark(self.name, dataset=self.dataset, subset=self.dataset_config(), split=theirs,
                              revision=self.revision)
        self.record_data(split, data.provenance)
        return [Sample(f"{data.name}/{row['task_id']}", problem(row, origin))
                for row, origin in zip(data.rows, data.origins, strict=True)]

    def build_prompt(self, sample: Sample, opts: PromptOptions, shots: Sequence[Sample] = ()) -> Prompt:
        if opts.style == "completion":
            return Prompt(text=sample.data["prompt"])
        text = PROMPT.format(text=sample.data["text"], test=sample.data["shown_test"])
        return Prompt(messages=[{"role": "user", "content": f"{text}\n\n{CHAT_FORMAT}"}])

    def generation_settings(self, opts: PromptOptions) -> GenerationSettings:
        if opts.style == "completion":
            return GenerationSettings(max_new_tokens=512, stop=COMPLETION_STOPS)
        return self.generation


TASKS = (MBPPTask,)
