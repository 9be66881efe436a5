"""Paired tests of the compare layer against reference implementations (scipy) and hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunelab.evaluation.stats import mcnemar_exact, minimal_detectable_difference, paired_permutation

# Fixed paired pass/fail outcomes: a passes 3 items b fails, b passes 9 items a fails.
A = [1] * 10 + [1, 1, 1] + [0] * 9 + [0] * 8
B = [1] * 10 + [0, 0, 0] + [1] * 9 + [0] * 8


def test_mcnemar_exact_by_hand():
    r = mcnemar_exact(A, B)
    assert (r["a_only"], r["b_only"], r["discordant"], r["n"]) == (3, 9, 12, 30)
    # 2 * P(X <= 3), X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66 + 220) / 4096
    assert r["p_value"] == pytest.approx(2 * 299 / 4096, abs=1e-15)
    assert mcnemar_exact([1, 0], [1, 0])["p_value"] == 1.0  # no discordant pair
    assert mcnemar_exact([1, 0, 1, 0], [0, 1, 0, 1])["p_value"] == 1.0  # balanced: capped at 1
    assert mcnemar_exact([0] * 6, [1] * 6)["p_value"] == pytest.approx(2 / 64)
    with pytest.raises(ValueError):
        mcnemar_exact([1], [1, 0])


def test_mcnemar_exact_matches_scipy_binomtest():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for _ in range(25):
        n = int(rng.integers(1, 200))
        a, b = rng.random(n) < 0.6, rng.random(n) < rng.uniform(0.3, 0.9)
        r = mcnemar_exact(a, b)
        if r["discordant"] == 0:
            continue
        ref = scipy_stats.binomtest(r["b_only"], r["discordant"], 0.5).pvalue
        assert r["p_value"] == pytest.approx(ref, rel=1e-9, abs=1e-300)


def test_mcnemar_exact_is_exact_for_large_counts():
    r = mcnemar_exact([1] * 600 + [0] * 400, [0] * 600 + [1] * 400)
    assert 0 < r["p_value"] < 1e-9 and math.isfinite(r["p_value"])


def test_paired_permutation_by_hand():
    # d = [1, 2, 3]: |sum| >= 6 only for all-plus and all-minus: 2 of 8 patterns.
    r = paired_permutation([0, 0, 0], [1, 2, 3])
    assert r["p_value"] == pytest.approx(2 / 8) and r["exact"] == 1.0 and r["diff"] == pytest.approx(2.0)
    # zeros do not change the statistic: the same p-value with extra tied items
    assert paired_permutation([0, 0, 0, 5, 5], [1, 2, 3, 5, 5])["p_value"] == pytest.approx(2 / 8)
    assert paired_permutation([1, 2], [1, 2])["p_value"] == 1.0


def test_paired_permutation_matches_scipy_exact():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (5, 9, 12):
        a = rng.normal(50, 10, n)
        b = a + rng.normal(2, 5, n)
        ref = scipy_stats.permutation_test(
            (b, a), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
            n_resamples=np.inf, alternative="two-sided", vectorized=True,
        )
        assert paired_permutation(a, b)["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_paired_permutation_monte_carlo_agrees_with_exact():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 18)
    b = a + rng.normal(0.4, 1, 18)
    exact = paired_permutation(a, b, exact_below=2**18)
    mc = paired_permutation(a, b, n_resamples=20000, exact_below=16, seed=5)
    assert exact["exact"] == 1.0 and mc["exact"] == 0.0
    assert mc["p_value"] == pytest.approx(exact["p_value"], abs=0.01)
    assert mc["p_value"] == paired_permutation(a, b, n_resamples=20000, exact_below=16, seed=5)["p_value"]


def test_minimal_detectable_difference():
    d = [1.0, -1.0, 2.0, 0.0, 3.0, -2.0, 1.0, 0.0]
    sd = np.std(d, ddof=1)
    z = 1.959963984540054 + 0.8416212335729143
    assert minimal_detectable_difference(d) == pytest.approx(z * sd / math.sqrt(8))
    # pass/fail: at least 6 of n one-sided discordant items are needed for p < 0.05
    assert minimal_detectable_difference([0.0] * 30, binary=True) == pytest.approx(6 / 30)
    assert minimal_detectable_difference([0.0] * 30) is None
    assert minimal_detectable_difference([1.0]) is None
    # more items -> smaller detectable difference
    assert minimal_detectable_difference(d * 4) < minimal_detectable_difference(d)
