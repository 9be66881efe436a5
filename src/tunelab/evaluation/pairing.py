"""Paired tests of two variants on the same items: the one definition compare and checkpoint
selection both use.

Per-item ("mean") metrics: the mean difference b - a with a paired bootstrap CI, a paired test
(exact McNemar when every value is 0 or 1, else a sign-flip permutation test) and the minimal
detectable difference of the items. Corpus metrics (BLEU, chrF): a paired bootstrap that
re-scores both variants on the same resampled items (Koehn, 2004), summing per-item statistics
where the task gives them (`Task.corpus_stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunelab.evaluation import stats
from tunelab.evaluation.task import Sample, SampleScore, Task
from tunelab.generation.types import answer_texts


def paired_test(xa: Sequence[float], xb: Sequence[float], *, higher_is_better: bool = True, alpha: float = 0.05,
                power: float = 0.8, confidence: float = 0.95, n_resamples: int = 1000,
                permutation_resamples: int = 10000, seed: int = 0) -> dict[str, Any]:
    """b - a over items paired by position (at least one): diff with CI, test, p-value,
    `significant` (p < alpha), `better` (b better than a in the metric's direction; None for no
    difference), the minimal detectable difference `mdd` and whether the difference reaches it."""
    xa, xb = [float(x) for x in xa], [float(x) for x in xb]
    if len(set(xa + xb)) == 1:  # every item scored the same by both: nothing to test
        return {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "confidence": confidence, "mean_a": xa[0],
                "mean_b": xb[0], "test": "none", "p_value": 1.0, "alpha": alpha, "significant": False, "mdd": None,
                "better": None, "detectable": None, "note": f"every item scores {xa[0]:g} for both variants"}
    binary = all(x in (0.0, 1.0) for x in xa + xb)
    boot = stats.paired_bootstrap(xa, xb, confidence=confidence, n_resamples=n_resamples, seed=seed)
    out: dict[str, Any] = {"diff": boot["diff"], "ci_low": boot["ci_low"], "ci_high": boot["ci_high"],
                           "confidence": confidence, "mean_a": sum(xa) / len(xa), "mean_b": sum(xb) / len(xb)}
    if binary:
        t = stats.mcnemar_exact(xa, xb)
        out.update(test="mcnemar-exact", p_value=t["p_value"], a_only=t["a_only"], b_only=t["b_only"])
    else:
        t = stats.paired_permutation(xa, xb, n_resamples=permutation_resamples, seed=seed)
        out.update(test="permutation" + ("-exact" if t["exact"] else ""), p_value=t["p_value"])
    mdd = stats.minimal_detectable_difference([y - x for x, y in zip(xa, xb)], alpha=alpha, power=power, binary=binary)
    out.update(alpha=alpha, significant=out["p_value"] < alpha, mdd=mdd, better=_better(boot["diff"], higher_is_better),
               detectable=None if mdd is None else abs(boot["diff"]) >= mdd)
    return out


def paired_corpus(task: Task, metric: str, items: Sequence[Sample], records_a: Sequence[dict[str, Any]],
                  records_b: Sequence[dict[str, Any]], *, higher_is_better: bool = True, alpha: float = 0.05,
                  confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap of corpus metric `metric` of `task`, b - a, on `items` (at least one)
    with the samples.jsonl records of each variant in the same order."""
    def inputs(records: Sequence[dict[str, Any]]):
        gens = answer_texts([r.get("generations") or [] for r in records])  # scored as the engine scores them
        scores = [SampleScore(r.get("values") or {}, r.get("scores") or [], r.get("extra") or {}) for r in records]
        return gens, scores

    (gens_a, scores_a), (gens_b, scores_b) = inputs(records_a), inputs(records_b)
    summed_a = task.corpus_stats(metric, items, gens_a, scores_a)
    summed_b = task.corpus_stats(metric, items, gens_b, scores_b)
    if summed_a is not None and summed_b is not None:
        boot = stats.paired_bootstrap_summed(summed_a, summed_b, confidence=confidence, n_resamples=n_resamples,
                                             seed=seed)
        mean_a, mean_b = summed_a.value(), summed_b.value()
    else:
        def scorer(gens: list[list[str]], scores: list[SampleScore]):
            return lambda idx: task.corpus_score(metric, [items[j] for j in idx], [gens[j] for j in idx],
                                                 [scores[j] for j in idx])

        score_a, score_b = scorer(gens_a, scores_a), scorer(gens_b, scores_b)
        boot = stats.paired_bootstrap_corpus(len(items), score_a, score_b, confidence=confidence,
                                             n_resamples=n_resamples, seed=seed)
        mean_a, mean_b = score_a(range(len(items))), score_b(range(len(items)))
    return {"diff": boot["diff"], "ci_low": boot["ci_low"], "ci_high": boot["ci_high"], "confidence": confidence,
            "mean_a": mean_a, "mean_b": mean_b, "test": "paired-bootstrap", "p_value": boot["p_value"], "alpha": alpha,
            "significant": boot["p_value"] < alpha, "mdd": None, "better": _better(boot["diff"], higher_is_better),
            "detectable": None}


def _better(diff: float, higher_is_better: bool) -> bool | None:
    return (diff > 0) == higher_is_better if diff != 0 else None
