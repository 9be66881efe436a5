"""Corpus BLEU/chrF bootstraps from summed per-item statistics equal re-scoring every resample
with sacrebleu's `corpus_score`, to the last digit, on the same seeded draws."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF

from tunelab.evaluation import corpus_stats, stats
from tunelab.evaluation.registry import get_task
from tunelab.evaluation.task import Sample, SampleScore

SNIPPETS = [
    "def add(a, b):\n    return a + b",
    "import os\nprint(os.getcwd())",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i)",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
    "    def push(self, x):\n        self.items.append(x)",
    "x = [n * n for n in range(5)]",
    "with open('f.txt') as fh:\n    data = fh.read().splitlines()",
    "try:\n    value = int(text)\nexcept ValueError:\n    value = None",
    "return sorted(words, key=len, reverse=True)",
    "pass",
    "def greet(name: str) -> str:\n    return f'héllo, {name} ✓'",
    "total = sum(x for x in xs if x > 0) / max(1, len(xs))",
    "print('done') .",
]


def _variant(ref: str, k: int) -> list[str]:
    """A generation list of one of many kinds, for item k (empty lists and strings included)."""
    words = ref.split()
    kinds = [
        lambda: [ref],                                  # exact
        lambda: [""],                                   # empty hypothesis
        lambda: [ref[: len(ref) // 2]],                 # truncated: shorter than the reference
        lambda: [ref + "\n" + ref],                     # longer than the reference
        lambda: ["```python\n" + ref + "\n```"],        # fenced: unwrapped before scoring
        lambda: [" ".join(reversed(words))],            # same words, other order
        lambda: ["   \n"],                              # whitespace only
        lambda: [],                                     # no generation at all
        lambda: [words[0] if words else "x"],           # one word: no 2..4-grams
        lambda: ["completely unrelated text here"],     # no match
        lambda: [ref.upper(), "second generation is ignored"],
    ]
    return kinds[k % len(kinds)]()


def _items(n: int = 50, shift: int = 0) -> tuple[list[Sample], list[list[str]]]:
    samples = [Sample(f"s{k}", {"messages": [], "reference": SNIPPETS[k % len(SNIPPETS)]}) for k in range(n)]
    gens = [_variant(s.data["reference"], k * 7 + shift) for k, s in enumerate(samples)]
    return samples, gens


def rescored(metric: str, samples: list[Sample], gens: list[list[str]]):
    """Today's slow path: sacrebleu's corpus_score from text on every resample of item indices."""
    from tunelab.evaluation.tasks.similarity import unfence

    scorer = BLEU() if metric == "bleu" else CHRF()
    refs = [s.data["reference"] for s in samples]
    hyps = [unfence(g[0] if g else "", r) for g, r in zip(gens, refs)]
    return lambda idx: scorer.corpus_score([hyps[i] for i in idx], [[refs[i] for i in idx]]).score


def _sacrebleu_from_stats(kind: str, totals: np.ndarray) -> np.ndarray:
    scorer = BLEU() if kind == "bleu" else CHRF()
    return np.array([scorer._compute_score_from_stats([int(v) for v in row]).score for row in totals])



# ---- the formulas ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bleu", "chrf"])
def test_score_from_summed_stats_is_sacrebleus_for_every_resample(kind):
    samples, gens = _items()
    task = get_task("similarity")
    rows = task.corpus_stats("bleu" if kind == "bleu" else "chrf_corpus", samples, gens, []).rows
    idx = np.random.default_rng(0).integers(0, len(rows), size=(1000, len(rows)))
    totals = stats.resampled_sums(rows, idx)
    fast = corpus_stats.FROM_STATS[kind](totals)
    np.testing.assert_array_equal(fast, _sacrebleu_from_stats(kind, totals))
    # Small corpora reach the formulas' corners: nothing matches, an order without n-grams, no
    # hypothesis at all, shorter and longer hypotheses; random counts cover the rest.
    small = stats.resampled_sums(rows, np.random.default_rng(1).integers(0, len(rows), size=(2000, 2)))
    rng = np.random.default_rng(2)
    rand = rng.integers(0, 6, size=(2000, rows.shape[1])) * rng.integers(0, 2, size=(2000, rows.shape[1]))
    for totals in (small, rand, np.zeros((1, rows.shape[1]), dtype=np.int64)):
        np.testing.assert_array_equal(corpus_stats.FROM_STATS[kind](totals), _sacrebleu_from_stats(kind, totals))


def test_resampled_sums_are_the_sums_of_the_drawn_rows():
    rows = np.random.default_rng(0).integers(0, 1000, size=(37, 5))
    idx = np.random.default_rng(1).integers(0, 37, size=(101, 37))
    want = rows[idx].sum(axis=1)
    np.testing.assert_array_equal(stats.resampled_sums(rows, idx), want)
    np.testing.assert_array_equal(stats.resampled_sums(rows, idx, chunk=50), want)  # several chunks
    assert stats.resampled_sums(rows, idx).dtype == rows.dtype


# ---- the task ----------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["bleu", "chrf_corpus"])
def test_similarity_corpus_score_is_sacrebleus_corpus_score(metric):
    samples, gens = _items()
    task = get_task("similarity")
    slow = rescored(metric, samples, gens)
    for idx in [range(len(samples)), *np.random.default_rng(3).integers(0, len(samples), size=(20, len(samples)))]:
        got = task.corpus_score(metric, [samples[i] for i in idx], [gens[i] for i in idx], [])
        assert got == slow(idx)


def test_similarity_extracts_each_generation_once_and_keeps_its_options(monkeypatch):
    calls = []
    real = corpus_stats.item_stats
    monkeypatch.setattr(corpus_stats, "item_stats", lambda kind, h, r: calls.append(len(h)) or real(kind, h, r))
    samples, gens = _items(20)
    task = get_task("similarity")
    options = task.options()
    for idx in np.random.default_rng(4).integers(0, 20, size=(30, 20)):
        task.corpus_score("bleu", [samples[i] for i in idx], [gens[i] for i in idx], [])
    task.corpus_score("bleu", samples, gens, [])
    assert sum(calls) == len({(g[0] if g else "", s.data["reference"]) for s, g in zip(samples, gens)})
    assert task.options() == options


# ---- the bootstraps ----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["bleu", "chrf_corpus"])
def test_unpaired_bootstrap_from_stats_equals_rescoring_every_resample(metric):
    samples, gens = _items()
    task = get_task("similarity")
    n, kw = len(samples), dict(confidence=0.9, n_resamples=200, seed=5)
    slow = stats.bootstrap_ci(np.arange(n), statistic=rescored(metric, samples, gens), **kw)
    summed = task.corpus_stats(metric, samples, gens, [])
    assert summed.value() == rescored(metric, samples, gens)(range(n))
    assert stats.bootstrap_ci_summed(summed, **kw) == slow
    # What the eval runner does today: the task's corpus_score on every resample.
    def runner_way(idx):
        return task.corpus_score(metric, [samples[i] for i in idx], [gens[i] for i in idx], [])

    assert stats.bootstrap_ci(np.arange(n), statistic=runner_way, **kw) == slow


@pytest.mark.parametrize("metric", ["bleu", "chrf_corpus"])
def test_paired_bootstrap_from_stats_equals_rescoring_every_resample(metric):
    samples, gens_a = _items()
    _, gens_b = _items(shift=3)
    task = get_task("similarity")
    kw = dict(confidence=0.95, n_resamples=200, seed=6)
    slow = stats.paired_bootstrap_corpus(len(samples), rescored(metric, samples, gens_a),
                                         rescored(metric, samples, gens_b), **kw)
    fast = stats.paired_bootstrap_summed(task.corpus_stats(metric, samples, gens_a, []),
                                         task.corpus_stats(metric, samples, gens_b, []), **kw)
    assert fast == slow and slow["diff"] != 0


def test_summed_bootstraps_of_no_items_are_nan():
    empty = stats.SummedStatistic(np.zeros((0, 10), dtype=np.int64), corpus_stats.bleu_from_stats)
    assert all(np.isnan(x) for x in stats.bootstrap_ci_summed(empty))
    assert stats.paired_bootstrap_summed(empty, empty)["n"] == 0
    with pytest.raises(ValueError, match="same items"):
        stats.paired_bootstrap_summed(empty, stats.SummedStatistic(np.ones((2, 10), dtype=np.int64),
                                                                   corpus_stats.bleu_from_stats))


def test_compare_sums_statistics_and_gets_the_rescoring_numbers(tmp_path, monkeypatch):
    """`tunelab compare` on corpus BLEU/chrF: the summed path (no per-resample scoring at all)
    gives the very row the per-resample corpus_score path gives."""
    from tunelab.compare.paired import paired_comparisons
    from tunelab.evaluation.tasks.similarity import SimilarityTask

    task = get_task("similarity")
    samples = task.load("test")[:30]
    for variant, shift in (("base", 0), ("final", 4)):
        gens = [_variant(s.data["reference"], k + shift) for k, s in enumerate(samples)]
        out = tmp_path / "eval" / variant / "similarity"
        out.mkdir(parents=True)
        (out / "samples.jsonl").write_text("".join(
            json.dumps({"id": s.id, "generations": g, "scores": [{}], "values": {}}) + "\n"
            for s, g in zip(samples, gens)))
        metrics = {m: {"value": 0.0, "higher_is_better": True, "aggregation": "corpus"}
                   for m in ("bleu", "chrf_corpus")}
        (out / "summary.json").write_text(json.dumps({"task": "similarity", "options": task.options(), "split": "test",
                                                      "n": len(samples), "metrics": metrics}))

    def refuse(*args, **kwargs):
        raise AssertionError("the summed path re-scored resamples")

    with monkeypatch.context() as m:
        m.setattr(stats, "paired_bootstrap_corpus", refuse)
        fast = paired_comparisons(tmp_path, "base", "final", n_resamples=200)["rows"]
    monkeypatch.setattr(SimilarityTask, "corpus_stats", lambda self, *a: None)
    slow = paired_comparisons(tmp_path, "base", "final", n_resamples=200)["rows"]
    assert fast == slow and {r["metric"] for r in fast} == {"bleu", "chrf_corpus"}
    assert all(r["test"] == "paired-bootstrap" for r in fast)


def test_loss_task_keeps_rescoring_its_corpus_metrics():
    # Tasks without summed statistics keep the per-resample corpus_score path.
    task = get_task("loss")
    assert task.corpus_stats("loss", [], [], [SampleScore({}, [], {"loss_sum": 1.0, "n_tokens": 2})]) is None
