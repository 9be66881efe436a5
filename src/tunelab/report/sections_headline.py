"""The report's first screen: did fine-tuning help?

One line per task: the reference (base) -> the tuned variant on the task's first metric, each
with its CI, then the paired test of the difference and its p-value and the verdict; the
checkpoint selection's test score where there is one; and how many held-out items training
already saw (the data stage's overlap counts). Everything comes from files the other stages
wrote (compare/paired.json, eval/*/summary.json, eval/selection.json, data/stats.json).
"""

from __future__ import annotations

from typing import Any

from tunelab.evaluation.results import cap_text, mixed_caps
from tunelab.report.blocks import Para, Section, fmt, fmt_ci
from tunelab.report.load import RunFiles


def fmt_p_exact(p: float | None) -> str:
    """A p-value as a sceptic wants it: small ones in scientific notation, not `<0.0001`."""
    if p is None:
        return "-"
    return f"{p:.1e}" if 0 < p < 1e-3 else f"{p:.4f}" if p > 0 else "0"


def _metric(run: RunFiles, variant: str, task: str, metric: str) -> dict[str, Any]:
    return ((run.evals.get(variant) or {}).get(task) or {}).get("metrics", {}).get(metric) or {}


def _first_metric(run: RunFiles, variant: str, task: str) -> str | None:
    metrics = ((run.evals.get(variant) or {}).get(task) or {}).get("metrics") or {}
    return next(iter(metrics), None)


def task_line(run: RunFiles, row: dict[str, Any]) -> Para:
    """`task metric: a value [CI] -> b value [CI]; b - a [CI]; test p; verdict` for one paired row."""
    a, b, task, m = row["a"], row["b"], row["task"], row["metric"]
    va, vb = _metric(run, a, task, m), _metric(run, b, task, m)
    arrow = "↑" if row.get("higher_is_better", True) else "↓"
    if row.get("test") == "none":
        verdict, cls = "identical on every item: no evidence of a change", "warn"
    elif row.get("significant"):
        verdict = f"{b} {'better' if row.get('better') else 'worse'}, significant"
        cls = "" if row.get("better") else "warn"
    else:
        verdict, cls = "not significant", "warn"
    extra = f", {row['b_only']} vs {row['a_only']} discordant" if row.get("test") == "mcnemar-exact" else ""
    conf = round(100 * row.get("confidence", 0.95))
    summaries = {v: (run.evals.get(v) or {}).get(task) or {} for v in (a, b)}
    mixed, cap = mixed_caps(summaries), cap_text(summaries[b]) or cap_text(summaries[a])
    n = f"n={fmt(row.get('n'))}" + (f", capped: {cap}" if cap and not mixed else "")
    if mixed:
        verdict, cls = f"{verdict}; but {mixed}", "warn"
    elif cap:
        cls = "warn"
    text = (f"{task} — {m} {arrow} ({n}): {a} {fmt_ci(va.get('value', row.get('mean_a')), va.get('ci_low'), va.get('ci_high'))}"
            f" → {b} {fmt_ci(vb.get('value', row.get('mean_b')), vb.get('ci_low'), vb.get('ci_high'))}; "
            f"difference {fmt(row.get('diff'))}, {conf}% CI [{fmt(row.get('ci_low'))}, {fmt(row.get('ci_high'))}]; "
            f"{row.get('test')} p = {fmt_p_exact(row.get('p_value'))}{extra}: {verdict}.")
    return Para(text, cls)


def selection_line(sel: dict[str, Any]) -> Para | None:
    """The checkpoint chosen on the selection split (or, with no difference between the
    candidates, the one `best` resolves to), scored on the report split against base."""
    best, rep = sel.get("resolved") or sel.get("best"), sel.get("report") or {}
    if not best or best not in rep:
        return None
    diff = sel.get("difference_vs_base") or {}
    base = rep.get("base")
    on = sel.get("selection_split")
    if sel.get("on_training_items"):
        on = f"{on} (TRAINING items)"
    if sel.get("decision", "best") == "best":
        how = f"{best} had the best {sel.get('metric')} on {on}"
    else:
        how = f"no checkpoint differed beyond the noise in {sel.get('metric')} on {on}; best resolves to {best}"
    text = (f"Checkpoint selection: {how}; on "
            f"{sel.get('report_split')} it scores {fmt_ci(rep[best].get('value'), rep[best].get('ci_low'), rep[best].get('ci_high'))}")
    if base:
        text += f" against base {fmt_ci(base.get('value'), base.get('ci_low'), base.get('ci_high'))}"
    if diff.get("diff") is not None:
        text += (f" (difference {fmt(diff['diff'])}, paired bootstrap CI [{fmt(diff.get('ci_low'))}, "
                 f"{fmt(diff.get('ci_high'))}])")
    return Para(text + ".", "warn" if sel.get("on_training_items") else "")


def overlap_line(stats: dict[str, Any] | None) -> Para | None:
    """How many test items have a near-duplicate (prompt or reference answer) in training."""
    test = ((stats or {}).get("overlap") or {}).get("test")
    if not test or not test.get("n"):
        return None
    key = ("prompt_or_reply_near_duplicate_of_train" if "prompt_or_reply_near_duplicate_of_train" in test
           else "near_duplicate_of_train")
    what = "prompt or reference answer" if key.startswith("prompt_or") else "prompt (reference answers not checked)"
    k = test.get(key) or 0
    text = (f"Overlap: {k} of {test['n']} test items have a near-duplicate {what} in the training data"
            + ("." if k == 0 else ": their scores measure recall as much as generalisation."))
    return Para(text, "" if k == 0 else "warn")


def headline_section(run: RunFiles, sid: str) -> Section | None:
    """'Did fine-tuning help?': one line per task, before every detail section."""
    paired = run.compare.get("paired") or {}
    ref, tuned = paired.get("reference"), paired.get("tuned")
    sel = run.selection or {}
    rows = [r for r in paired.get("rows") or [] if r.get("test") and r.get("a") == ref
            and r["metric"] == _first_metric(run, ref, r["task"])]
    lines: list[Para] = []
    for task in dict.fromkeys(r["task"] for r in rows):  # in paired.json's order
        # The selected checkpoint is the tuned model of the selection's task (chosen on val, so its
        # test score is not the max of noisy ones); elsewhere the variant compare names.
        by_variant = {r["b"]: r for r in rows if r["task"] == task}
        chosen = (sel.get("resolved") or sel.get("best")) if task.split("@")[0] == sel.get("task") else None
        row = by_variant.get(chosen) or by_variant.get(tuned)
        if row is not None:
            lines.append(task_line(run, row))
    selected = selection_line(sel) if sel else None
    over = overlap_line(run.data_stats)
    if not lines and selected is None:
        return None
    s = Section(sid, "Did fine-tuning help?")
    s.blocks.extend(lines)
    s.blocks.extend(b for b in (selected, over) if b is not None)
    s.blocks.append(Para("Each line: value [CI] per variant, the paired difference with its CI, and the paired test "
                         "(details in the paired comparison below).", "note"))
    return s
