"""EvalContext: the sandbox, the judge and every model session are closed, also when a task raises."""

from __future__ import annotations

import dataclasses

import pytest

from tunelab.config import EvalConfig, validate_config
from tunelab.evaluation import registry
from tunelab.evaluation.context import EvalContext
from tunelab.evaluation.engine import evaluate_run
from tunelab.evaluation.samples_file import score_samples_file
from tunelab.evaluation.task import EvalError, Metric, Prompt, Sample, SampleScore, Task

EXP = validate_config({"model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"builtin": "math-word"}]}})


class Box:
    """A fake sandbox that records whether it was closed."""

    isolation = "test"

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Session:
    """A fake VariantSession: answers "42" to everything, records close()."""

    def __init__(self, ref: str, opened: list) -> None:
        self.ref, self.backend, self.identity, self.closed = ref, "fake", f"fake:{ref}", False
        opened.append(self)

    def generator(self):
        return self

    def generate(self, prompts, settings):
        return [["42"] * settings.n for _ in prompts]

    def model_and_tokenizer(self):
        raise AssertionError("no model in these tests")

    def close(self) -> None:
        self.closed = True


@dataclasses.dataclass
class ExplodingCodeTask(Task):
    """Executes code; scoring its second item raises (a bug in a task, a sandbox crash, Ctrl-C)."""

    name = "exploding-code"
    executes_code = True
    metrics = (Metric("pass@1"),)

    def load(self, split=None):
        return [Sample(f"t/{i}", {"i": i}) for i in range(4)]

    def build_prompt(self, sample, opts, shots=()):
        return Prompt(text="x")

    def score(self, sample, generations, ctx):
        assert ctx.sandbox is not None
        if sample.data["i"] == 1:
            raise RuntimeError("task failed mid-run")
        return SampleScore({"pass@1": 1.0}, [{"passed": True, "verdict": "passed", "detail": ""}])


@pytest.fixture
def exploding(monkeypatch):
    registry.list_tasks()
    monkeypatch.setitem(registry._REGISTRY, "exploding-code", ExplodingCodeTask)
    boxes: list[Box] = []
    monkeypatch.setattr("tunelab.evaluation.context._open_sandbox", lambda cfg: boxes.append(Box()) or boxes[-1])
    return boxes


def test_a_task_raising_mid_run_still_closes_the_sandbox_and_the_session(tmp_path, exploding):
    opened: list[Session] = []
    cfg = EvalConfig(tasks=["exploding-code"], models=["base"], allow_code_execution=True, batch_size=1)
    with pytest.raises(RuntimeError, match="mid-run"):
        evaluate_run(tmp_path, EXP, cfg, session_factory=lambda ref: Session(ref, opened))
    assert len(exploding) == 1 and exploding[0].closed
    assert [s.closed for s in opened] == [True]


def test_scoring_a_samples_file_closes_the_sandbox_when_scoring_raises(tmp_path, exploding):
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"task_id": "t/1", "completion": "42"}\n')
    with pytest.raises(RuntimeError, match="mid-run"):
        score_samples_file("exploding-code", samples, EvalConfig(allow_code_execution=True))
    assert exploding[0].closed


def test_one_session_at_a_time_and_none_left_open(tmp_path):
    opened: list[Session] = []
    with EvalContext(EvalConfig(), [], tmp_path, EXP, lambda ref: Session(ref, opened)) as ectx:
        assert ectx.sandbox is None and ectx.judge is None  # no code task, no judge configured
        first = ectx.session("base")
        assert ectx.session("base") is first  # base and base+cot share the loaded base model
        ectx.session("final")
        assert first.closed and not opened[1].closed  # asking for another variant frees the first
    assert [s.closed for s in opened] == [True, True]


def test_a_failure_while_opening_closes_what_was_already_open(monkeypatch):
    boxes: list[Box] = []
    monkeypatch.setattr("tunelab.evaluation.context._open_sandbox", lambda cfg: boxes.append(Box()) or boxes[-1])
    bad_judge = EvalConfig(judge={"base_url": "http://127.0.0.1:1/v1"})  # no endpoint_model: make_judge raises
    with pytest.raises(EvalError, match="endpoint_model"):
        with EvalContext(bad_judge, [ExplodingCodeTask()]):
            pass
    assert boxes[0].closed


def test_evaluations_sharing_a_context_share_its_sandbox_and_start_with_the_model_it_holds(tmp_path, exploding):
    @dataclasses.dataclass
    class CodeTask(ExplodingCodeTask):
        splits = ("test", "val")

        def score(self, sample, generations, ctx):
            assert ctx.sandbox is not None
            return SampleScore({"pass@1": 1.0}, [{"passed": True, "verdict": "passed", "detail": ""}])

    opened: list[Session] = []
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "adapter_config.json").write_text("{}")
    cfg = EvalConfig(tasks=["exploding-code"], models=["base", "final"], allow_code_execution=True)
    with EvalContext(cfg, [CodeTask()], tmp_path, EXP, lambda ref: Session(ref, opened)) as ectx:
        evaluate_run(tmp_path, EXP, cfg, tasks=[CodeTask()], ectx=ectx)
        assert ectx.held == "final" and not exploding[0].closed  # left open for the next evaluation
        again = cfg.model_copy(update={"models": ["base", "final"], "split": "val"})
        evaluate_run(tmp_path, EXP, again, tasks=[CodeTask()], ectx=ectx)
    assert [s.ref for s in opened] == ["base", "final", "base"]  # final was evaluated first, not reloaded
    assert len(exploding) == 1 and exploding[0].closed and all(s.closed for s in opened)
