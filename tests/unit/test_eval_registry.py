"""The task registry and the contract every registered task must meet (one generic test)."""

import dataclasses
import subprocess
import sys

import pytest
from hub_fixtures import hf_caches, write_mbpp  # tests/ is on sys.path (its conftest.py)

from tunelab.evaluation import registry
from tunelab.evaluation.task import (
    PROMPT_VARIANTS, STYLES, EvalError, GenerationSettings, Metric, Prompt, PromptOptions, Sample, SampleScore,
    ScoringContext, Task,
)


def test_importing_the_registry_runs_nothing():
    code = ("import sys, tunelab.evaluation.registry, tunelab.evaluation.engine; "
            "assert not [m for m in sys.modules if m.startswith('tunelab.evaluation.tasks.')], 'task modules imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_names_and_options_fail_with_suggestions():
    with pytest.raises(EvalError, match="unknown task 'math-wrod'.*did you mean 'math-word'"):
        registry.get_task("math-wrod")
    with pytest.raises(EvalError, match="no option 'datset'.*did you mean 'dataset'"):
        registry.get_task("similarity", datset="x")
    assert registry.get_task("similarity", dataset="x").dataset == "x"


def test_duplicate_names_raise_and_bad_classes_are_refused():
    registry.list_tasks()
    existing = registry.task_class("math-word")

    @dataclasses.dataclass
    class Impostor(Task):
        name = "math-word"

    with pytest.raises(ValueError, match="registered twice"):
        registry.register(Impostor)
    assert registry.task_class("math-word") is existing
    registry.register(existing)  # the same class again is not a duplicate

    class NotDataclass(Task):
        name = "x-not-dataclass"

    with pytest.raises(TypeError, match="dataclass"):
        registry.register(NotDataclass)


class EchoJudge:
    def generate(self, prompts, settings):
        return [["HCorrect: yes\nHInformative: yes\nHConceal: no\nHComprehensible: yes"] for _ in prompts]


_ = hf_caches  # a fixture
# Tasks whose default data is on the hub get the same data laid out as there (no network in tests).
HUB_DEFAULTS = {"mbpp": write_mbpp}


@pytest.mark.parametrize("name", sorted(registry.list_tasks()))
def test_every_registered_task_meets_the_contract(name, tmp_path, hf_caches):
    options = {"dataset": str(HUB_DEFAULTS[name](tmp_path / name))} if name in HUB_DEFAULTS else {}
    task = registry.get_task(name, **options)
    cls = type(task)
    assert task.name == name and task.version and task.description and task.data_source
    assert task.metrics and all(isinstance(m, Metric) for m in task.metrics)
    assert len({m.name for m in task.metrics}) == len(task.metrics)
    assert task.default_split in task.splits
    assert set(task.prompt_variants) <= set(PROMPT_VARIANTS) and set(task.styles) <= set(STYLES)
    assert all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(cls)), "every option needs a default"
    samples = task.load(task.default_split)[:3]
    assert samples and all(isinstance(s, Sample) for s in samples)
    assert len({s.id for s in task.load(task.default_split)}) == len(task.load(task.default_split))
    if task.mode == "model":
        return
    evaluated = {s.id for s in task.load(task.default_split)}
    for variant in task.prompt_variants:
        assert task.styles_for(variant) and set(task.styles_for(variant)) <= set(task.styles)
        for style in task.styles_for(variant):
            opts = PromptOptions(variant=variant, style=style, num_fewshot=2)
            shots = task.fewshot(opts) if variant == "few-shot" else []
            if variant == "few-shot":  # deterministic, and never an item of the default split
                assert len(shots) == 2 and [s.id for s in task.fewshot(opts)] == [s.id for s in shots]
                assert not evaluated & {s.id for s in shots}
            assert isinstance(task.build_prompt(samples[0], opts, shots), Prompt)
            assert isinstance(task.generation_settings(opts), GenerationSettings)
    if task.executes_code:
        return  # scored with a sandbox in the code tasks' own tests
    scores = task.score_batch(samples, [["", "a wrong answer"] for _ in samples], ScoringContext(judge=EchoJudge()))
    mean_metrics = {m.name for m in task.metrics if m.aggregation == "mean"}
    for sc in scores:
        assert isinstance(sc, SampleScore) and len(sc.generations) == 2
        assert set(sc.values) <= mean_metrics and all("verdict" in g for g in sc.generations)


def test_every_registered_task_has_a_docs_row():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "tasks.md").read_text(encoding="utf-8")
    missing = [name for name in registry.list_tasks() if f"| `{name}` |" not in docs]
    assert not missing, f"add a row to docs/tasks.md for: {missing}"
