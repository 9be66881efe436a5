"""`tunelab run`'s train stage: a finished run is kept, unless the base weights under it changed."""

from __future__ import annotations

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
