"""Report sections over several runs: a sweep's trials, or run directories given together.

The trade-off table (trainable parameters, time, memory, throughput, best validation loss, task
scores with CIs, per-source validation and test loss, cost), every model on every task in one
table (the base-weights variants such as base and base+cot once, then each run's tuned and
selected checkpoint), the Pareto plot of score vs cost, the validation, training and test loss
curves of every run, each run's checkpoint selection, and seed spread where a setting ran with
several seeds. Scores of the rule-based stand-in judge carry a loud warning. With
`sweep.compare`, an introduction to the trials compared with each other, whose views the run
report's compare sections render (`report.cross_sections`).
"""

from __future__ import annotations

import statistics
from typing import Any

from tunelab.report import plots
from tunelab.report.blocks import Cell, Figure, Para, Section, fmt, fmt_ci, fmt_seconds, table


def _values_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "-"


def trials_section(trials: list[dict[str, Any]], rows: list[dict[str, Any]], sid: str,
                   search: dict[str, Any] | None = None) -> Section:
    """Every trial, its overrides and why it ended (finished, pruned at which step, failed how),
    after a line saying what was searched."""
    errors = {r["name"]: r.get("error") for r in rows}
    out = [[t["name"], _values_text(t.get("values") or {}),
            Cell(str(t.get("status")), {"done": "", "pruned": "num"}.get(str(t.get("status")), "worse")),
            t.get("why") or errors.get(t["name"]) or ""]
           for t in trials]
    counts = {s: sum(t.get("status") == s for t in trials) for s in ("done", "pruned", "failed")}
    blocks = [Para(_search_text(search))] if search else []
    blocks.append(table(["trial", "overrides", "status", "how it ended"], out,
                        "each trial is its own run directory under trials/; "
                        + ", ".join(f"{n} {s}" for s, n in counts.items())))
    return Section(sid, "Sweep trials", blocks)


def _search_text(search: dict[str, Any]) -> str:
    """What the sweep searched, in one sentence."""
    if search.get("method") != "optuna":
        parts = [f"grid over {', '.join(search['grid'])}" if search.get("grid") else "",
                 f"zipped {', '.join(search['zip'])}" if search.get("zip") else "",
                 f"seeds {search['seeds']}" if search.get("seeds") else ""]
        return "Searched: " + (" x ".join(p for p in parts if p) or "the listed trials") + "."
    space = [f"{k} in {v}" for k, v in (search.get("choices") or {}).items()]
    space += [f"{k} in [{r['low']}, {r['high']}]{' (log)' if r.get('log') else ''}"
              for k, r in (search.get("space") or {}).items()]
    goals = ", ".join(f"{o['metric']} ({o['direction']})" for o in search.get("objectives") or [])
    text = (f"Searched with Optuna ({search.get('sampler')} sampler, {search.get('n_trials')} trials): "
            f"{'; '.join(space)}. Objectives: {goals}.")
    if search.get("pruner") not in (None, "none"):
        text += f" Pruning: {search['pruner']} on the val {search.get('prune_metric')} at every eval step."
    if search.get("best"):
        text += f" Best: {', '.join(str(b) for b in search['best'])}."
    return text


def tradeoff_section(rows: list[dict[str, Any]], sid: str, currency: str) -> Section | None:
    if not rows:
        return None
    score_keys = sorted({k for r in rows for k in r["scores"]})
    sources = sorted({s for r in rows for s in r["per_source_loss"]})
    cols = ["run", "trainable params", "device time", "wall time", "train tokens", "peak memory (MB)", "tokens/s",
            "best val loss"]
    cols += [f"{k} {'↑' if _hib(rows, k) else '↓'}" for k in score_keys]
    # Per-source losses matter for mixtures: shown when some split has more than one source.
    mixed = len({s.split(": ", 1)[1] for s in sources}) > 1
    cols += [f"loss {s}" for s in sources] if mixed else []
    cols += ["device-hours", f"cost ({currency})"]
    best = {k: _best(rows, k) for k in score_keys}
    out = []
    for r in rows:
        line: list[Any] = [Cell(r["name"], title=_values_text(r["values"])), r.get("trainable_params"),
                           _device_time(r), fmt_seconds(r.get("wall_time_s")), r.get("train_tokens"),
                           r.get("peak_memory_mb"), r.get("tokens_per_s"), r.get("best_val_loss")]
        for k in score_keys:
            sc = r["scores"].get(k)
            line.append(Cell(fmt_ci(sc["value"], sc.get("ci_low"), sc.get("ci_high")) if sc else "-",
                             "better num" if sc and best[k] == r["name"] else "num"))
        if mixed:
            line += [r["per_source_loss"].get(s) for s in sources]
        line += [None if r.get("device_hours") is None else f"{r['device_hours']:.4f}",
                 None if r.get("cost") is None else f"{r['cost']:.4f}"]
        out.append(line)
    s = Section(sid, "Trade-off table", [table(cols, out, "scores of each run's tuned variant with CIs; "
                                                          "green = best of the column (CIs may still overlap)")])
    warn = judge_warning(rows)
    if warn:
        s.blocks.insert(0, warn)
    base = next((r["base_scores"] for r in rows if r.get("base_scores")), {})
    if base:
        s.blocks.append(Para("Base model (no fine-tuning): " + "; ".join(
            f"{k} {fmt_ci(v.get('value'), v.get('ci_low'), v.get('ci_high'))}" for k, v in base.items()
            if k in score_keys) + "."))
    s.blocks.append(Para("Device time is what training computed: GPU seconds on a GPU, the training process's CPU "
                         "seconds on a CPU (times its processes); unlike wall time, other work on the machine (trials "
                         "side by side) does not inflate it. Both are training only, summed over resumed sessions; "
                         "device-hours and cost cover every stage that ran (data, training, evaluation, compare, "
                         "report), and cost adds an endpoint judge's tokens at eval.judge.price_per_million_tokens.",
                         "note"))
    return s


def _device_time(row: dict[str, Any]) -> str | None:
    if row.get("device_seconds") is None:
        return None
    return fmt_seconds(row["device_seconds"]) + (" GPU" if row.get("device_kind") == "gpu" else " CPU")


def _hib(rows: list[dict[str, Any]], key: str) -> bool:
    return next((bool(r["scores"][key].get("higher_is_better", True)) for r in rows if key in r["scores"]), True)


def _best(rows: list[dict[str, Any]], key: str) -> str | None:
    vals = [(r["scores"][key]["value"], r["name"]) for r in rows
            if key in r["scores"] and r["scores"][key].get("value") is not None]
    if len(vals) < 2:
        return None
    top = max(v for v, _ in vals) if _hib(rows, key) else min(v for v, _ in vals)
    winners = [n for v, n in vals if v == top]
    return winners[0] if len(winners) == 1 else None  # a tie has no best


def pareto_section(pareto: dict[str, Any], sid: str, prefix: str) -> Section | None:
    pts = pareto.get("points") or []
    if len(pts) < 2:
        return None
    fig = plots.pareto(pts, pareto["cost"], pareto["metric"], pareto["higher_is_better"])
    front = [p["name"] for p in pts if p.get("front")]
    objectives = pareto.get("objectives") or []
    over = ", ".join(f"{o['metric']} ({o['direction']})" for o in objectives)
    why = (f"red: the Pareto front over the search's objectives, {over} (no other trial is at least as good "
           "in every one and better in one; with more than two objectives a point on the front can look "
           "dominated in this plane)" if objectives else "red: the Pareto front (nothing else is both cheaper and better)")
    return Section(sid, "Pareto: score vs cost", [
        Figure(f"{prefix}pareto", plots.to_svg(fig, f"{prefix}pareto"),
               f"{pareto['metric']} against {pareto['cost']}; {why}"),
        Para(f"On the front: {', '.join(front)}.")] + ([Para(
            f"No trial recorded {pareto['cost_asked']} (trained before tunelab measured it): plotted against wall "
            "time instead.", "note")] if pareto.get("cost_asked") else []))


def curves_section(rows: list[dict[str, Any]], sid: str, prefix: str) -> Section | None:
    """The loss curves of every run, one figure per split (validation, training, test)."""
    figures = []
    for split, what, short in (("val", "validation loss", "valc"), ("train", "training loss", "trainc"),
                               ("test", "test loss", "testc")):
        curves = {r["name"]: r[f"{split}_curve"] for r in rows if r.get(f"{split}_curve")}
        if curves:
            name = f"{prefix}val-curves" if split == "val" else f"{prefix}{split}-curves"
            figures.append(Figure(name, plots.to_svg(plots.val_loss_overlay(curves, what), f"{prefix}{short}"),
                                  f"{what} against step for every run"
                                  + (" (the loss of each logging window)" if split == "train" else "")))
    if not figures:
        return None
    return Section(sid, "Loss curves per run", figures)


# ---- every model on every task, and each run's checkpoint selection -----------------------------


def _shared(variant: str) -> bool:
    """Variants with the base weights (`base`, `base+cot`, `base+few-shot`): the same in every run
    on the same base."""
    return variant == "base" or variant.startswith("base+")


def _step_of(variant: str, row: dict[str, Any]) -> int | None:
    if variant == "final":
        return row.get("steps")
    return int(variant[5:]) if variant.startswith("step-") and variant[5:].isdigit() else None


def judge_warning(rows: list[dict[str, Any]]) -> Para | None:
    """A loud note when some score of these runs comes from the rule-based stand-in judge."""
    from tunelab.evaluation.tasks.judge import RULE_JUDGE_WARNING

    stand_in = [r["name"] for r in rows if any(str(j).startswith("rules:") for j in r.get("judges") or [])]
    if not stand_in:
        return None
    return Para(f"STAND-IN JUDGE. {RULE_JUDGE_WARNING} Runs judged so: {', '.join(stand_in)}.", "warn")


def models_section(rows: list[dict[str, Any]], sid: str) -> Section | None:
    """One table: the base-weights variants (base, base+cot, ...; read from one run of each
    base, since every run on it evaluates the same ones), then every run's tuned variant and
    its selected checkpoint, on every task metric of their default splits."""
    done = [r for r in rows if r.get("variant_scores")]
    if not done:
        return None
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for r in done:
        groups.setdefault(r.get("base_model"), []).append(r)
    lines: list[tuple[str, str, dict[str, Any]]] = []  # (label, where it comes from, scores)
    notes = []
    for base, members in groups.items():
        source = next((r for r in members if any(_shared(v) for v in r["variant_scores"])), None)
        if source is None:
            continue
        names = sorted(v for v in source["variant_scores"] if _shared(v))
        one = len(groups) == 1
        for v in names:
            lines.append((v if one else f"{source['name']}:{v}", f"{source['name']} (shared)", source["variant_scores"][v]))
        others = [r["name"] for r in members if r is not source]
        notes.append(f"{', '.join(names)} of {base or 'the base model'}: read from {source['name']}"
                     + (f"; {', '.join(others)} evaluated the same weights with the same prompts (their records "
                        "come from the shared eval cache)" if others else ""))
    for r in done:
        tuned = r.get("variant") or "final"
        if tuned in r["variant_scores"]:
            lines.append((f"{r['name']}:{tuned}", r["name"], r["variant_scores"][tuned]))
        sel = r.get("selection") or {}
        picked = sel.get("resolved")
        if picked and picked != tuned and picked in r["variant_scores"]:
            how = "selected" if sel.get("decision") == "best" else "selection: no difference, trained longest"
            lines.append((f"{r['name']}:{picked} ({how})", r["name"], r["variant_scores"][picked]))
    keys = sorted({k for _, _, sc in lines for k in sc if "@" not in k.split("/")[0]})
    if not lines or not keys:
        return None
    hib = {k: next((bool(sc[k].get("higher_is_better", True)) for _, _, sc in lines if k in sc), True) for k in keys}
    best = {}
    for k in keys:
        vals = [(sc[k]["value"], label) for label, _, sc in lines if k in sc and sc[k].get("value") is not None]
        top = (max if hib[k] else min)((v for v, _ in vals), default=None)
        winners = [n for v, n in vals if v == top]
        best[k] = winners[0] if len(vals) > 1 and len(winners) == 1 else None
    out = []
    for label, where, sc in lines:
        line: list[Any] = [Cell(label, title=f"results of {where}"), where]
        for k in keys:
            v = sc.get(k)
            line.append(Cell(fmt_ci(v["value"], v.get("ci_low"), v.get("ci_high")) if v else "-",
                             "better num" if v and best[k] == label else "num"))
        out.append(line)
    s = Section(sid, "Every model on every task", [])
    warn = judge_warning(done)
    if warn:
        s.blocks.append(warn)
    s.blocks.append(table(["model", "from run", *[f"{k} {'↑' if hib[k] else '↓'}" for k in keys]], out,
                          "each task on its default split, with 95% intervals; green = best of the column "
                          "(intervals may still overlap)"))
    s.blocks += [Para(n, "note") for n in notes]
    return s


def selection_section(rows: list[dict[str, Any]], sid: str, prefix: str) -> Section | None:
    """Each run's checkpoint selection (`eval/selection.json`): what it chose on, the decision,
    and the chosen checkpoint on the report split against base; plus the selection metric of
    every checkpoint against its step, on the selection and the report split."""
    chosen = [r for r in rows if r.get("selection")]
    if not chosen:
        return None
    out, curves = [], {}
    for r in chosen:
        sel = r["selection"]
        task, metric = sel.get("task"), sel.get("metric")
        rep = (sel.get("report") or {})
        diff = sel.get("difference_vs_base") or {}
        on = f"{task}/{metric} on {sel.get('selection_split')}" + (" (carved from train)" if sel.get("carved") else "")
        resolved = sel.get("resolved") or sel.get("best")  # selections before `resolved` named only `best`
        decision = (f"best: {sel.get('best')}" if (sel.get("decision") or ("best" if sel.get("best") else None)) == "best"
                    else f"no difference (top {sel.get('top')})")
        picked, base = rep.get(resolved) or {}, rep.get("base") or {}
        out.append([r["name"], on, decision, resolved,
                    fmt_ci(picked.get("value"), picked.get("ci_low"), picked.get("ci_high")) if picked else "-",
                    fmt_ci(base.get("value"), base.get("ci_low"), base.get("ci_high")) if base else "-",
                    fmt_ci(diff.get("diff"), diff.get("ci_low"), diff.get("ci_high"))
                    if diff else "-"])
        val = sorted((_step_of(c["variant"], r), c.get("value")) for c in sel.get("candidates") or []
                     if _step_of(c["variant"], r) is not None and c.get("value") is not None)
        if val:
            curves[f"{r['name']} ({sel.get('selection_split')})"] = val
        key = f"{task}/{metric}"
        test = sorted((_step_of(v, r), sc[key]["value"]) for v, sc in (r.get("variant_scores") or {}).items()
                      if _step_of(v, r) is not None and key in sc and sc[key].get("value") is not None)
        if test:
            curves[f"{r['name']} ({sel.get('report_split')})"] = test
    first = chosen[0]["selection"]
    s = Section(sid, "Checkpoint selection per run", [table(
        ["run", "chosen on", "decision", "reported checkpoint", f"it on {first.get('report_split')}",
         f"base on {first.get('report_split')}", "difference vs base"], out,
        "chosen on one split, reported on another (never the same items); 'no difference': the paired tests could "
        "not tell the top checkpoint from the others, and the one trained longest among them is reported")])
    if curves:
        s.blocks.append(Figure(f"{prefix}selection-steps", plots.to_svg(
            plots.val_loss_overlay(curves, f"{first.get('task')}/{first.get('metric')}"), f"{prefix}selc"),
            "the selection metric of every checkpoint against its step, on the split it was chosen on and on the "
            "report split (where the run evaluated its checkpoints there)"))
    return s


def seeds_section(rows: list[dict[str, Any]], sid: str) -> Section | None:
    """Mean and standard deviation over seeds of every setting that ran with two or more."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = _values_text({k: v for k, v in r["values"].items() if k != "seed"})
        if "seed" in r["values"]:
            groups.setdefault(key, []).append(r)
    groups = {k: g for k, g in groups.items() if len(g) > 1}
    if not groups:
        return None
    keys = ["best_val_loss"] + sorted({k for r in rows for k in r["scores"]})
    out = []
    for name, g in groups.items():
        line: list[Any] = [name, len(g)]
        for k in keys:
            vals = [r.get(k) if k == "best_val_loss" else (r["scores"].get(k) or {}).get("value") for r in g]
            vals = [v for v in vals if v is not None]
            line.append(f"{fmt(statistics.mean(vals))} ± {fmt(statistics.stdev(vals))}" if len(vals) > 1 else "-")
        out.append(line)
    return Section(sid, "Across seeds", [table(["setting", "seeds", *keys], out,
                                               "mean ± standard deviation over seeds: the noise any "
                                               "difference between settings must beat")])


def sweep_cost_section(rows: list[dict[str, Any]], sid: str, price: float | None, currency: str) -> Section | None:
    dh = [r["device_hours"] for r in rows if r.get("device_hours") is not None]
    if not dh:
        return None
    text = f"{len(dh)} runs used {sum(dh):.4f} device-hours"
    if price is not None:
        text += f", {sum(dh) * price:.4f} {currency} at {price} {currency} per device-hour"
    s = Section(sid, "Total cost", [Para(text + ".")])
    if price is None:
        s.blocks.append(Para("Set report.price_per_device_hour to turn device-hours into money.", "note"))
    return s


def cross_section(info: dict[str, Any], trials: list[dict[str, Any]] | None, compare: dict[str, Any],
                  sid: str) -> Section:
    """What the comparison across trials compared: each variant, the trial and overrides it
    comes from, the chat template it was prompted with, and the notes (trials left out, results
    read from where); or why the comparison failed."""
    s = Section(sid, "Trials compared with each other")
    if info.get("error"):
        s.blocks.append(Para(f"The comparison across trials failed: {info['error']}. Fix sweep.compare and re-run "
                             "the sweep (finished trials are skipped).", "warn"))
        return s
    values = {t["name"]: t.get("values") or {} for t in trials or []}
    templates = (compare.get("next_token") or {}).get("chat_templates") or {}
    rows = []
    for label in info.get("variants") or []:
        trial, _, variant = label.rpartition(":")
        rows.append([label, trial or "(every trial)", _values_text(values.get(trial, {})) if trial else "-",
                     variant or label, templates.get(label, "-")])
    s.blocks.append(Para(
        "The variants of sweep.compare, compared as a run's compare compares its variants: the same prompts "
        "answered side by side, the next-token view, and paired tests on each eval task from every trial's own eval "
        "results, items paired by id where both trials scored the same item (a row says when they did not). "
        f"The first variant is the reference. Took {fmt_seconds(info.get('seconds'))} (model views are reused "
        "while the trials' weights and the compare settings are unchanged)."))
    s.blocks.append(table(["variant", "trial", "overrides", "weights", "chat template"], rows))
    for note in info.get("notes") or []:
        s.blocks.append(Para(note, "note"))
    return s
