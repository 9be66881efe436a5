"""Report sections about what fine-tuning changed: results with deltas, paired tests, next-token
view, token classes, side-by-side generations, failure categories."""

from __future__ import annotations

import re
from typing import Any

from tunelab.report import plots
from tunelab.evaluation.results import cap_text, mixed_caps
from tunelab.report.blocks import (Cell, Columns, Figure, Heading, Para, Pre, Section, Table, cut, fmt, fmt_ci,
                                   fmt_p, table, visible)
from tunelab.report.load import RunFiles, variant_order
from tunelab.report.sections_run import prompt_blocks

SUCCESS = {"passed", "correct", "exact", "ok", "yes"}  # verdicts that are not failures


def _paired_index(run: RunFiles) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    rows = (run.compare.get("paired") or {}).get("rows") or []
    return {(r["a"], r["b"], r["task"], r["metric"]): r for r in rows}


def _reference(run: RunFiles) -> str:
    return (run.compare.get("paired") or {}).get("reference") or ((run.config.get("compare") or {}).get("variants")
                                                                   or ["base"])[0]


def delta_cell(p: dict[str, Any] | None, value: Any, ref_value: Any, higher_is_better: bool) -> Cell:
    """The difference to the reference: coloured by direction, bold and starred if significant."""
    if p is not None and p.get("diff") is not None:
        d = p["diff"]
        sig = bool(p.get("significant"))
        cls = ("better" if (d > 0) == higher_is_better else "worse") if d != 0 else "muted"
        title = (f"{p.get('test')} p={fmt_p(p.get('p_value'))}; {round(100 * p.get('confidence', 0.95))}% CI "
                 f"[{fmt(p.get('ci_low'))}, {fmt(p.get('ci_high'))}]; minimal detectable difference {fmt(p.get('mdd'))}")
        return Cell(f"{d:+.4g}{' *' if sig else ''}", f"{cls} {'sig' if sig else 'ns'}", title)
    if isinstance(value, (int, float)) and isinstance(ref_value, (int, float)):
        d = value - ref_value
        cls = ("better" if (d > 0) == higher_is_better else "worse") if d != 0 else "muted"
        return Cell(f"{d:+.4g}", f"{cls} ns", "no paired test (no per-sample values, or the task's references could not be loaded)")
    return Cell("-", "muted")


def prompt_cell(summary: dict[str, Any]) -> Cell:
    """How a variant was asked: the prompt variant and style (`base+cot` of a completion-style
    code task is asked in chat), with the few-shot examples' ids on hover."""
    p = summary.get("prompt") or {}
    text = " · ".join(str(x) for x in (p.get("variant"), p.get("style")) if x) or "-"
    shots = summary.get("fewshot_ids")
    return Cell(text, "", f"few-shot examples: {', '.join(map(str, shots))}" if shots else "")


def results_section(run: RunFiles, sid: str) -> Section | None:
    """Per task: every variant (base, prompting baselines, checkpoints, final) with value [CI]
    and the difference to the reference variant, coloured and marked by significance."""
    if not run.evals:
        return None
    ref = _reference(run)
    paired = _paired_index(run)
    s = Section(sid, "Results: base vs tuned vs prompting baselines")
    s.blocks.append(Para(f"Differences are to {ref}: green = better, red = worse (by each metric's direction); "
                         "bold on a tint with * = significant in the paired test, plain text = not significant "
                         "(hover for the test, p-value, CI and minimal detectable difference).", "note"))
    labels = sorted({t for tasks in run.evals.values() for t in tasks})
    for task in labels:
        variants = run.ordered([v for v in run.evals if task in run.evals[v]])
        first = run.evals[variants[0]][task]
        metrics = list(first.get("metrics", {}))
        cols = ["variant", "prompt", "n"]
        for m in metrics:
            arrow = "↑" if first["metrics"][m].get("higher_is_better", True) else "↓"
            cols += [f"{m} {arrow}", f"Δ {m}"]
        rows, partial = [], False
        for v in variants:
            sm = run.evals[v][task]
            cap = cap_text(sm)
            row = [Cell(v, "sig" if v == ref else ""), prompt_cell(sm),
                   Cell(fmt(sm.get("n")) + (" (capped)" if cap else ""), "num",
                        f"{cap} (eval.limit / --limit): not the whole split" if cap else "")]
            for m in metrics:
                mv = sm.get("metrics", {}).get(m) or {}
                row.append(Cell(fmt_ci(mv.get("value"), mv.get("ci_low"), mv.get("ci_high")), "num"))
                if v == ref:
                    row.append(Cell("", "muted"))
                else:
                    rm = ((run.evals.get(ref) or {}).get(task) or {}).get("metrics", {}).get(m, {})
                    if task in run.evals.get(ref, {}) and not run.same_items(ref, v, task):
                        caps = mixed_caps({ref: run.evals[ref][task], v: sm})
                        row.append(Cell("other items", "muted", f"{v} and {ref} were scored on different items "
                                                                 f"of {task}: their values do not compare"
                                                                 + (f" ({caps})" if caps else "")))
                        continue
                    p = paired.get((ref, v, task, m))
                    cell = delta_cell(p, mv.get("value"), rm.get("value"), mv.get("higher_is_better", True))
                    if p is not None and p.get("diff") is not None and not p.get("n") == mv.get("n") == rm.get("n"):
                        # The paired test only sees items both variants have a value for (REdit
                        # of repairs both got to parse): say so, or the delta contradicts the values.
                        cell.text += f" on {p.get('n')} paired items"
                        cell.title = (f"{ref} {fmt(p.get('mean_a'))} vs {v} {fmt(p.get('mean_b'))} on the {p.get('n')} "
                                      f"items both have; the values beside it cover {fmt(rm.get('n'))} and "
                                      f"{fmt(mv.get('n'))} items. " + cell.title)
                        partial = True
                    row.append(cell)
            rows.append(row)
        conf = first.get("ci", {}).get("confidence", 0.95)
        s.blocks.append(Heading(f"{task} (v{first.get('version')}, split {first.get('split')})"))
        summaries = {v: run.evals[v][task] for v in variants}
        mixed, caps = mixed_caps(summaries), {cap_text(sm) for sm in summaries.values()} - {None}
        if mixed:  # a capped and an uncapped number must not be read as a comparison
            s.blocks.append(Para(f"Capped numbers: {mixed}.", "warn"))
        elif caps:
            s.blocks.append(Para(f"Capped: every number here is on the {caps.pop()} of split {first.get('split')} "
                                 "(eval.limit / --limit): a quick look, not the split's score.", "warn"))
        for v in variants:  # before the numbers: a warning says whether they mean anything
            if run.evals[v][task].get("warning"):
                s.blocks.append(Para(f"Warning ({v}): {run.evals[v][task]['warning']}", "warn"))
        methods = sorted({mv.get("ci_method", "bootstrap") for mv in first.get("metrics", {}).values()})
        s.blocks.append(Table(cols, rows, f"value [{round(100 * conf)}% CI: {', '.join(methods)}]"))
        s.blocks += prompt_blocks(run, task, variants)
        if partial:
            s.blocks.append(Para("A Δ marked 'on N paired items' is the paired difference over the items both variants "
                                 "have a value for; the values beside it are each variant's mean over all its own items, "
                                 "so the two need not subtract to it (hover the Δ for both means on the shared items).",
                                 "note"))
    return s


def paired_section(run: RunFiles, sid: str) -> Section | None:
    p = run.compare.get("paired")
    rows = [r for r in (p or {}).get("rows", []) if r.get("test")]
    if not rows:
        return None
    s = Section(sid, "Paired comparison")
    st = p.get("settings", {})
    s.blocks.append(Para(
        "Each variant against the reference on the items both were scored on. Pass/fail metrics: exact McNemar "
        "test (only items where the two disagree count); scores: sign-flip permutation test of the mean "
        "difference; corpus metrics: paired bootstrap of the corpus score (both re-scored on the same "
        f"resampled items). CI: paired bootstrap ({st.get('n_resamples')} resamples). MDD: the smallest difference this "
        f"eval set detects with power {st.get('power')} at alpha {st.get('alpha')}; a difference below it is "
        "no evidence either way.", "note"))
    out = []
    for r in rows:
        if r["test"] == "none":
            verdict = Cell("identical on every item", "muted")
        elif r.get("significant"):
            verdict = Cell(f"{r['b']} {'better' if r.get('better') else 'worse'}", "better sig" if r.get("better") else "worse sig")
        elif r.get("detectable") is False:
            verdict = Cell("below MDD: eval set too small", "muted")
        else:
            verdict = Cell("not significant", "ns")
        extra = f" ({r['a_only']} vs {r['b_only']} discordant)" if r.get("test") == "mcnemar-exact" else ""
        out.append([f"{r['b']} vs {r['a']}", r["task"], f"{r['metric']} {'↑' if r['higher_is_better'] else '↓'}",
                    Cell(fmt(r.get("n")), "num"), Cell(fmt(r.get("mean_a")), "num"), Cell(fmt(r.get("mean_b")), "num"),
                    delta_cell(r, None, None, r["higher_is_better"]), Cell(f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"),
                    r["test"] + extra, Cell(fmt_p(r.get("p_value")), "num"), Cell(fmt(r.get("mdd")), "num"), verdict])
    s.blocks.append(table(["pair", "task", "metric", "n", "a", "b", "b - a", "CI", "test", "p", "MDD", "verdict"], out))
    for note in p.get("notes") or []:
        s.blocks.append(Para(note, "note"))
    return s


def next_token_section(run: RunFiles, sid: str, prefix: str, max_chars: int) -> Section | None:
    nt = run.compare.get("next_token")
    if not nt or not nt.get("prompts"):
        return None
    ref = nt["reference"]
    s = Section(sid, "Next-token view")
    s.blocks.append(Para(f"The first reply token's distribution per variant, for prompts rendered with the chat "
                         f"template exactly as in training. Divergences in bits, against {ref}: KL(ref‖v), "
                         "KL(v‖ref), Jensen-Shannon (0 = same, 1 = disjoint). 'in training' looks the prompt up "
                         "in the training split (exact, or near duplicate by character 5-gram Jaccard).", "note"))
    for i, p in enumerate(nt["prompts"]):
        it = p.get("in_train") or {}
        status = {"exact": "yes, verbatim", "near": f"near duplicate ({fmt(it.get('similarity'))})",
                  "no": f"no (closest {fmt(it.get('similarity'))})"}.get(it.get("status"), "-")
        s.blocks.append(Heading(f"Prompt {i + 1}: {p['id']} — in training: {status}"))
        s.blocks += rendered_blocks(p, max_chars)
        rows = [[v, fmt(p["entropy_bits"].get(v))] + (["", "", ""] if v == ref else
                [fmt(p["divergence"][v]["kl_ref_to_variant"]), fmt(p["divergence"][v]["kl_variant_to_ref"]),
                 fmt(p["divergence"][v]["js"])]) for v in p["top"]]
        s.blocks.append(table(["variant", "entropy (bits)", "KL(ref‖v)", "KL(v‖ref)", "JS"], rows))
        fig = plots.next_token_bars(p["top"])
        s.blocks.append(Figure(f"{prefix}next-token-{i + 1}", plots.to_svg(fig, f"{prefix}nt{i + 1}"),
                               f"top-{nt.get('top_k')} first tokens of prompt {i + 1} (one probability scale for "
                               f"every panel; tokens over {plots.TOKEN_CHARS} characters cut, whole in the table)"))
        s.blocks.append(top_k_table(p["top"]))
        s.blocks += reply_blocks(p.get("reply"), ref)
    return s


def rendered_blocks(p: dict[str, Any], max_chars: int) -> list[Pre]:
    """The prompt as the models got it: one text, or one per chat template when variants of
    runs trained with other templates took part (`rendered_by`)."""
    by: dict[str, list[str]] = {}
    for v, text in (p.get("rendered_by") or {}).items():
        by.setdefault(text, []).append(v)
    if len(by) < 2:
        return [Pre([("", cut(p.get("rendered"), max_chars))], "rendered prompt (the model's input)")]
    return [Pre([("", cut(text, max_chars))], f"rendered prompt as {', '.join(vs)} got it (its run's chat template)")
            for text, vs in by.items()]


def top_k_table(top: dict[str, list[dict[str, Any]]]) -> Table:
    """The bars as numbers: rank, then each variant's token (whole, whitespace shown) and probability."""
    variants = list(top)
    k = max((len(t) for t in top.values()), default=0)
    rows = []
    for r in range(k):
        row: list[Any] = [Cell(str(r + 1), "num")]
        for v in variants:
            t = top[v][r] if r < len(top[v]) else None
            row += [Cell(plots.readable_token(t["token"]), "", f"token id {t.get('id')}") if t else Cell("-", "muted"),
                    Cell(plots.prob_text(t["prob"]), "num") if t else Cell("", "muted")]
        rows.append(row)
    return Table(["rank"] + [c for v in variants for c in (f"{v} token", f"{v} p")], rows)


PROB_BUCKETS = (0.01, 0.1, 0.5, 0.9)  # p0: < 1%, p1: < 10%, p2: < 50%, p3: < 90%, p4: >= 90%


def reply_blocks(reply: dict[str, Any] | None, ref: str) -> list[Any]:
    """One reply scored token by token by every variant: a table (mean NLL, top-1 agreement, the
    tokens that moved most) and the reply per variant, each token tinted by its probability."""
    if not reply:
        return []
    if reply.get("skipped") or not reply.get("tokens"):
        return [Para(f"Per-token view of one reply ({reply.get('source')}): {reply.get('skipped') or 'empty reply'}.",
                     "note")]
    out: list[Any] = [Para(
        f"One reply ({reply['source']}) scored token by token by each variant (teacher-forced): red = the variant "
        "found the token unlikely (< 1%, < 10%), yellow = < 50%, green = likely (< 90%, >= 90%); hover a token for its "
        f"probability under the variant and under {ref}, and the variant's own top-1 token there.", "note")]
    rows = []
    for v, probs in reply["prob"].items():
        moved = ", ".join(f"{m['token']!r} {m['prob_reference']:.2f}→{m['prob']:.2f}"
                          for m in (reply.get("largest_changes") or {}).get(v, [])[:3])
        rows.append([v, Cell(fmt(reply["mean_nll_bits"].get(v)), "num"),
                     Cell(fmt(reply["top1_agreement"].get(v)), "num"), moved or "-"])
    out.append(table(["variant", "mean NLL (bits/token)", "top-1 = reply token", f"largest moves vs {ref}"], rows,
                     f"{len(reply['tokens'])} tokens"))
    ref_probs = reply["prob"].get(ref) or []
    for v, probs in reply["prob"].items():
        segments, titles = [], []
        for j, (tok, p) in enumerate(zip(reply["tokens"], probs)):
            bucket = sum(p >= b for b in PROB_BUCKETS)
            segments.append((f"p{bucket}", tok))
            top1 = reply["top1"][v][j]
            titles.append(f"{v}: p={p:.3f}" + (f"; {ref}: p={ref_probs[j]:.3f}" if v != ref and ref_probs else "")
                          + ("" if top1 == tok else f"; {v}'s top-1: {top1!r}"))
        out.append(Pre(segments, f"{v}: reply tokens by probability", titles))
    return out


def token_class_section(run: RunFiles, sid: str, prefix: str) -> Section | None:
    from tunelab.compare.token_classes import CLASSES

    tc = run.compare.get("token_classes")
    by = (tc or {}).get("by_variant") or {}
    rows = [(f"{v} · {src}", st) for v in run.ordered(list(by)) for src, st in by[v].items() if st.get("tokens")]
    if not rows:
        return None
    s = Section(sid, "Token classes in generations")
    s.blocks.append(Para(f"Share of {tc.get('unit')} by class over whole generations: code (keywords, identifiers, "
                         "literals, punctuation) vs natural-language words and punctuation vs whitespace.", "note"))
    s.blocks.append(Figure(f"{prefix}token-classes", plots.to_svg(plots.class_shares(
        [(name, st["shares"]) for name, st in rows], CLASSES), f"{prefix}tc"), "token shares per variant and source"))
    s.blocks.append(table(["variant · source", "texts", "tokens", "code", "natural language", "whitespace",
                           "code share of non-whitespace"],
                          [[name, st["texts"], st["tokens"], f"{st['groups']['code']:.1%}",
                            f"{st['groups']['natural_language']:.1%}", f"{st['groups']['whitespace']:.1%}",
                            f"{st['code_share_of_words']:.1%}"] for name, st in rows]))
    marked = [(name, st) for name, st in rows if any(sum(m.values()) for m in (st.get("markers") or {}).values())]
    if marked:
        # Which language the code looks like: the markers of each, and TypeScript's share of them
        # (the number a Python -> TypeScript shift moves; 0% = only Python markers).
        langs = list(marked[0][1]["markers"])
        top = {lang: [m for m, _ in sorted(((m, sum(st["markers"][lang].get(m, 0) for _, st in marked))
                                            for m in marked[0][1]["markers"][lang]), key=lambda x: -x[1])[:4]]
               for lang in langs}
        head = ["variant · source", *[f"{lang} markers ({', '.join(top[lang])}, ...)" for lang in langs],
                "TypeScript share of markers"]
        s.blocks.append(table(head, [[name, *[str(sum(st["markers"][lang].values())) for lang in langs],
                                      f"{st.get('typescript_share_of_markers', 0.0):.0%}"] for name, st in marked],
                              "language markers in the generations: does the code look like TypeScript or Python?"))
    return s


def generations_section(run: RunFiles, sid: str, max_chars: int) -> Section | None:
    g = run.compare.get("generations")
    if not g or not g.get("items"):
        return None
    st = g.get("settings", {})
    s = Section(sid, "Side-by-side generations")
    s.blocks.append(Para(f"Same prompts, same decoding for every variant: {st.get('strategy')}, "
                         f"max_new_tokens {st.get('max_new_tokens')}, seed {st.get('seed')}. Against {g['reference']}: "
                         "green = new text, struck through = text the reference has and this output lacks.", "note"))
    for i, it in enumerate(g["items"]):
        user = next((m["content"] for m in reversed(it["messages"]) if m["role"] == "user"), "")
        s.blocks.append(Heading(f"{i + 1}. {it['id']} (in training: {it.get('in_train')})"))
        s.blocks.append(Pre([("", cut(user, max_chars))], "prompt (last user message)"))
        cols = []
        for v, o in it["outputs"].items():
            if not o["text"].strip():
                segs = [("", visible(o["text"]))]
            elif o.get("diff") is None or o["similarity_to_reference"] < 0.25:
                # Next to nothing shared: a diff would strike through the whole other output.
                segs = [("", cut(o["text"], max_chars, 40))]
            else:
                segs = _cut_segments([(k, _short_gone(t) if k == "gone" else t) for k, t in o["diff"]], max_chars)
            badges = [_parse_badge(o)]
            if o.get("diff") is not None:
                badges.append(Cell(f"{o['similarity_to_reference']:.0%} same", "", "word-level similarity to the reference output"))
            cols.append((v, Pre(segs), badges))
        if it.get("reference") is not None:
            cols.append(("reference answer (data)", Pre([("", cut(it["reference"], max_chars, 40))]), []))
        s.blocks.append(Columns(cols))
    return s


def wins_section(run: RunFiles, sid: str, per_task: int, max_chars: int) -> Section | None:
    """Per task: on which items the tuned variant beats the reference and on which it loses, by
    the task's first per-sample metric, with the two generations of the clearest cases side by
    side. The paired test says whether a difference is real; this says what it consists of."""
    ref = _reference(run)
    tuned = (run.compare.get("paired") or {}).get("tuned")
    if not tuned or ref not in run.eval_dirs or tuned not in run.eval_dirs:
        return None
    rows, blocks = [], []
    for task in [t for t in run.eval_dirs[ref] if t in run.eval_dirs[tuned]]:
        metrics = (run.evals.get(tuned, {}).get(task) or {}).get("metrics", {})
        name = next((m for m, v in metrics.items() if v.get("aggregation", "mean") == "mean"), None)
        if name is None:
            continue
        higher = metrics[name].get("higher_is_better", True)
        recs = {v: {str(r["id"]): r for r in run.records(v, task) if "id" in r} for v in (ref, tuned)}
        gains = []
        for i, r in recs[tuned].items():
            a, b = (recs[ref].get(i, {}).get("values") or {}).get(name), (r.get("values") or {}).get(name)
            if a is not None and b is not None:
                gains.append(((b - a) if higher else (a - b), i, a, b))
        if not gains:
            continue
        wins = sorted((g for g in gains if g[0] > 0), key=lambda g: -g[0])
        losses = sorted((g for g in gains if g[0] < 0), key=lambda g: g[0])
        rows.append([task, f"{name} {'↑' if higher else '↓'}", Cell(fmt(len(gains)), "num"),
                     Cell(fmt(len(wins)), "num better" if wins else "num"),
                     Cell(fmt(len(losses)), "num worse" if losses else "num"),
                     Cell(fmt(len(gains) - len(wins) - len(losses)), "num")])
        for label, chosen in (("better", wins[:per_task]), ("worse", losses[:per_task])):
            for _, i, a, b in chosen:
                blocks.append(Heading(f"{task} / {i}: {tuned} {label} ({name} {fmt(a)} → {fmt(b)})"))
                asked = _prompt_excerpt(recs[tuned][i].get("prompt"), max_chars)
                if asked:
                    blocks.append(Pre([("", asked)], "prompt (last user message)"))
                cols = []
                for v in (ref, tuned):
                    r = recs[v][i]
                    gen = (r.get("generations") or [""])[0]
                    verdict = str(((r.get("scores") or [{}])[0] or {}).get("verdict", ""))
                    cols.append((v, Pre([("", cut(visible(gen), max_chars, 40))]),
                                 [Cell(f"{name} {fmt((r.get('values') or {}).get(name))}"), Cell(verdict)]))
                blocks.append(Columns(cols))
    if not rows:
        return None
    s = Section(sid, f"What changed item by item: {tuned} vs {ref}")
    s.blocks.append(Para(f"Items where {tuned} scores better than {ref} on the task's first per-sample metric, and "
                         f"where it scores worse (ties: same score). Below, up to {per_task} of the clearest of each, "
                         "with both generations (the first sample of each). Whether the difference is more than "
                         "chance is in the paired comparison.", "note"))
    s.blocks.append(table(["task", "metric", "items", f"{tuned} better", f"{tuned} worse", "ties"], rows))
    s.blocks += blocks
    return s


def _prompt_excerpt(prompt: Any, limit: int = 160) -> str:
    """The last user message of a stored prompt (messages or text), on one line."""
    if isinstance(prompt, list):
        prompt = next((m.get("content", "") for m in reversed(prompt) if m.get("role") == "user"), "")
    text = re.sub(r"\s+", " ", str(prompt or "")).strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _parse_badge(o: dict[str, Any]) -> Cell:
    if not o.get("has_code"):
        return Cell("no code", "", "no code found in the output")
    if o.get("parses") is None:
        return Cell(f"{o.get('language')}: not checked", "", "only Python is parsed")
    return Cell(f"{o.get('language')} parses" if o["parses"] else f"{o.get('language')}: syntax error",
                "better" if o["parses"] else "worse", "ast.parse of the code as written (prose around it left out); nothing was run")


def _short_gone(text: str, keep: int = 60) -> str:
    """Removed reference text, shortened: the output itself is what the column shows."""
    return text if len(text) <= keep else text[:keep] + f"… [{len(text) - keep} characters more]"


def _cut_segments(segs: list[tuple[str, str]], limit: int, max_lines: int = 40) -> list[tuple[str, str]]:
    """Diff runs up to `limit` characters and `max_lines` lines in all, marking the cut."""
    out, used, lines = [], 0, 0
    for k, t in segs:
        if used >= limit or lines >= max_lines:
            out.append(("", " … [cut]"))
            break
        piece = t[: limit - used]
        room = max_lines - lines
        if piece.count("\n") >= room:
            piece = "\n".join(piece.split("\n")[:room])
        out.append((k, piece))
        used, lines = used + len(piece), lines + piece.count("\n")
    return out


def failures_section(run: RunFiles, sid: str, per_category: int, max_chars: int) -> Section | None:
    """Verdict counts per variant and task, and examples of each failure category."""
    cats = [(v, t, sm["failure_categories"]) for v in run.ordered(list(run.evals))
            for t, sm in run.evals[v].items() if sm.get("failure_categories")]
    if not cats:
        return None
    names = sorted({c for _, _, fc in cats for c in fc}, key=lambda c: (c in SUCCESS, c))
    s = Section(sid, "Failure categories")
    s.blocks.append(table(["variant", "task", *names],
                          [[v, t, *[Cell(fmt(fc.get(c, 0)), "num") for c in names]] for v, t, fc in cats],
                          "verdicts per generation (summary.json failure_categories)"))
    if per_category == 0:
        return s
    ref = _reference(run)
    tuned = (run.compare.get("paired") or {}).get("tuned")
    for v in [x for x in (tuned, ref) if x in run.eval_dirs]:
        for task in run.eval_dirs[v]:
            shown: dict[str, int] = {}
            for rec in run.records(v, task):
                for gen, sc in zip(rec.get("generations") or [], rec.get("scores") or []):
                    verdict = str(sc.get("verdict", ""))
                    if verdict in SUCCESS or shown.get(verdict, 0) >= per_category:
                        continue
                    shown[verdict] = shown.get(verdict, 0) + 1
                    detail = re.sub(r"\s+", " ", str(sc.get("detail") or ""))[:200]
                    label = f"{v} / {task} / {rec.get('id')}: {verdict}" + (f" ({detail})" if detail else "")
                    asked = _prompt_excerpt(rec.get("prompt"))
                    label += f" — prompt: {asked}" if asked else ""
                    if "judge_reply" in sc:  # a judged task fails in the judge's words, not the hint's
                        shown_text = str(sc["judge_reply"])
                        label += " — the judge's reply" + ("" if verdict == "judge_unparsed" else f"; hint: {_prompt_excerpt(gen)}")
                    else:
                        shown_text = gen
                    s.blocks.append(Pre([("", cut(visible(shown_text), max_chars))], label))
    return s
