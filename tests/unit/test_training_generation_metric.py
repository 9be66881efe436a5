"""The optional in-training generation metric: same chrF as the similarity task, logged beside
the val loss, and invisible to training itself (identical losses with and without it)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tunelab.config import load_config
from tunelab.runs import read_jsonl
from tunelab.training.generation_metric import make_generation_metric, score
from tunelab.training.loop import train

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
ARGS = ["train.max_steps=4", "train.log_every=1", "train.eval_every=2", "train.save_every=4"]


def test_chrf_is_the_similarity_tasks_per_sample_mean():
    from tunelab.evaluation.task import Sample, ScoringContext
    from tunelab.evaluation.tasks.similarity import SimilarityTask

    hyps, refs = ["def f(x): return x", "hello there"], ["def f(x):\n    return x\n", "hello world"]
    task = SimilarityTask()
    per = [task.score(Sample(str(i), {"reference": r}), [h], ScoringContext()).values["chrf"]
           for i, (h, r) in enumerate(zip(hyps, refs))]
    assert score("chrf", hyps, refs) == pytest.approx(sum(per) / 2)
    assert score("bleu", refs, refs) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        score("rouge", hyps, refs)


def test_off_by_default_and_single_process_only():
    exp = load_config(SMOKE)
    assert make_generation_metric(exp, None, 1) is None
    exp = load_config(SMOKE, ["train.generation_metric.samples=2"])
    assert make_generation_metric(exp, SimpleNamespace(), 2) is None  # skipped under DDP, with a warning


def test_logged_beside_val_loss_without_changing_training(tmp_path):
    with_metric = load_config(SMOKE, [*ARGS, "train.generation_metric.samples=2",
                                      "train.generation_metric.max_new_tokens=4", "lora.dropout=0.1"])
    plain_drop = load_config(SMOKE, [*ARGS, "lora.dropout=0.1"])
    train(plain_drop, tmp_path / "b")
    train(with_metric, tmp_path / "c")
    b, c = (read_jsonl(tmp_path / n / "train" / "metrics.jsonl") for n in "bc")
    val = [r for r in c if r["split"] == "val"]
    assert [r["step"] for r in val] == [0, 2, 4]  # step 0: the base model
    assert all(0.0 <= r["chrf"] <= 100.0 and r["generation_samples"] == 2 for r in val)
    assert not any("chrf" in r for r in b)
    # dropout draws random numbers: the metric's generation must leave the RNG stream alone
    losses = lambda rows: [(r["step"], r["split"], r["loss"]) for r in rows]  # noqa: E731
    assert losses(c) == losses(b)


def test_the_generations_behind_each_value_are_saved_per_eval_step(tmp_path):
    exp = load_config(SMOKE, [*ARGS, "train.generation_metric.samples=2", "train.generation_metric.max_new_tokens=4"])
    train(exp, tmp_path / "g")
    rows = read_jsonl(tmp_path / "g" / "train" / "metrics.jsonl")
    folder = tmp_path / "g" / "train" / "generations"
    assert sorted(p.name for p in folder.iterdir()) == ["step-0.jsonl", "step-2.jsonl", "step-4.jsonl"]
    for r in (r for r in rows if r["split"] == "val"):
        saved = read_jsonl(folder / f"step-{r['step']}.jsonl")
        assert len(saved) == 2 and len({s["id"] for s in saved}) == 2
        assert all(s["prompt"] and s["reference"] and isinstance(s["generation"], str) for s in saved)
        # the logged value is the mean of the saved per-reply scores
        assert sum(s["score"] for s in saved) / 2 == pytest.approx(r["chrf"])
