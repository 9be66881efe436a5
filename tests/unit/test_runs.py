"""Run directory: atomic files, metric truncation on resume, refusing to clobber, config checks."""

import json

import pytest

from tunelab.config import validate_config
from tunelab.errors import TrainingError
from tunelab.runs import (
    RunPaths,
    append_jsonl,
    capture_env,
    check_resume_config,
    config_diff,
    prepare_run_dir,
    read_jsonl,
    truncate_metrics,
    write_json,
)

RAW = {"name": "t", "model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"path": "/x.jsonl"}]}}


def exp(**train):
    return validate_config({**RAW, "train": train})


def test_write_json_is_atomic_and_writes_nan_as_null(tmp_path):
    path = tmp_path / "a" / "s.json"
    write_json(path, {"loss": float("nan"), "ok": 1.5, "nested": [float("inf")]})
    assert json.loads(path.read_text()) == {"loss": None, "ok": 1.5, "nested": [None]}
    assert [p.name for p in path.parent.iterdir()] == ["s.json"]  # no temp file left


def test_jsonl_append_read_skips_torn_line_and_truncates(tmp_path):
    path = tmp_path / "m.jsonl"
    for step in (5, 10, 10, 15, 20):
        append_jsonl(path, {"step": step, "split": "train"})
    with open(path, "a") as f:
        f.write('{"step": 25, "spl')  # killed mid-write
    assert [r["step"] for r in read_jsonl(path)] == [5, 10, 10, 15, 20]
    assert truncate_metrics(path, after_step=10) == 2
    assert [r["step"] for r in read_jsonl(path)] == [5, 10, 10]
    assert path.read_text().endswith("}\n")  # the torn line is gone too
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_existing_checkpoints_need_resume(tmp_path):
    paths = prepare_run_dir(exp(), tmp_path / "run", resume=False)
    assert paths.config.exists() and paths.env.exists() and paths.train.is_dir()
    # A run that crashed before its first checkpoint may simply be started again.
    prepare_run_dir(exp(), tmp_path / "run", resume=False)
    (paths.checkpoints / "step-10").mkdir(parents=True)
    with pytest.raises(TrainingError, match="--resume.*another --run-dir"):
        prepare_run_dir(exp(), tmp_path / "run", resume=False)
    prepare_run_dir(exp(), tmp_path / "run", resume=True)
    env = json.loads(paths.env.read_text())
    assert len(env["resumes"]) == 1


def test_resume_with_result_changing_keys_names_them(tmp_path):
    prepare_run_dir(exp(lr=1e-4), tmp_path / "run", resume=False)
    (tmp_path / "run" / "checkpoints" / "step-1").mkdir(parents=True)
    with pytest.raises(TrainingError) as e:
        prepare_run_dir(exp(lr=3e-4, batch_size=2), tmp_path / "run", resume=True)
    msg = str(e.value)
    assert "train.lr: 0.0001 (run) -> 0.0003 (now)" in msg and "train.batch_size" in msg


def test_resume_with_harmless_changes_warns_and_records_them(tmp_path):
    prepare_run_dir(exp(), tmp_path / "run", resume=False)
    with pytest.warns(UserWarning, match="train.log_every"):
        prepare_run_dir(exp(log_every=1), tmp_path / "run", resume=True)
    assert "log_every: 1" in (tmp_path / "run" / "config.yaml").read_text()


def test_a_key_added_after_the_run_was_made_counts_as_its_default():
    import warnings

    saved = exp().model_dump(mode="json")
    del saved["train"]["mixed_precision"]  # a run made before the key existed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_resume_config(saved, exp())  # it ran with the default: nothing changed
    with pytest.raises(TrainingError, match=r"train.mixed_precision: 'auto' \(run\) -> 'bf16'"):
        check_resume_config(saved, exp().model_copy(update={"train": exp().train.model_copy(
            update={"mixed_precision": "bf16"})}))


def test_config_diff_is_dotted():
    old = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert config_diff(old, {"a": {"b": 2, "c": (1, 2)}, "d": 1, "e": 3}) == {"a.b": (1, 2), "e": (None, 3)}
    check_resume_config(exp().model_dump(mode="json"), exp())  # identical: silent


def test_env_records_versions_and_world_size():
    env = capture_env(seed=3, world_size=2)
    assert env["seed"] == 3 and env["world_size"] == 2
    assert {"torch", "transformers", "peft", "accelerate"} <= set(env["versions"])
    assert env["cpu_count"] >= 1 and "python" in env and "command" in env


def test_run_paths_layout(tmp_path):
    p = RunPaths(tmp_path)
    assert p.metrics == tmp_path / "train" / "metrics.jsonl"
    assert p.checkpoint(40) == tmp_path / "checkpoints" / "step-40"
    assert p.final == tmp_path / "final" and p.summary.name == "summary.json"
