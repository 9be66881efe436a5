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

Items are paired by id only where both records hold the same item (the engine stores a hash of
each item's content): two runs whose data differ under the same ids (another split seed, a
re-shipped dataset) are not paired on those, and the row says how many were left out and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.evaluation.pairing import paired_corpus, paired_test
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


def item_hashes(result_dir: Path) -> dict[str, str]:
    """sample id -> the hash of the item's content its record was scored on (records from before
    the engine stored it have none)."""
    return {str(r["id"]): str(r["item"]) for r in summary_records(result_dir) if "id" in r and r.get("item")}


def shared_ids(a_dir: Path, b_dir: Path, ids_a: Any, ids_b: Any) -> tuple[list[str], int]:
    """The ids in both `ids_a` and `ids_b` (in a's order) whose items are the same in both
    results, and how many shared ids were left out because their items differ."""
    ha, hb = item_hashes(a_dir), item_hashes(b_dir)
    common = [i for i in ids_a if i in ids_b]
    same = [i for i in common if i not in ha or i not in hb or ha[i] == hb[i]]
    return same, len(common) - len(same)


def _pairing_note(row: dict[str, Any], n: int, n_a: int, n_b: int, differ: int) -> None:
    """Say when the pair was not scored on the same items."""
    notes = []
    if differ:
        notes.append(f"{differ} items share an id but differ in content between the two (other data "
                     "behind the same ids); left out")
    if n < n_a or n < n_b:
        notes.append(f"paired on the {n} items both have ({n_a} vs {n_b})")
    if notes:
        row["note"] = "; ".join(notes)
        row["same_items"] = False
    else:
        row["same_items"] = True


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
        ids, differ = shared_ids(a_dir, b_dir, va, vb)
        xa, xb = [va[i] for i in ids], [vb[i] for i in ids]
        row.update(n=len(ids), n_a=len(va), n_b=len(vb))
        _pairing_note(row, len(ids), len(va), len(vb), differ)
        if not ids:
            row.update(test=None, note="no shared items" + (f" ({row['note']})" if differ else ""))
            rows.append(row)
            continue
        row.update(paired_test(xa, xb, higher_is_better=row["higher_is_better"], alpha=alpha, power=power,
                               confidence=confidence, n_resamples=n_resamples,
                               permutation_resamples=permutation_resamples, seed=seed))
        rows.append(row)
    return rows


def corpus_pair(row: dict[str, Any], a_dir: Path, b_dir: Path, summary: dict[str, Any], *, confidence: float,
                alpha: float, n_resamples: int, seed: int) -> dict[str, Any]:
    """`row` completed with a paired bootstrap of a corpus metric over the items both variants have."""
    from tunelab.evaluation.registry import get_task
    from tunelab.errors import TunelabError

    try:
        task = get_task(summary["task"], **(summary.get("options") or {}))
        samples = {str(s.id): s for s in task.load(summary.get("split") or task.default_split)}
    except (TunelabError, OSError, KeyError, TypeError) as e:
        row.update(test=None, note=f"corpus metric: no paired test, the task's references could not be loaded ({e})")
        return row
    ra = {str(r["id"]): r for r in summary_records(a_dir) if "id" in r}
    rb = {str(r["id"]): r for r in summary_records(b_dir) if "id" in r}
    ids, differ = shared_ids(a_dir, b_dir, [i for i in ra if i in samples], rb)
    row.update(n=len(ids), n_a=len(ra), n_b=len(rb))
    _pairing_note(row, len(ids), len(ra), len(rb), differ)
    if not ids:
        row.update(test=None, note="no shared items" + (f" ({row['note']})" if differ else ""))
        return row
    items = [samples[i] for i in ids]
    row.update(paired_corpus(task, row["metric"], items, [ra[i] for i in ids], [rb[i] for i in ids],
                             higher_is_better=row["higher_is_better"], alpha=alpha, confidence=confidence,
                             n_resamples=n_resamples, seed=seed))
    return row


def paired_comparisons(run_dir: Path | None, reference: str, tuned: str | None, *, alpha: float = 0.05,
                       power: float = 0.8, confidence: float = 0.95, n_resamples: int = 1000,
                       permutation_resamples: int = 10000, seed: int = 0,
                       index: dict[str, dict[str, Path]] | None = None,
                       among: list[str] | None = None) -> dict[str, Any]:
    """Every evaluated variant against `reference` on each task both have, plus `tuned` against
    every prompting baseline (`base+few-shot`, ...). Returns paired.json's content.

    Args:
        index: {variant label: {task label: result folder}} (default: `eval_index(run_dir)`),
            so variants of other runs can be paired (`variants.result_index`).
        among: also pair every two of these variants (in this order; earlier = a), not only
            each against the reference: a sweep compares its trials with each other.
    """
    index = eval_index(run_dir) if index is None else index
    pairs: list[tuple[str, str]] = []
    if reference in index:
        pairs += [(reference, v) for v in index if v != reference]
    if tuned in index:
        pairs += [(v, tuned) for v in index if split_prompting(v)[1] is not None and (v, tuned) not in pairs]
    listed = [v for v in among or [] if v in index and v != reference]
    for i, a in enumerate(listed):
        pairs += [(a, b) for b in listed[i + 1:] if (a, b) not in pairs and (b, a) not in pairs]
    kw = dict(alpha=alpha, power=power, confidence=confidence, n_resamples=n_resamples,
              permutation_resamples=permutation_resamples, seed=seed)
    rows = []
    for a, b in pairs:
        for task in index[a]:
            if task in index[b]:
                rows += compare_pair(index[a][task], index[b][task], a, b, task, **kw)
    return {"reference": reference, "tuned": tuned, "settings": kw, "rows": rows,
            "variants": {v: sorted(t) for v, t in index.items()}}


def baseline_table(run_dir: Path | None, index: dict[str, dict[str, Path]] | None = None) -> list[dict[str, Any]]:
    """One row per (variant folder, task, metric) with value and CI and how it was prompted:
    base vs tuned vs prompting baselines in one place (`index` as in `paired_comparisons`)."""
    rows = []
    for variant, tasks in (eval_index(run_dir) if index is None else index).items():
        for task, folder in tasks.items():
            s = read_json(folder / "summary.json")
            prompt, style = (s.get("prompt") or {}).get("variant"), (s.get("prompt") or {}).get("style")
            for name, m in s.get("metrics", {}).items():
                rows.append({"variant": variant, "task": task, "metric": name, "prompt": prompt, "style": style,
                             "fewshot_ids": s.get("fewshot_ids"),
                             "value": m.get("value"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"),
                             "n": m.get("n"), "higher_is_better": m.get("higher_is_better", True)})
    return rows
