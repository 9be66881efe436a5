"""The statistics every evaluation number goes through: exactly one function each.

- `pass_at_k`: the unbiased pass@k estimator of Chen et al. (2021), per problem.
- `bootstrap_ci`: seeded percentile bootstrap confidence interval of any statistic over items.
- `paired_bootstrap`: difference between two systems scored on the same items, with its CI and
  a two-sided bootstrap p-value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    observed = float(d.mean())
    if observed > 0:
        tail = float(np.mean(diffs <= 0))
    elif observed < 0:
        tail = float(np.mean(diffs >= 0))
    else:
        tail = 0.5
    return {"diff": observed, "ci_low": float(low), "ci_high": float(high),
            "p_value": min(1.0, 2.0 * tail), "n": int(d.size)}
