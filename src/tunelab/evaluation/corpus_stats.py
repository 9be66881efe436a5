"""Corpus BLEU and chrF as functions of summed per-item statistics, for fast bootstraps.

sacrebleu scores a corpus by extracting one row of integer statistics per sentence and scoring
their column sums (BLEU: hypothesis and reference length, matching and total n-grams per order;
chrF: hypothesis, reference and matching n-grams per character order). So every bootstrap
resample of a corpus is a sum of rows already extracted: `item_stats` extracts the rows once
with sacrebleu's own code, and `bleu_from_stats` / `chrf_from_stats` score many sums at once.

The scoring formulas are sacrebleu's `_compute_score_from_stats` for its default settings
(BLEU: exp smoothing, 4-grams, no effective order; chrF: 6 character orders, no word n-grams,
beta 2), written over numpy arrays with the same floating-point operations in the same order,
so every value is identical to sacrebleu's to the last digit. The logarithms and exponentials go
through `math` like sacrebleu's: numpy's SIMD versions differ from libm in the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BLEU_ORDER = 4  # sacrebleu's default max_ngram_order
CHRF_ORDER = 6  # sacrebleu's default char_order (word_order 0)
_BETA_SQ = 2**2  # sacrebleu's default chrF beta, squared
WIDTH = {"bleu": 2 + 2 * BLEU_ORDER, "chrf": 3 * CHRF_ORDER}  # columns of a row of statistics


def _metric(name: str):
    from sacrebleu.metrics import BLEU, CHRF

    if name == "bleu":
        return BLEU()
    if name == "chrf":
        return CHRF()
    raise ValueError(f"corpus statistics exist for 'bleu' and 'chrf', not '{name}'")


def item_stats(metric: str, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """Per-item sufficient statistics of corpus `metric` ("bleu" or "chrf"), one reference each.

    Returns:
        [n, d] int64 rows in sacrebleu's layout: BLEU d=10 (hyp_len, ref_len, correct_1..4,
        total_1..4); chrF d=18 (n_hyp, n_ref, n_match for character orders 1..6).
    """
    m = _metric(metric)
    if not hyps:
        return np.zeros((0, WIDTH[metric]), dtype=np.int64)
    rows = m._extract_corpus_statistics(list(hyps), [list(refs)])
    return np.asarray(rows, dtype=np.int64).reshape(len(hyps), WIDTH[metric])


def _elementwise(fn, x: np.ndarray) -> np.ndarray:
    """`fn` (math.log / math.exp) on every element: libm's results, as sacrebleu gets them."""
    return np.fromiter(map(fn, x.ravel().tolist()), dtype=float, count=x.size).reshape(x.shape)


def bleu_from_stats(totals: np.ndarray) -> np.ndarray:
    """Corpus BLEU (0-100) of each row of summed BLEU statistics ([B, 10] -> [B]).

    Same as `BLEU()._compute_score_from_stats(row).score` for every row: brevity penalty
    exp(1 - ref/hyp) when the hypotheses are shorter, precisions 100 * correct / total, an order
    with no match smoothed to 100 / (2^k * total) for its k-th such order, and 0 when nothing
    matches or some order has no n-grams at all.
    """
    t = np.asarray(totals, dtype=np.int64).reshape(-1, WIDTH["bleu"])
    sys_len, ref_len = t[:, 0], t[:, 1]
    correct, total = t[:, 2:2 + BLEU_ORDER], t[:, 2 + BLEU_ORDER:]
    has = total > 0
    usable = correct.any(axis=1) & has.all(axis=1)  # else sacrebleu's score is exactly 0.0
    out = np.zeros(len(t))
    if not usable.any():
        return out
    c, n = correct[usable], total[usable]
    k = np.cumsum(c == 0, axis=1)  # smoothing doubles once per order without a match
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(c > 0, 100.0 * c / n, 100.0 / (2.0**k * n))  # [u, 4]
        logs = _elementwise(math.log, prec)
        acc = logs[:, 0]
        for j in range(1, BLEU_ORDER):  # left to right, as Python's sum() of sacrebleu adds them
            acc = acc + logs[:, j]
        h, r = sys_len[usable], ref_len[usable]
        short = h < r
        bp = np.ones(len(h))
        bp[short] = _elementwise(math.exp, 1 - r[short] / h[short])
    out[usable] = bp * _elementwise(math.exp, acc / BLEU_ORDER)
    return out


def chrf_from_stats(totals: np.ndarray) -> np.ndarray:
    """Corpus chrF (0-100) of each row of summed chrF statistics ([B, 18] -> [B]).

    Same as `CHRF()._compute_score_from_stats(row).score` for every row: precision and recall
    averaged over the orders where both hypothesis and reference have n-grams, then
    F_beta = (1 + beta^2) P R / (beta^2 P + R) with beta = 2, times 100 (0 when P + R = 0).
    """
    t = np.asarray(totals, dtype=np.int64).reshape(-1, WIDTH["chrf"])
    avg_p, avg_r = np.zeros(len(t)), np.zeros(len(t))
    eff = np.zeros(len(t), dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(CHRF_ORDER):  # orders in sacrebleu's order: the sums round the same way
            n_hyp, n_ref, n_match = t[:, 3 * i], t[:, 3 * i + 1], t[:, 3 * i + 2]
            ok = (n_hyp > 0) & (n_ref > 0)
            avg_p = np.where(ok, avg_p + n_match / n_hyp, avg_p)
            avg_r = np.where(ok, avg_r + n_match / n_ref, avg_r)
            eff += ok
        avg_p = np.where(eff > 0, avg_p / eff, 0.0)
        avg_r = np.where(eff > 0, avg_r / eff, 0.0)
        score = (1 + _BETA_SQ) * avg_p * avg_r
        score = score / (_BETA_SQ * avg_p + avg_r)
    return np.where(avg_p + avg_r != 0, 100 * score, 0.0)


FROM_STATS = {"bleu": bleu_from_stats, "chrf": chrf_from_stats}
