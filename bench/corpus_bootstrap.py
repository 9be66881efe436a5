"""Bootstrap of corpus BLEU/chrF: re-scoring every resample from text vs summing item statistics.

    python bench/corpus_bootstrap.py [--resamples 1000] [--seed 0]

The items are the quickstart's similarity items (`builtin:stdlib-instruct`, test split). No model
is loaded: two systems' generations are made from the references (a "base" that keeps the first
lines and drops the rest, some empty, and a "final" closer to the references), so the scores
sit in a realistic middle range. Each way computes what `tunelab eval` and `tunelab compare` need
for both corpus metrics: the CI of each system (1 per variant) and the paired bootstrap of the
difference, all on the same seeded draws:

- old: sacrebleu's `corpus_score` on the resampled texts, every resample (today's re-scoring);
- task: `SimilarityTask.corpus_score` on every resample (item statistics reused between calls);
- new: `Task.corpus_stats` once, then `stats.bootstrap_ci_summed` / `paired_bootstrap_summed`.

Printed: seconds of each way and the ratios old / task and old / new. The three must give
identical numbers (the script exits 1 otherwise); nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def systems(refs: list[str]) -> dict[str, list[list[str]]]:
    """Two deterministic systems' generations (one each per item) made from the references."""
    base, final = [], []
    for k, ref in enumerate(refs):
        lines = ref.splitlines()
        base.append(["" if k % 5 == 0 else "\n".join(lines[: max(1, len(lines) // 3)])])
        final.append([ref if k % 3 == 0 else "\n".join(line for j, line in enumerate(lines) if j % 4 != 1)])
    return {"base": base, "final": final}


def old_way(metric: str, refs: list[str], hyps: list[str]):
    from sacrebleu.metrics import BLEU, CHRF

    scorer = BLEU() if metric == "bleu" else CHRF()
    return lambda idx: scorer.corpus_score([hyps[i] for i in idx], [[refs[i] for i in idx]]).score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from tunelab.evaluation import stats
    from tunelab.evaluation.registry import get_task
    from tunelab.evaluation.tasks.similarity import unfence

    samples = get_task("similarity").load("test")
    refs = [s.data["reference"] for s in samples]
    gens = systems(refs)
    n, kw = len(samples), dict(n_resamples=args.resamples, seed=args.seed)
    everything = np.arange(n)
    print(f"{n} similarity items (builtin:stdlib-instruct test), {args.resamples} resamples, "
          f"corpus BLEU + chrF: CI of 2 systems + paired bootstrap")

    results: dict[str, list] = {}
    times: dict[str, float] = {}
    for way in ("old", "task", "new"):
        task = get_task("similarity")  # a fresh task: nothing extracted before the clock starts
        t0 = time.perf_counter()
        out = []
        for metric in ("bleu", "chrf_corpus"):
            if way == "new":
                summed = {v: task.corpus_stats(metric, samples, g, []) for v, g in gens.items()}
                out += [stats.bootstrap_ci_summed(summed[v], **kw) for v in gens]
                out.append(stats.paired_bootstrap_summed(summed["base"], summed["final"], **kw))
                continue
            if way == "old":
                score = {v: old_way(metric, refs, [unfence(x[0], r) for x, r in zip(g, refs)]) for v, g in gens.items()}
            else:
                score = {v: (lambda idx, g=g, m=metric: task.corpus_score(m, [samples[i] for i in idx],
                                                                          [g[i] for i in idx], []))
                         for v, g in gens.items()}
            out += [stats.bootstrap_ci(everything, statistic=score[v], **kw) for v in gens]
            out.append(stats.paired_bootstrap_corpus(n, score["base"], score["final"], **kw))
        times[way] = time.perf_counter() - t0
        results[way] = out
        print(f"  {way:>4}: {times[way]:8.3f} s")
    print(f"old / task: {times['old'] / times['task']:.1f}x   old / new: {times['old'] / times['new']:.1f}x")
    bleu_p, chrf_p = results["new"][2], results["new"][5]
    print(f"values: BLEU CI base {results['new'][0]}, final {results['new'][1]}, paired diff {bleu_p['diff']:.3f}; "
          f"chrF paired diff {chrf_p['diff']:.3f}")
    if not results["old"] == results["task"] == results["new"]:
        print("MISMATCH: the ways gave different numbers", file=sys.stderr)
        return 1
    print("identical values: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
