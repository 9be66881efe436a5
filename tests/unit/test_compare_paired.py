"""Paired comparison from eval files: the right test per metric, pairing by id, directions, MDD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.compare.paired import baseline_table, paired_comparisons
from tunelab.evaluation import stats


def write_eval(run: Path, variant: str, task: str, values: dict[str, dict[str, float | None]],
               metrics: dict[str, tuple[bool, str]], prompt: str = "zero-shot") -> None:
    """eval/<variant>/<task>/{samples.jsonl, summary.json} as the runner writes them."""
    out = run / "eval" / variant / task
    out.mkdir(parents=True)
    lines = [json.dumps({"id": i, "values": v, "generations": ["g"], "scores": [{"verdict": "x"}]})
             for i, v in values.items()]
    (out / "samples.jsonl").write_text("\n".join(lines) + "\n")
    summary = {"task": task, "version": "1", "n": len(values), "prompt": {"variant": prompt},
               "metrics": {m: {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": len(values), "higher_is_better": hib,
                               "aggregation": agg} for m, (hib, agg) in metrics.items()}}
    (out / "summary.json").write_text(json.dumps(summary))


METRICS = {"acc": (True, "mean"), "err": (False, "mean"), "bleu": (True, "corpus"), "same": (True, "mean")}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    ids = [f"q{i}" for i in range(40)]
    base = {i: {"acc": float(k % 3 == 0), "err": 2.0 + (k % 5) / 10, "same": 1.0} for k, i in enumerate(ids)}
    final = {i: {"acc": float(k % 3 == 0 or k % 2 == 0), "err": 1.0 + (k % 7) / 10, "same": 1.0}
             for k, i in enumerate(ids) if k != 0}  # one item missing: paired on the other 39
    shots = {i: {"acc": float(k % 4 == 0), "err": 2.1, "same": 1.0} for k, i in enumerate(ids)}
    write_eval(tmp_path, "base", "t", base, METRICS)
    write_eval(tmp_path, "final", "t", final, METRICS)
    write_eval(tmp_path, "base+few-shot", "t", shots, METRICS, prompt="few-shot")
    write_eval(tmp_path, "final", "only-final", {"q1": {"acc": 1.0}}, {"acc": (True, "mean")})
    return tmp_path


def rows_by(result, a, b):
    return {r["metric"]: r for r in result["rows"] if r["a"] == a and r["b"] == b}


def test_each_metric_gets_the_right_paired_test(run):
    res = paired_comparisons(run, "base", "final", n_resamples=200, seed=1)
    pairs = {(r["a"], r["b"]) for r in res["rows"]}
    assert pairs == {("base", "final"), ("base", "base+few-shot"), ("base+few-shot", "final")}
    assert all(r["task"] == "t" for r in res["rows"])  # only-final is not shared
    rows = rows_by(res, "base", "final")
    ids = [f"q{k}" for k in range(1, 40)]
    a = [float(k % 3 == 0) for k in range(1, 40)]
    b = [float(k % 3 == 0 or k % 2 == 0) for k in range(1, 40)]
    acc = rows["acc"]
    assert acc["test"] == "mcnemar-exact" and acc["n"] == len(ids) and "39 items" in acc["note"]
    assert acc["p_value"] == stats.mcnemar_exact(a, b)["p_value"]
    assert acc["diff"] == pytest.approx(sum(b) / 39 - sum(a) / 39)
    assert acc["significant"] and acc["better"] and acc["ci_low"] <= acc["diff"] <= acc["ci_high"]
    assert acc["mdd"] == pytest.approx(stats.minimal_detectable_difference([y - x for x, y in zip(a, b)], binary=True))
    err = rows["err"]
    ea = [2.0 + (k % 5) / 10 for k in range(1, 40)]
    eb = [1.0 + (k % 7) / 10 for k in range(1, 40)]
    assert err["test"].startswith("permutation")
    assert err["p_value"] == stats.paired_permutation(ea, eb, n_resamples=10000, seed=1)["p_value"]
    assert err["diff"] < 0 and err["better"] is True  # lower error is better
    assert rows["bleu"]["test"] is None and "corpus" in rows["bleu"]["note"]
    assert rows["same"]["test"] == "none" and rows["same"]["p_value"] == 1.0 and rows["same"]["mdd"] is None


def test_no_reference_results_means_no_pairs(tmp_path):
    assert paired_comparisons(tmp_path, "base", "final")["rows"] == []


def test_baseline_table_lists_every_variant_with_its_prompt(run):
    rows = baseline_table(run)
    assert {(r["variant"], r["prompt"]) for r in rows} == {("base", "zero-shot"), ("final", "zero-shot"),
                                                          ("base+few-shot", "few-shot")}
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in rows)


def test_corpus_bootstrap_of_a_mean_is_the_per_item_paired_bootstrap():
    import numpy as np

    # Integer scores: the two ways of taking a mean difference agree exactly on its sign.
    a = np.array([1, 5, 2, 9, 4, 3, 8])
    b = a + np.array([2, -1, 3, 0, 1, 4, -2])
    corpus = stats.paired_bootstrap_corpus(len(a), lambda i: a[i].mean(), lambda i: b[i].mean(), n_resamples=300, seed=3)
    per_item = stats.paired_bootstrap(a, b, n_resamples=300, seed=3)
    assert corpus == pytest.approx(per_item)


def test_corpus_metrics_get_a_paired_bootstrap_with_the_tasks_own_scorer(tmp_path):
    """Corpus BLEU/chrF of a similarity eval: the references are reloaded from the task, both
    variants are re-scored on the same draws, and the difference is corpus(b) - corpus(a)."""
    from sacrebleu.metrics import BLEU, CHRF

    from tunelab.evaluation.registry import get_task

    task = get_task("similarity")
    samples = task.load("test")[:30]
    refs = [s.data["reference"] for s in samples]
    gens = {"base": ["return None\n" for _ in refs],
            "final": [r if k % 2 == 0 else "return None\n" for k, r in enumerate(refs)]}
    for variant, hyps in gens.items():
        out = tmp_path / "eval" / variant / "similarity"
        out.mkdir(parents=True)
        (out / "samples.jsonl").write_text("".join(
            json.dumps({"id": s.id, "generations": [h], "scores": [{}], "values": {}}) + "\n"
            for s, h in zip(samples, hyps)))
        (out / "summary.json").write_text(json.dumps({
            "task": "similarity", "options": task.options(), "split": "test", "n": len(samples),
            "metrics": {"bleu": {"value": BLEU().corpus_score(hyps, [refs]).score, "higher_is_better": True,
                                 "aggregation": "corpus"},
                        "chrf_corpus": {"value": CHRF().corpus_score(hyps, [refs]).score, "higher_is_better": True,
                                        "aggregation": "corpus"}}}))
    rows = rows_by(paired_comparisons(tmp_path, "base", "final", n_resamples=200), "base", "final")
    for metric, scorer in (("bleu", BLEU()), ("chrf_corpus", CHRF())):
        r = rows[metric]
        expected = scorer.corpus_score(gens["final"], [refs]).score - scorer.corpus_score(gens["base"], [refs]).score
        assert r["test"] == "paired-bootstrap" and r["n"] == 30
        assert r["diff"] == pytest.approx(expected) and expected > 10
        assert r["ci_low"] <= r["diff"] <= r["ci_high"] and r["ci_low"] > 0
        assert r["significant"] and r["better"] and r["p_value"] < 0.05


def test_a_compare_with_other_settings_writes_beside_the_runs_own_files(run):
    """`tunelab compare RUN --set ...` once overwrote compare/*.json, which the report reads."""
    from rich.console import Console

    from tunelab.compare import run_compare
    from tunelab.config import validate_config

    exp = validate_config({"model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"builtin": "math-word"}]},
                           "compare": {"variants": ["base", "best"]}, "eval": {"bootstrap_resamples": 50}})
    quiet = Console(quiet=True)
    run_compare(run, exp, quiet)
    own = {p.name: p.read_bytes() for p in (run / "compare").glob("*.json")}
    assert set(own) == {"paired.json", "baselines.json", "token_classes.json"}
    other = exp.model_copy(update={"compare": exp.compare.model_copy(update={"alpha": 0.01})})
    written = run_compare(run, other, quiet, run_exp=exp)
    assert {p.name: p.read_bytes() for p in (run / "compare").glob("*.json") if "@" not in p.name} == own
    keyed = json.loads(Path(written["paired"]).read_text())
    assert Path(written["paired"]).name.startswith("paired@") and keyed["keyed"] == {"alpha": {"run": 0.05, "here": 0.01}}
    assert keyed["settings"]["alpha"] == 0.01


def test_items_with_one_id_but_other_content_are_not_paired(tmp_path):
    """Two runs with other data behind the same ids (another split, a re-shipped dataset): pairing
    them by id would compare answers to different questions."""
    for variant, vals, items in (("a", [1, 0, 1, 0, 1, 1], "x"), ("b", [1, 1, 1, 1, 0, 0], "x")):
        out = tmp_path / "eval" / variant / "t"
        out.mkdir(parents=True)
        (out / "samples.jsonl").write_text("".join(json.dumps(
            {"id": f"q{i}", "item": f"{items}{i}" if i < 4 or variant == "a" else f"other{i}", "values": {"acc": v}})
            + "\n" for i, v in enumerate(vals)))
        (out / "summary.json").write_text(json.dumps({"task": "t", "metrics": {"acc": {
            "value": sum(vals) / 6, "higher_is_better": True, "aggregation": "mean"}}}))
    row = paired_comparisons(tmp_path, "a", "b", n_resamples=100)["rows"][0]
    assert row["n"] == 4 and row["n_a"] == row["n_b"] == 6 and row["same_items"] is False
    assert "2 items share an id but differ in content" in row["note"]
    assert row["mean_a"] == pytest.approx(0.5) and row["mean_b"] == pytest.approx(1.0)
