"""`tunelab run`'s stages: a finished run is kept unless the base weights under it changed; eval
results are kept only while settings, weights, task versions and items are unchanged."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from rich.console import Console

from tunelab.config import load_config
from tunelab.errors import TrainingError
from tunelab.models.identity import base_identity
from tunelab.pipeline import stage_train
from tunelab.runs import RunPaths

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def finished_run(tmp_path: Path, base_model: str | None) -> RunPaths:
    paths = RunPaths(tmp_path / "run")
    paths.train.mkdir(parents=True)
    summary = {"stop_reason": "max_steps", "steps": 6, **({"base_model": base_model} if base_model else {})}
    paths.summary.write_text(json.dumps(summary))
    return paths


def test_a_finished_run_on_the_same_base_is_kept(tmp_path):
    exp = load_config(SMOKE)
    note = stage_train(exp, finished_run(tmp_path, base_identity(exp.model)), Console(quiet=True))
    assert note == "already finished (max_steps at step 6)"
    # runs from before the base was recorded are kept too
    assert stage_train(exp, finished_run(tmp_path / "old", None), Console(quiet=True)).startswith("already finished")


def test_a_finished_run_on_other_base_weights_is_refused(tmp_path):
    exp = load_config(SMOKE)
    paths = finished_run(tmp_path, base_identity(exp.model) + "-older-weights")
    with pytest.raises(TrainingError, match="trained on other weights.*another --run-dir"):
        stage_train(exp, paths, Console(quiet=True))


def test_the_eval_stage_recomputes_after_a_task_version_bump_or_new_items(tmp_path, monkeypatch):
    import tunelab.evaluation.engine as engine
    import tunelab.evaluation.tasks.math as math_task
    from tunelab.pipeline import stage_eval

    exp = load_config(SMOKE, ["eval.tasks=[math-word]", "eval.models=[base]", "eval.limit=3"])
    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    calls = []
    monkeypatch.setattr(engine, "evaluate_run", lambda *a, **k: calls.append(1) or {"base": {}})

    def stage() -> str:
        return stage_eval(exp, paths, Console(quiet=True))

    stage()
    assert len(calls) == 1 and stage().endswith("results kept") and len(calls) == 1
    monkeypatch.setattr(math_task.MathWordTask, "version", "99")  # prompts or scoring changed
    stage()
    assert len(calls) == 2 and stage().endswith("results kept")
    original = math_task.MathWordTask.load

    def reshipped(self, split=None):  # same ids, corrected content
        first, *rest = original(self, split)
        return [dataclasses.replace(first, data={**first.data, "final": "0"}), *rest]

    monkeypatch.setattr(math_task.MathWordTask, "load", reshipped)
    stage()
    assert len(calls) == 3


def test_one_fingerprint_for_settings_whatever_their_key_order():
    from tunelab.runs import fingerprint

    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2}) and len(fingerprint(None)) == 16
    assert fingerprint({"p": Path("x")}) == fingerprint({"p": "x"})  # paths hash as their text


def test_the_eval_stage_keeps_results_only_while_the_runs_own_summaries_are_its_own(tmp_path, monkeypatch):
    """A summary.json that a one-off eval of an older tunelab wrote over (other items) is not kept."""
    import tunelab.evaluation.engine as engine
    from tunelab.pipeline import stage_eval

    exp = load_config(SMOKE, ["eval.tasks=[math-word]", "eval.models=[base]", "eval.limit=3"])
    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    calls = []
    monkeypatch.setattr(engine, "evaluate_run", lambda *a, **k: calls.append(k.get("run_eval")) or {"base": {}})
    stage_eval(exp, paths, Console(quiet=True))
    assert calls == [exp.eval]  # the pipeline evaluates the run's own settings
    out = paths.root / "eval" / "base" / "math-word"
    out.mkdir(parents=True)
    (out / "summary.json").write_text(json.dumps({"items": "other-items", "n": 5}))
    assert not stage_eval(exp, paths, Console(quiet=True)).endswith("results kept") and len(calls) == 2
    (out / "summary@abc.json").write_text(json.dumps({"items": "other-items", "n": 5}))
    (out / "summary.json").unlink()
    assert stage_eval(exp, paths, Console(quiet=True)).endswith("results kept")  # keyed ones do not count
