"""pass@k, bootstrap CIs and the paired bootstrap against hand-computed values."""

import math

import numpy as np
import pytest

from tunelab.evaluation.stats import bootstrap_ci, paired_bootstrap, pass_at_k


def test_pass_at_k_matches_the_binomial_formula():
    # 1 - C(n-c, k) / C(n, k), by hand: n=5, c=2, k=2 -> 1 - 3/10.
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 7, 5) == 1.0  # n - c < k: any 5 of 10 include a pass
    for n, c, k in [(20, 3, 1), (20, 3, 10), (200, 13, 100)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), rel=1e-9)


def test_pass_at_k_is_stable_where_binomials_overflow_floats():
    value = pass_at_k(2000, 1, 1000)  # C(2000, 1000) ~ 1e600 overflows a float
    assert value == pytest.approx(0.5)


@pytest.mark.parametrize("n,c,k", [(3, 4, 1), (3, 1, 4), (3, 1, 0)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = [1.0] * 50 + [0.0] * 50
    lo, hi = bootstrap_ci(values, seed=3)
    assert (lo, hi) == bootstrap_ci(values, seed=3)
    # Normal approximation: 0.5 +- 1.96 * sqrt(0.25 / 100) = 0.5 +- 0.098.
    assert lo == pytest.approx(0.402, abs=0.03) and hi == pytest.approx(0.598, abs=0.03)
    assert bootstrap_ci([0.7]) == (0.7, 0.7)
    assert bootstrap_ci([2.0] * 10) == (2.0, 2.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_bootstrap_ci_of_a_corpus_statistic_resamples_items():
    # Ratio estimator (token-weighted mean) over items, through indices.
    num, den = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 1.0, 1.0, 1.0])
    lo, hi = bootstrap_ci(np.arange(4), statistic=lambda idx: num[idx].sum() / den[idx].sum(), seed=0)
    assert 1.0 <= lo <= 2.5 <= hi <= 4.0


def test_paired_bootstrap_difference_and_p_value():
    a = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0] * 5
    same = paired_bootstrap(a, a)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    shifted = paired_bootstrap(a, [x + 1 for x in a])
    assert (shifted["diff"], shifted["ci_low"], shifted["ci_high"], shifted["p_value"]) == (1.0, 1.0, 1.0, 0.0)
    better = [1.0] * 30
    res = paired_bootstrap(a, better, seed=1)
    assert res["diff"] == pytest.approx(0.5) and res["ci_low"] > 0 and res["p_value"] < 0.01
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 2.0])
