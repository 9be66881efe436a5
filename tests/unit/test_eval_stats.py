"""pass@k, bootstrap CIs and the paired bootstrap against hand-computed values."""

import math

import numpy as np
import pytest

from tunelab.evaluation.stats import (bootstrap_ci, cluster_bootstrap_ci, metric_ci, paired_bootstrap, pass_at_k,
                                     wilson_ci)


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


@pytest.mark.parametrize("k,n", [(0, 60), (60, 60), (7, 20), (1, 3)])
def test_wilson_ci_matches_scipy(k, n):
    scipy_stats = pytest.importorskip("scipy.stats")
    ref = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson_ci(k, n, 0.95) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_nothing_passed_is_not_a_zero_width_interval():
    lo, hi = wilson_ci(0, 60)
    assert lo == 0.0 and hi == pytest.approx(0.0602, abs=5e-4)
    assert metric_ci([0.0] * 60) == (0.0, hi, "wilson")
    lo, hi, method = metric_ci([1.0] * 60)
    assert method == "wilson" and hi == pytest.approx(1.0) and lo == pytest.approx(1 - 0.0602, abs=5e-4)


def test_metric_ci_picks_the_interval_by_kind_of_metric():
    assert metric_ci([0.0, 1.0, 1.0])[2] == "wilson"
    assert metric_ci([0.5, 1.5, 3.0])[2] == "bootstrap"  # continuous score
    lo, hi, method = metric_ci([0.2, 0.4, 1.0, 0.0], samples_per_item=5)  # pass@k over 5 samples per problem
    assert method == "cluster-bootstrap" and 0.0 <= lo <= hi <= 1.0


def test_cluster_bootstrap_resamples_problems_not_samples():
    # Two problems, ten samples each: all pass on one, all fail on the other. Resampling the 20
    # samples would give a narrow interval around 0.5; resampling the 2 problems gives [0, 1].
    clusters = [[1.0] * 10, [0.0] * 10]
    assert cluster_bootstrap_ci(clusters, seed=0) == (0.0, 1.0)
    narrow = bootstrap_ci([x for c in clusters for x in c], seed=0)
    assert narrow[1] - narrow[0] < 0.6


def test_a_summary_of_a_task_nobody_passed_has_a_real_interval_and_names_it():
    from tunelab.config import EvalConfig
    from tunelab.evaluation.registry import get_task
    from tunelab.evaluation.engine import summarize
    from tunelab.evaluation.task import Sample

    task = get_task("math-word")
    samples = [Sample(f"q{i}", {}) for i in range(60)]
    records = [{"id": s.id, "values": {"accuracy_strict": 0.0, "accuracy_flexible": float(i % 2)},
                "scores": [{"verdict": "wrong"}], "generations": ["x"], "timing": {"generate_s": 0, "score_s": 0}}
               for i, s in enumerate(samples)]
    m = summarize(task, samples, records, EvalConfig())["metrics"]
    assert m["accuracy_strict"]["ci_method"] == "wilson"
    assert m["accuracy_strict"]["ci_low"] == 0.0 and m["accuracy_strict"]["ci_high"] == pytest.approx(0.0602, abs=5e-4)
    records = [{**r, "generations": ["x", "y"]} for r in records]  # two samples per problem
    assert summarize(task, samples, records, EvalConfig())["metrics"]["accuracy_flexible"]["ci_method"] == "cluster-bootstrap"
