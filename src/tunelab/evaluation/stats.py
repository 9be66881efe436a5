"""The statistics every evaluation number goes through: exactly one function each.

- `pass_at_k`: the unbiased pass@k estimator of Chen et al. (2021), per problem.
- `wilson_ci`: Wilson score interval of a proportion (0/1 per item), never [0, 0] at 0% or 100%.
- `cluster_bootstrap_ci`: bootstrap that resamples problems, each with all its samples (pass@k
  with n > 1 generations per problem).
- `bootstrap_ci`: seeded percentile bootstrap confidence interval of any statistic over items.
- `metric_ci`: which of the three an aggregate gets, and its interval (the summary's `ci_method`).
- `paired_bootstrap`: difference between two systems scored on the same items, with its CI and
  a two-sided bootstrap p-value; `paired_bootstrap_corpus` does the same for a corpus-level
  statistic (corpus BLEU/chrF), resampling items and re-scoring both systems on each draw.
- `SummedStatistic`, `bootstrap_ci_summed`, `paired_bootstrap_summed`: the same two bootstraps,
  with the same draws and values, for a corpus statistic that is a function of summed per-item
  rows (corpus BLEU/chrF of n-gram counts): each draw is a row sum, not a re-scoring.
- `mcnemar_exact`: exact McNemar test of paired pass/fail outcomes.
- `paired_permutation`: sign-flip permutation test of paired scores (exact for few items).
- `minimal_detectable_difference`: the smallest difference a paired eval set could detect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

DEFAULT_RESAMPLES = 1000


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n passes.

    1 - C(n-c, k) / C(n, k), computed as a running product (1 - k/i for i in n-c+1..n) so that
    it stays exact for large n where the binomials overflow floats.

    Args:
        n: generations for the problem; c: how many passed; k: the k of pass@k (k <= n).

    Raises:
        ValueError: k < 1, k > n, or c outside 0..n.
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: c={c} must be within 0..n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: k={k} must be within 1..n={n}")
    if n - c < k:  # every draw of k contains a passing sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """[n_resamples, n] indices drawn with replacement; same seed -> same draws."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion successes / n (Wilson, 1927).

    Unlike the percentile bootstrap, it does not collapse to [0, 0] when nothing passed (or to
    [1, 1] when everything did): 0 of 60 gives about [0, 0.060] at 95%. Same as
    `scipy.stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")`.

    Returns:
        (low, high); (nan, nan) for n = 0.
    """
    if n == 0:
        return (float("nan"), float("nan"))
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_ci: successes={successes} must be within 0..n={n}")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, center - half), min(1.0, center + half))


def cluster_bootstrap_ci(
    clusters: Sequence[Sequence[float]],
    cluster_statistic: Callable[[np.ndarray], float] | None = None,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over clusters, resampling whole clusters.

    The n generations of one problem are not independent draws of the model's skill: they
    share the problem. Resampling problems (each with all its samples) instead of samples
    keeps that dependence, so the interval is not too narrow.

    Args:
        clusters: per problem, its per-sample values (or anything `cluster_statistic` reads).
        cluster_statistic: one problem's value from its samples (e.g. pass@k from the outcomes);
            default their mean.

    Returns:
        (low, high); (nan, nan) for no clusters.
    """
    stat = cluster_statistic or (lambda xs: float(np.mean(xs)) if len(xs) else float("nan"))
    per_cluster = [stat(np.asarray(c, dtype=float)) for c in clusters]
    return bootstrap_ci(per_cluster, confidence=confidence, n_resamples=n_resamples, seed=seed)


def metric_ci(
    values: Sequence[float],
    samples_per_item: int = 1,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, str]:
    """The interval of a per-item ("mean") metric and the name of the method used.

    - more than one generation per item (pass@k with n > 1): each value already summarises
      one problem's samples, so the problems are resampled: "cluster-bootstrap";
    - every value 0 or 1 (pass@1 of one sample, exact match, accuracy): "wilson";
    - otherwise (scores, distances, shares): "bootstrap".

    Returns:
        (low, high, method).
    """
    vals = np.asarray(values, dtype=float)
    if samples_per_item > 1:
        lo, hi = cluster_bootstrap_ci([[v] for v in vals], confidence=confidence, n_resamples=n_resamples, seed=seed)
        return lo, hi, "cluster-bootstrap"
    if vals.size and np.all((vals == 0.0) | (vals == 1.0)):
        lo, hi = wilson_ci(int(vals.sum()), int(vals.size), confidence)
        return lo, hi, "wilson"
    lo, hi = bootstrap_ci(vals, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return lo, hi, "bootstrap"


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] | None = None,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of `statistic(values)`, resampling items with replacement.

    Args:
        values: one entry per item (a per-sample metric, or item indices for a corpus statistic:
            pass `np.arange(n)` and a `statistic` that scores the resampled indices).
        statistic: maps a resampled array to a number; default the mean (vectorised).
        confidence: e.g. 0.95 for the 2.5th..97.5th percentiles.

    Returns:
        (low, high); (nan, nan) for no items; (x, x) for one item.
    """
    arr = np.asarray(values)
    if arr.size == 0:
        return (float("nan"), float("nan"))
    idx = _resample_indices(len(arr), n_resamples, seed)
    if statistic is None:
        stats = arr.astype(float)[idx].mean(axis=1)
    else:
        stats = np.array([statistic(arr[row]) for row in idx], dtype=float)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of b - a over paired items, with a percentile CI and a two-sided p-value.

    Both systems are resampled with the same item indices, so the item difficulty cancels out.
    The p-value is twice the share of resampled differences on the other side of 0 than the
    observed one (capped at 1): small means the sign of the difference is stable.

    Returns:
        {"diff", "ci_low", "ci_high", "p_value", "n"}.

    Raises:
        ValueError: a and b differ in length.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired_bootstrap: {len(x)} vs {len(y)} items; pairs need the same items")
    if x.size == 0:
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan"), "n": 0}
    d = y - x
    diffs = d[_resample_indices(len(d), n_resamples, seed)].mean(axis=1)
    return _paired_summary(float(d.mean()), diffs, confidence, int(d.size))


def paired_bootstrap_corpus(
    n: int,
    score_a: Callable[[np.ndarray], float],
    score_b: Callable[[np.ndarray], float],
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Paired bootstrap of a corpus-level statistic (Koehn, 2004): b - a on the whole set, with a
    percentile CI and a two-sided p-value, as `paired_bootstrap` gives for per-item means.

    A corpus statistic (corpus BLEU, corpus chrF) is not a mean of per-item values, so each draw
    of n item indices (with replacement) is re-scored by both systems and the difference kept;
    both systems see the same draws, so the items' difficulty cancels out. sacrebleu has the
    same test for its own metric objects; this one takes any task's `corpus_score`.

    Args:
        n: number of paired items.
        score_a, score_b: map an array of item indices to the statistic of system a / b on them.

    Returns:
        {"diff", "ci_low", "ci_high", "p_value", "n"}.
    """
    if n == 0:
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan"), "n": 0}
    idx = _resample_indices(n, n_resamples, seed)
    diffs = np.array([score_b(row) - score_a(row) for row in idx], dtype=float)
    everything = np.arange(n)
    return _paired_summary(float(score_b(everything) - score_a(everything)), diffs, confidence, n)


@dataclass(frozen=True)
class SummedStatistic:
    """A corpus statistic that is a function of the column sums of per-item rows.

    Attributes:
        rows: [n, d] per-item statistics (e.g. sacrebleu's n-gram counts of each sentence).
        score: maps [B, d] sums of rows to the [B] statistics (vectorised over B).
    """

    rows: np.ndarray
    score: Callable[[np.ndarray], np.ndarray]

    def value(self) -> float:
        """The statistic over every item."""
        return float(self.score(np.asarray(self.rows).sum(axis=0, keepdims=True))[0])

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        """The statistic of each draw of item indices ([B, n] -> [B])."""
        return np.asarray(self.score(resampled_sums(self.rows, idx)), dtype=float)


def resampled_sums(rows: np.ndarray, idx: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """Column sums of `rows` over each draw of item indices: [n, d] rows, [B, n] draws -> [B, d].

    Each draw becomes a count per item (a [B, n] matrix), and counts @ rows sums the rows: one
    matmul instead of B * n row lookups. Integer rows whose sums stay below 2^53 go through the
    float matmul exactly (every partial sum is an integer a float holds); other rows keep their
    dtype. Draws are processed `chunk` counts at a time so many items do not need B * n memory.
    """
    rows = np.asarray(rows)
    idx = np.asarray(idx).reshape(len(idx), -1)
    b, n = idx.shape
    exact_float = rows.dtype.kind in "iub" and float(np.abs(rows).max(initial=0)) * max(n, 1) < 2.0**53
    mat = rows.astype(float) if exact_float else rows
    out = []
    step = max(1, chunk // max(n, 1))
    for start in range(0, b, step):
        part = idx[start:start + step]
        flat = (part + len(rows) * np.arange(len(part))[:, None]).ravel()
        counts = np.bincount(flat, minlength=len(part) * len(rows)).reshape(len(part), len(rows))
        out.append(counts.astype(mat.dtype) @ mat)
    sums = np.concatenate(out) if out else np.zeros((0, rows.shape[1]), dtype=mat.dtype)
    return sums.astype(rows.dtype) if exact_float else sums


def bootstrap_ci_summed(
    stat: SummedStatistic, confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """`bootstrap_ci` of a summed-rows corpus statistic: the same draws and the same interval as
    `bootstrap_ci(np.arange(n), statistic=...)` re-scoring every draw, without re-scoring.

    Returns:
        (low, high); (nan, nan) for no items.
    """
    n = len(stat.rows)
    if n == 0:
        return (float("nan"), float("nan"))
    values = stat.resampled(_resample_indices(n, n_resamples, seed))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def paired_bootstrap_summed(
    a: SummedStatistic,
    b: SummedStatistic,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """`paired_bootstrap_corpus` of two summed-rows corpus statistics over the same items: the
    same draws, differences, CI and p-value, each draw a row sum instead of a re-scoring.

    Raises:
        ValueError: a and b have different numbers of items.
    """
    n = len(a.rows)
    if len(b.rows) != n:
        raise ValueError(f"paired_bootstrap_summed: {n} vs {len(b.rows)} items; pairs need the same items")
    if n == 0:
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan"), "n": 0}
    idx = _resample_indices(n, n_resamples, seed)
    diffs = b.resampled(idx) - a.resampled(idx)
    return _paired_summary(b.value() - a.value(), diffs, confidence, n)


def _paired_summary(observed: float, diffs: np.ndarray, confidence: float, n: int) -> dict[str, float]:
    """Percentile CI of the resampled differences and the two-sided bootstrap p-value: twice the
    share of resampled differences on the other side of 0 than the observed one (capped at 1)."""
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    if observed > 0:
        tail = float(np.mean(diffs <= 0))
    elif observed < 0:
        tail = float(np.mean(diffs >= 0))
    else:
        tail = 0.5
    return {"diff": observed, "ci_low": float(low), "ci_high": float(high), "p_value": min(1.0, 2.0 * tail), "n": n}


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Exact (binomial) McNemar test of paired pass/fail outcomes of systems a and b.

    Only discordant items carry information: under "no difference" each of them is equally
    likely to favour a or b, so the count favouring b is Binomial(discordant, 1/2). The
    two-sided p-value is twice the smaller tail, capped at 1 (what `scipy.stats.binomtest`
    gives for p=1/2).

    Args:
        a, b: per-item outcomes (truthy = pass), same items in the same order.

    Returns:
        {"a_only", "b_only", "discordant", "p_value", "n"}.
    """
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if x.shape != y.shape:
        raise ValueError(f"mcnemar_exact: {len(x)} vs {len(y)} items; pairs need the same items")
    a_only, b_only = int(np.sum(x & ~y)), int(np.sum(~x & y))
    n_disc = a_only + b_only
    # Integer arithmetic: exact for any n (int / int division is correctly rounded).
    tail = sum(math.comb(n_disc, i) for i in range(min(a_only, b_only) + 1))
    p = 1.0 if n_disc == 0 else min(1.0, 2 * tail / 2**n_disc)
    return {"a_only": a_only, "b_only": b_only, "discordant": n_disc, "p_value": p, "n": int(x.size)}


def paired_permutation(
    a: Sequence[float], b: Sequence[float], n_resamples: int = 10000, seed: int = 0, exact_below: int = 2**16
) -> dict[str, float]:
    """Two-sided sign-flip permutation test of the mean paired difference b - a.

    Under "no difference", swapping a system's labels within any pair is as likely as not, so
    each difference d_i keeps or flips its sign. The p-value is the share of sign patterns whose
    |mean| is at least the observed |mean|: over all 2^m patterns (m = non-zero differences;
    zeros never change the statistic) when 2^m <= max(n_resamples, exact_below), else over
    `n_resamples` seeded random patterns as (1 + hits) / (1 + n_resamples), which is never 0.
    Same as `scipy.stats.permutation_test(..., permutation_type="samples")` on the pairs.

    Returns:
        {"diff", "p_value", "n", "exact" (1.0 or 0.0), "n_resamples"}.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired_permutation: {len(x)} vs {len(y)} items; pairs need the same items")
    d = y - x
    n = int(d.size)
    if n == 0:
        return {"diff": float("nan"), "p_value": float("nan"), "n": 0, "exact": 1.0, "n_resamples": 0}
    nz = d[d != 0]
    m = int(nz.size)
    observed = abs(float(nz.sum()))
    # Relative tolerance: sums of the same numbers in another order differ in the last bits.
    tol = 1e-9 * max(1.0, float(np.abs(nz).sum()))
    if m == 0:
        p, exact, draws = 1.0, True, 1
    elif 2**m <= max(n_resamples, exact_below):
        hits = 0
        for start in range(0, 2**m, 1 << 16):  # [chunk, m] sign patterns from the bits of k
            k = np.arange(start, min(2**m, start + (1 << 16)))[:, None]
            signs = 1 - 2 * ((k >> np.arange(m)) & 1)
            hits += int(np.sum(np.abs(signs @ nz) >= observed - tol))
        p, exact, draws = hits / 2**m, True, 2**m
    else:
        rng = np.random.default_rng(seed)
        hits = 0
        for start in range(0, n_resamples, 4096):
            rows = min(4096, n_resamples - start)
            signs = rng.choice(np.array([-1.0, 1.0]), size=(rows, m))
            hits += int(np.sum(np.abs(signs @ nz) >= observed - tol))
        p, exact, draws = (1 + hits) / (1 + n_resamples), False, n_resamples
    return {"diff": float(d.mean()), "p_value": min(1.0, p), "n": n, "exact": float(exact), "n_resamples": draws}


def minimal_detectable_difference(
    diffs: Sequence[float], alpha: float = 0.05, power: float = 0.8, binary: bool = False
) -> float | None:
    """The smallest mean paired difference this eval set would detect: (z_{1-alpha/2} + z_power)
    * sd(d) / sqrt(n), the normal approximation with the observed spread of the differences.

    For pass/fail items (`binary`) it is at least k/n, where k is the number of one-sided
    discordant items the exact McNemar test needs to reach `alpha` (6 for 0.05): below that
    no outcome of the eval set can be significant.

    Returns:
        The difference on the metric's scale, or None with fewer than 2 items or (non-binary)
        no spread in the differences.
    """
    d = np.asarray(diffs, dtype=float)
    n = int(d.size)
    if n < 2:
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    sd = float(d.std(ddof=1))
    mdd = z * sd / math.sqrt(n)
    if binary:
        k = 1
        while 2 * 0.5**k > alpha:
            k += 1
        mdd = max(mdd, k / n)
    elif sd == 0:
        return None
    return float(mdd)
