"""Paired comparison of variants on every task they share, from the eval files on disk.

For two variants evaluated on the same items (run_dir/eval/<variant>/<task>/samples.jsonl),
each per-sample ("mean") metric gets: the mean difference b - a with a paired bootstrap CI,
a paired test (exact McNemar when every value is 0 or 1, else a sign-flip permutation test),
and the minimal detectable difference of the eval set. Items are paired by sample id. Corpus
metrics (corpus chrF, BLEU) have no per-sample values: they get a paired bootstrap that re-scores
both variants on the same resampled items with the task's own `corpus_score` (Koehn, 2004), which
needs the task's references, so the task is loaded again from its summary (name, options, split).
Where the task gives the metric as summed per-sample statistics (`corpus_stats`: BLEU and chrF
n-gram counts), each resample sums rows instead of re-scoring text; the numbers are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.evaluation import stats
from tunelab.generation.types import answer_texts
from tunelab.models.ref import split_prompting
from tunelab.evaluation.results import summary_records
from tunelab.runs import read_json


def eval_index(run_dir: Path) -> dict[str, dict[str, Path]]:
    """{variant folder: {task label: result folder}} of every finished eval result of a run."""
    root = Path(run_dir) / "eval"
    out: dict[str, dict[str, Path]] = {}
    if not root.is_dir():
        return out
    for vdir in sorted(p for p in root.iterdir() if p.is_dir()):
        tasks = {t.name: t for t in sorted(vdir.iterdir()) if (t / "summary.json").is_file()}
        if tasks:
            out[vdir.name] = tasks
    return out


def per_sample_values(result_dir: Path, metric: str) -> dict[str, float]:
    """sample id -> value of `metric` (samples where it is None are left out), from the records
    the folder's summary.json was computed from."""
    out = {}
    for r in summary_records(result_dir):
        v = (r.get("values") or {}).get(metric)
        if v is not None and "id" in r:
            out[str(r["id"])] = float(v)
    return out


def compare_pair(a_dir: Path, b_dir: Path, a: str, b: str, task: str, *, alpha: float, power: float,
                 confidence: float, n_resamples: int, permutation_resamples: int, seed: int) -> list[dict[str, Any]]:
    """One row per metric of `task` for variants a (reference) and b; see the module docstring."""
    sa, sb = read_json(a_dir / "summary.json"), read_json(b_dir / "summary.json")
    rows = []
    for name, m in sa.get("metrics", {}).items():
        mb = sb.get("metrics", {}).get(name)
        if mb is None:
            continue
        row: dict[str, Any] = {"a": a, "b": b, "task": task, "metric": name,
                               "higher_is_better": bool(m.get("higher_is_better", True)),
                               "value_a": m.get("value"), "value_b": mb.get("value"),
                               "aggregation": m.get("aggregation", "mean")}
        if row["aggregation"] != "mean":
            rows.append(corpus_pair(row, a_dir, b_dir, sa, confidence=confidence, alpha=alpha,
                                    n_resamples=n_resamples, seed=seed))
            continue
        va, vb = per_sample_values(a_dir, name), per_sample_values(b_dir, name)
        ids = [i for i in va if i in vb]
        xa, xb = [va[i] for i in ids], [vb[i] for i in ids]
        row.update(n=len(ids), n_a=len(va), n_b=len(vb))
        if len(ids) < len(va) or len(ids) < len(vb):
            row["note"] = f"paired on the {len(ids)} items both have ({len(va)} vs {len(vb)})"
        if not ids:
            row.update(test=None, note="no shared items")
            rows.append(row)
            continue
        if len(set(xa + xb)) == 1:  # every item scored the same by both: nothing to test
            row.update(diff=0.0, ci_low=0.0, ci_high=0.0, confidence=confidence, mean_a=xa[0], mean_b=xb[0],
                       test="none", p_value=1.0, alpha=alpha, significant=False, mdd=None, better=None,
                       detectable=None, note=f"every item scores {xa[0]:g} for both variants")
            rows.append(row)
            continue
        binary = all(x in (0.0, 1.0) for x in xa + xb)
        boot = stats.paired_bootstrap(xa, xb, confidence=confidence, n_resamples=n_resamples, seed=seed)
        row.update(diff=boot["diff"], ci_low=boot["ci_low"], ci_high=boot["ci_high"], confidence=confidence,
                   mean_a=sum(xa) / len(xa), mean_b=sum(xb) / len(xb))
        if binary:
            t = stats.mcnemar_exact(xa, xb)
            row.update(test="mcnemar-exact", p_value=t["p_value"], a_only=t["a_only"], b_only=t["b_only"])
        else:
            t = stats.paired_permutation(xa, xb, n_resamples=permutation_resamples, seed=seed)
            row.update(test="permutation" + ("-exact" if t["exact"] else ""), p_value=t["p_value"])
        diffs = [y - x for x, y in zip(xa, xb)]
        mdd = stats.minimal_detectable_difference(diffs, alpha=alpha, power=power, binary=binary)
        better = (boot["diff"] > 0) == row["higher_is_better"] if boot["diff"] != 0 else None
        row.update(alpha=alpha, significant=row["p_value"] < alpha, mdd=mdd, better=better,
                   detectable=None if mdd is None else abs(boot["diff"]) >= mdd)
        rows.append(row)
    return rows


def corpus_pair(row: dict[str, Any], a_dir: Path, b_dir: Path, summary: dict[str, Any], *, confidence: float,
                alpha: float, n_resamples: int, seed: int) -> dict[str, Any]:
    """`row` completed with a paired bootstrap of a corpus metric over the items both variants have."""
    from tunelab.evaluation.registry import get_task
    from tunelab.evaluation.task import SampleScore
    from tunelab.errors import TunelabError

    try:
        task = get_task(summary["task"], **(summary.get("options") or {}))
        samples = {str(s.id): s for s in task.load(summary.get("split") or task.default_split)}
    except (TunelabError, OSError, KeyError, TypeError) as e:
        row.update(test=None, note=f"corpus metric: no paired test, the task's references could not be loaded ({e})")
        return row
    ra = {str(r["id"]): r for r in summary_records(a_dir) if "id" in r}
    rb = {str(r["id"]): r for r in summary_records(b_dir) if "id" in r}
    ids = [i for i in ra if i in rb and i in samples]
    row.update(n=len(ids), n_a=len(ra), n_b=len(rb))
    if len(ids) < len(ra) or len(ids) < len(rb):
        row["note"] = f"paired on the {len(ids)} items both have ({len(ra)} vs {len(rb)})"
    if not ids:
        row.update(test=None, note="no shared items")
        return row
    items = [samples[i] for i in ids]

    def inputs(records: dict[str, dict[str, Any]]):
        recs = [records[i] for i in ids]
        gens = answer_texts([r.get("generations") or [] for r in recs])  # scored as the engine scores them
        scores = [SampleScore(r.get("values") or {}, r.get("scores") or [], r.get("extra") or {}) for r in recs]
        return gens, scores

    (gens_a, scores_a), (gens_b, scores_b) = inputs(ra), inputs(rb)
    summed_a = task.corpus_stats(row["metric"], items, gens_a, scores_a)
    summed_b = task.corpus_stats(row["metric"], items, gens_b, scores_b)
    if summed_a is not None and summed_b is not None:
        boot = stats.paired_bootstrap_summed(summed_a, summed_b, confidence=confidence,
                                             n_resamples=n_resamples, seed=seed)
        mean_a, mean_b = summed_a.value(), summed_b.value()
    else:
        def scorer(gens: list[list[str]], scores: list[SampleScore]):
            return lambda idx: task.corpus_score(row["metric"], [items[j] for j in idx], [gens[j] for j in idx],
                                                 [scores[j] for j in idx])

        score_a, score_b = scorer(gens_a, scores_a), scorer(gens_b, scores_b)
        boot = stats.paired_bootstrap_corpus(len(ids), score_a, score_b, confidence=confidence,
                                             n_resamples=n_resamples, seed=seed)
        mean_a, mean_b = score_a(range(len(ids))), score_b(range(len(ids)))
    better = (boot["diff"] > 0) == row["higher_is_better"] if boot["diff"] != 0 else None
    row.update(diff=boot["diff"], ci_low=boot["ci_low"], ci_high=boot["ci_high"], confidence=confidence,
               mean_a=mean_a, mean_b=mean_b, test="paired-bootstrap",
               p_value=boot["p_value"], alpha=alpha, significant=boot["p_value"] < alpha, mdd=None,
               better=better, detectable=None)
    return row


def paired_comparisons(run_dir: Path, reference: str, tuned: str | None, *, alpha: float = 0.05, power: float = 0.8,
                       confidence: float = 0.95, n_resamples: int = 1000, permutation_resamples: int = 10000,
                       seed: int = 0) -> dict[str, Any]:
    """Every evaluated variant against `reference` on each task both have, plus `tuned` against
    every prompting baseline (`base+few-shot`, ...). Returns paired.json's content."""
    index = eval_index(run_dir)
    pairs: list[tuple[str, str]] = []
    if reference in index:
        pairs += [(reference, v) for v in index if v != reference]
    if tuned in index:
        pairs += [(v, tuned) for v in index if split_prompting(v)[1] is not None and (v, tuned) not in pairs]
    kw = dict(alpha=alpha, power=power, confidence=confidence, n_resamples=n_resamples,
              permutation_resamples=permutation_resamples, seed=seed)
    rows = []
    for a, b in pairs:
        for task in index[a]:
            if task in index[b]:
                rows += compare_pair(index[a][task], index[b][task], a, b, task, **kw)
    return {"reference": reference, "tuned": tuned, "settings": kw, "rows": rows,
            "variants": {v: sorted(t) for v, t in index.items()}}


def baseline_table(run_dir: Path) -> list[dict[str, Any]]:
    """One row per (variant folder, task, metric) with value and CI and how it was prompted:
    base vs tuned vs prompting baselines in one place."""
    rows = []
    for variant, tasks in eval_index(run_dir).items():
        for task, folder in tasks.items():
            s = read_json(folder / "summary.json")
            prompt, style = (s.get("prompt") or {}).get("variant"), (s.get("prompt") or {}).get("style")
            for name, m in s.get("metrics", {}).items():
                rows.append({"variant": variant, "task": task, "metric": name, "prompt": prompt, "style": style,
                             "fewshot_ids": s.get("fewshot_ids"),
                             "value": m.get("value"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"),
                             "n": m.get("n"), "higher_is_better": m.get("higher_is_better", True)})
    return rows
