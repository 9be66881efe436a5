"""similarity with `dataset: run`: the evaluated run's own held-out rows, split as training split them."""

from pathlib import Path

import pytest
import yaml

from tunelab.config import load_config
from tunelab.data.mixing import build_splits
from tunelab.errors import EvalError
from tunelab.evaluation.engine import make_tasks

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "data" / "smoke.jsonl"


def _exp(tmp_path, **split):
    cfg = {"name": "t", "model": {"name": "builtin:tiny-random-qwen2"},
           "data": {"sources": [{"path": str(SMOKE), "format": "alpaca"}], "split": {"val": 0.2, "test": 0.2, **split}},
           "eval": {"tasks": ["similarity"], "task_options": {"similarity": {"dataset": "run"}}}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def test_dataset_run_scores_the_runs_own_held_out_rows(tmp_path):
    exp = _exp(tmp_path)
    (task,) = make_tasks(exp.eval, (tmp_path, exp))
    splits = build_splits(exp.data, exp.seed)
    for split in ("val", "test"):
        got = task.load(split)
        want = getattr(splits, split)
        assert [s.data["reference"] for s in got] == [ex.messages[-1]["content"] for ex in want]
        assert [s.data["messages"] for s in got] == [ex.messages[:-1] for ex in want]
    train = {tuple(m["content"] for m in ex.messages) for ex in splits.train}
    assert not any(tuple(m["content"] for m in [*s.data["messages"], {"content": s.data["reference"]}]) in train
                   for s in task.load("test"))


def test_dataset_run_without_a_run_or_with_an_empty_split_says_why(tmp_path):
    exp = _exp(tmp_path, test=0.0)
    (unbound,) = make_tasks(exp.eval)
    with pytest.raises(EvalError, match=r"dataset 'run' means the held-out rows of the run being evaluated"):
        unbound.load("test")
    (task,) = make_tasks(exp.eval, (tmp_path, exp))
    with pytest.raises(EvalError, match=r"the run's 'test' split is empty \(data.split: val 0.2, test 0.0"):
        task.load("test")
