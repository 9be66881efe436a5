"""Report sections about one run's setup and training: experiment and environment, data and
label mask, curves, checkpoint scores, cost. Each builder returns a Section, or None when the
run has no data for it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tunelab.report import plots
from tunelab.report.blocks import (Cell, Columns, Figure, Heading, Para, Pre, Section, cut, fmt, fmt_ci, fmt_seconds,
                                   table)
from tunelab.report.load import RunFiles, variant_order
from tunelab.runs import RunPaths, read_jsonl
from tunelab.tradeoff import judge_spend


def _fig(run: RunFiles, name: str, fig: Any, caption: str, prefix: str) -> Figure:
    return Figure(f"{prefix}{name}", plots.to_svg(fig, f"{prefix}{name}"), caption)


def experiment_section(run: RunFiles, sid: str) -> Section | None:
    c = run.config
    if not c and run.env is None:
        return None
    s = Section(sid, "Experiment and environment")
    m, lora, data, tr = c.get("model", {}), c.get("lora", {}), c.get("data", {}), c.get("train", {})
    method = (f"LoRA r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={lora.get('dropout')}, "
              f"targets={lora.get('target_modules')}") if lora.get("enabled", True) else "full fine-tuning"
    sources = "; ".join(f"{src.get('name') or src.get('builtin') or src.get('hub') or src.get('path')}"
                        f" (weight {src.get('weight', 1)})" for src in data.get("sources", []))
    length = f"{tr.get('max_steps')} steps" if tr.get("max_steps") else f"{tr.get('epochs')} epochs"
    rows = [["name", c.get("name")], ["model", f"{m.get('name')} ({m.get('dtype', 'auto')})"], ["method", method],
            ["data", sources], ["max_seq_len / packing", f"{data.get('max_seq_len')} / {data.get('packing')}"],
            ["training", f"{length}, batch {tr.get('batch_size')} x accum {tr.get('grad_accum', 1)}, lr {tr.get('lr')}, "
                         f"{tr.get('scheduler')} schedule"],
            ["seed", c.get("seed")], ["eval tasks", ", ".join((c.get("eval") or {}).get("tasks") or []) or "-"]]
    s.blocks.append(table(["setting", "value"], rows, "from config.yaml (the resolved config)"))
    e = run.env or {}
    if e:
        v = e.get("versions") or {}
        gpu = e.get("gpu")
        hw = f"{gpu['count']} x {gpu['name']} (CUDA {gpu.get('cuda')})" if gpu else f"CPU ({e.get('cpu_count')} cores)"
        rows = [["started", e.get("time")], ["command", e.get("command")], ["hardware", hw],
                ["processes", e.get("world_size")], ["python / platform", f"{e.get('python')} / {e.get('platform')}"],
                ["versions", ", ".join(f"{k} {val}" for k, val in v.items() if val)], ["git", e.get("git_sha")],
                ["resumed", len(e.get("resumes") or [])]]
        s.blocks.append(table(["environment", "value"], rows, "from env.json"))
    stages = (run.pipeline or {}).get("stages") or {}
    if stages:
        rows = [[k, st.get("status"), fmt_seconds(st.get("seconds")),
                 fmt_seconds(st.get("seconds_total", st.get("seconds"))), st.get("note", "")] for k, st in stages.items()]
        up = (run.pipeline or {}).get("startup")
        if up:
            rows.append(["startup", "done", fmt_seconds(up.get("seconds")), fmt_seconds(up.get("seconds_total")),
                         "importing torch, transformers and peft, before the first stage"])
        s.blocks.append(table(["stage", "status", "last session", "all sessions", "note"], rows,
                              "tunelab run stages (pipeline.json)"))
    return s


def data_section(run: RunFiles, sid: str, max_chars: int) -> Section | None:
    st = run.data_stats
    if not st:
        return None
    s = Section(sid, "Data and label mask")
    counts, kept = st.get("counts") or {}, st.get("kept") or {}
    sources = sorted({src for split in counts.values() for src in split} | {src for sp in kept.values() for src in sp})
    splits = ("train", "val", "test")
    rows = [[src] + [f"{kept.get(sp, {}).get(src, 0)} of {counts.get(sp, {}).get(src, 0)}" for sp in splits]
            for src in sources]
    s.blocks.append(table(["source", *splits], rows, "examples kept after tokenization of those split off "
                                                     "(train counts after mixing weights)"))
    overlap = st.get("overlap") or {}
    if overlap:
        def count(o: dict, key: str) -> Any:
            return "-" if o.get(key) is None else o[key]

        rows = [[sp, o.get("n"), count(o, "shares_group_with_train"), count(o, "near_duplicate_of_train"),
                 count(o, "reply_near_duplicate_of_train"), count(o, "prompt_or_reply_near_duplicate_of_train")]
                for sp, o in overlap.items()]
        s.blocks.append(table(["split", "items", "share a group with train",
                               "near-duplicate of a train item (prompt)", "(reference answer)", "(either)"], rows,
                              "held-out items that training has already seen in some form (groups: data.split.group_by; "
                              "near-duplicate: the same prompt, or the same reference answer, up to case and whitespace; "
                              "- = not recorded)"))
        if any((o.get("shares_group_with_train") or 0) + (o.get("near_duplicate_of_train") or 0)
               + (o.get("reply_near_duplicate_of_train") or 0) for o in overlap.values()):
            s.blocks.append(Para("Some held-out items overlap with training: their scores measure recall as much as "
                                 "generalisation.", "warn"))
    held = st.get("held_out")
    if held:
        s.blocks.append(Para(f"Held out of training: {held.get('n_removed')} training row(s) "
                             f"({', '.join(f'{k} {v}' for k, v in (held.get('removed_by_source') or {}).items()) or 'none'}) "
                             f"are the items of {held.get('reason')}: {held.get('n_items')} items, {held.get('rule')}.",
                             "note"))
    tok = st.get("tokens") or {}
    rows = [[sp, t.get("n_kept"), t.get("n_truncated"), t.get("n_dropped", 0) + t.get("n_no_label", 0),
             t.get("tokens_total"), t.get("label_tokens_total"), t.get("length_mean"), t.get("length_p95"),
             t.get("length_max")] for sp, t in tok.items()]
    s.blocks.append(table(["split", "examples", "truncated", "dropped", "tokens", "label tokens", "mean length",
                           "p95 length", "max length"], rows, "token statistics (after truncation)"))
    packing = st.get("packing") or {}
    s.blocks.append(Para(f"Chat template: {st.get('chat_template')}; end of turn: {st.get('end_of_turn')!r}; "
                         f"max_seq_len {st.get('max_seq_len')}, truncation {st.get('truncation')}, "
                         f"packing {'on' if packing.get('enabled') else 'off'}."))
    s.blocks.append(Para(f"What carries loss: {st.get('masking')}.", "note"))
    if st.get("preview"):
        s.blocks.append(Pre(mask_segments(cut(st["preview"], max_chars)),
                            "first training example; highlighted text carries loss (label != -100)"))
    return s


def mask_segments(preview: str) -> list[tuple[str, str]]:
    """The data layer's ⟦trained⟧ preview as (kind, text) runs."""
    out = []
    for part in re.split(r"(⟦.*?⟧)", preview, flags=re.S):
        if part.startswith("⟦") and part.endswith("⟧"):
            out.append(("mask", part[1:-1]))
        elif part:
            out.append(("", part))
    return out


def selected_checkpoint(run: RunFiles) -> tuple[int, str] | None:
    """(step, why) of the checkpoint `best` resolves to after eval selection, if there is one."""
    sel = run.selection or {}
    best = str(sel.get("resolved") or sel.get("best") or "")
    why = (f"best {sel.get('task')}/{sel.get('metric')} on {sel.get('selection_split')}"
           if sel.get("decision", "best") == "best" else f"no difference on {sel.get('selection_split')}; {best} resolved")
    if best.startswith("step-") and best[5:].isdigit():
        return int(best[5:]), why
    if best == "final" and run.summary:
        return int(run.summary.get("steps") or 0), why
    return None


def training_section(run: RunFiles, sid: str, prefix: str, max_chars: int = 600) -> Section | None:
    sm, rows = run.summary, run.metrics
    if not sm and not rows:
        return None
    s = Section(sid, "Training")
    if sm:
        pct = 100 * sm["trainable_params"] / sm["total_params"] if sm.get("total_params") else None
        facts = [["stopped", f"{sm.get('stop_reason')} at step {sm.get('steps')}/{sm.get('total_steps')} "
                             f"(epoch {sm.get('epochs')})"],
                 ["best checkpoint (val loss)", f"step {sm.get('best_step')}: {fmt(sm.get('best_val_loss'))}"],
                 ["final val loss / token acc", f"{fmt(sm.get('final_val_loss'))} / {fmt(sm.get('final_val_token_accuracy'))}"],
                 ["final test loss / token acc", f"{fmt(sm.get('final_test_loss'))} / {fmt(sm.get('final_test_token_accuracy'))}"],
                 ["time", f"{fmt_seconds(sm.get('wall_time_s'))} wall, {fmt_seconds(sm.get('train_time_s'))} in training steps"
                          + (f", {fmt_seconds(sm['cpu_time_s'])} CPU" if sm.get("cpu_time_s") is not None else "")
                          + (f", {fmt_seconds(sm['device_time_s'])} GPU" if sm.get("device_time_s") is not None else "")],
                 ["throughput", f"{fmt(sm.get('tokens_per_s'))} tokens/s ({fmt(sm.get('tokens_seen'))} tokens)"],
                 ["peak memory", f"{fmt(sm.get('peak_memory_mb'))} MB ({sm.get('peak_memory_kind')})"],
                 ["parameters", f"{fmt(sm.get('trainable_params'))} trainable of {fmt(sm.get('total_params'))}"
                                + (f" ({pct:.2f}%)" if pct is not None else "")]]
        s.blocks.append(table(["", "value"], facts, "train/summary.json"))
    metric_pts = {m: [(r["step"], r[m]) for r in rows if r.get("split") == "val" and r.get(m) is not None]
                  for m in ("chrf", "bleu")}
    if rows:
        best = sm.get("best_step") if sm else None
        sel = selected_checkpoint(run)
        # The first in-training generation metric shares the loss panel (right axis), so a
        # falling loss and a rising (or flat) chrF read against the same steps.
        shown = next(((f"val {m}", p) for m, p in metric_pts.items() if p), None)
        s.blocks.append(_fig(run, "loss", plots.loss_curves(rows, best, sel, shown),
                             "train, validation and test loss and token accuracy"
                             + (f"; {shown[0]} of in-training generations on the right axis" if shown else "")
                             + "; dashed: best validation loss"
                             + ("; dotted: checkpoint chosen by eval selection" if sel and sel[0] != best else ""),
                             prefix))
    last = {}
    for r in rows:
        if r.get("split") in ("val", "test") and r.get("per_source"):
            last[r["split"]] = r
    if any(len(r["per_source"]) > 1 for r in last.values()):
        prow = [[split, src, fmt(v.get("loss")), fmt(v.get("token_accuracy")), v.get("tokens"), v.get("examples")]
                for split, r in last.items() for src, v in r["per_source"].items()]
        s.blocks.append(table(["split", "source", "loss", "token accuracy", "tokens", "examples"], prow,
                              f"per source at the last evaluation (step {max(r['step'] for r in last.values())})"))
    for metric, pts in metric_pts.items():
        if pts:
            n = next(r.get("generation_samples") for r in rows if r.get(metric) is not None)
            s.blocks.append(_fig(run, f"train-{metric}", plots.metric_curve(pts, f"val {metric}"),
                                 f"in-training generation metric: {metric} of greedy replies to {n} validation "
                                 f"prompts at each evaluation", prefix))
            s.blocks += last_generations(run, max(p[0] for p in pts), max_chars)
    return s


def last_generations(run: RunFiles, step: int, max_chars: int, n: int = 3) -> list[Any]:
    """The first `n` replies behind the generation metric at `step` (train/generations/), each
    beside its reference, with its own sentence score."""
    saved = read_jsonl(RunPaths(run.root).generations(step))[:n]
    if not saved:
        return []
    out: list[Any] = [Heading(f"Generations behind the metric at step {step} (first {len(saved)}; all of them, "
                              "for every evaluation, in train/generations/)")]
    for g in saved:
        out.append(Pre([("", cut(g.get("prompt"), max_chars, 12))], f"{g.get('id')}: prompt (last user message)"))
        out.append(Columns([
            (f"generation at step {step}", Pre([("", cut(g.get("generation") or "(empty output)", max_chars, 20))]),
             [Cell(f"{g.get('metric')} {fmt(g.get('score'))}", "", "this reply's sentence score")]),
            ("reference", Pre([("", cut(g.get("reference"), max_chars, 20))]), []),
        ]))
    return out


def checkpoint_section(run: RunFiles, sid: str, prefix: str) -> Section | None:
    """Score with CI per checkpoint for every task evaluated on two or more checkpoints."""
    steps_of = {}
    for v in run.evals:
        if v.startswith("step-") and v[5:].isdigit():
            steps_of[v] = int(v[5:])
    if run.summary and "final" in run.evals and run.summary.get("steps") not in steps_of.values():
        steps_of["final"] = int(run.summary["steps"])
    sel = run.selection or {}
    blocks: list[Any] = []
    labels = sorted({t for v in steps_of for t in run.evals[v]})
    for task in labels:
        have = [v for v in steps_of if task in run.evals[v]]
        if len(have) < 2:
            continue
        metric = next(iter(run.evals[have[0]][task]["metrics"]))
        pts = [{"step": steps_of[v], **run.evals[v][task]["metrics"][metric]} for v in have]
        base = (run.evals.get("base") or {}).get(task, {}).get("metrics", {}).get(metric)
        chosen = selected_checkpoint(run)
        blocks.append(_fig(run, f"ckpt-{_slug(task)}", plots.checkpoint_scores(
            pts, f"{task} {metric}", base, chosen[0] if chosen and sel.get("metric") == metric else None),
            f"{task} / {metric} per checkpoint with {_conf(run)} CIs; grey band: base model", prefix))
    if sel.get("candidates"):
        blocks += selection_blocks(sel)
    if not blocks:
        return None
    return Section(sid, "Checkpoints vs score", blocks)


def selection_blocks(sel: dict[str, Any]) -> list[Any]:
    """eval/selection.json: each candidate with the paired test against the top one, the decision
    (a best, or no difference), what `best` resolves to and why; loud where the choice was made
    on training items, said where the items were carved or capped."""
    out: list[Any] = []
    if sel.get("on_training_items"):
        out.append(Para("Chosen on TRAINING items (eval.selection.split: train, allowed by "
                        "eval.selection.allow_train_split): the choice favours the checkpoint that memorised best, "
                        "and says little about held-out items.", "warn"))
    tests = {c.get("variant"): c for c in sel.get("comparisons") or []}
    top = sel.get("top") or sel.get("best")
    rows = []
    for c in sel["candidates"]:
        t = tests.get(c["variant"]) or {}
        vs = ("top score" if c["variant"] == top else
              f"{fmt(t.get('diff'))} [{fmt(t.get('ci_low'))}, {fmt(t.get('ci_high'))}], {t.get('test')} "
              f"p={fmt(t.get('p_value'))}" if t else "-")
        rows.append([c["variant"], fmt_ci(c.get("value"), c.get("ci_low"), c.get("ci_high")), vs])
    where = str(sel.get("selection_split"))
    carved = sel.get("carved")
    if carved:
        where += f" (carved from {carved.get('carved_from')}: {carved.get('n')} of {carved.get('n_from')} items)"
    cap = sel.get("cap")
    capped = (f"; capped: the first {cap.get('n')} of {cap.get('n_total')} {sel.get('selection_split')} items"
              if cap else "")
    out.append(table(["candidate", f"{sel.get('task')} {sel.get('metric')} on {where}", f"{top} - candidate (paired)"],
                     rows, f"checkpoint selection: chosen on {sel.get('selection_split')}, reported on "
                           f"{sel.get('report_split')}; alpha {sel.get('alpha', '-')} (eval/selection.json){capped}"))
    if carved:
        out.append(Para(f"The task has no {carved.get('split')} split: it was carved from its {carved.get('carved_from')} "
                        f"items by a fixed rule ({carved.get('rule')}) and kept out of training.", "note"))
    resolved = sel.get("resolved") or sel.get("best")
    if sel.get("decision") == "no_difference":
        out.append(Para(f"No difference: no candidate beats the others beyond the noise on "
                        f"{sel.get('selection_split')}, so none is named best. The best model ref resolves to {resolved}: "
                        f"{sel.get('resolved_because')}.", "warn"))
    d = sel.get("difference_vs_base")
    rep = sel.get("report") or {}
    text = "; ".join(f"{v}: {fmt_ci(m.get('value'), m.get('ci_low'), m.get('ci_high'))}" for v, m in rep.items())
    lead = f"Selected {resolved}" if sel.get("decision", "best") == "best" else f"Resolved to {resolved}"
    if cap:
        text += f" (first {cap.get('report_n')} of {cap.get('report_n_total')} items)"
    out.append(Para(f"{lead}; on {sel.get('report_split')}: {text}"
                    + (f"; difference {d.get('of')}: {fmt_ci(d.get('diff'), d.get('ci_low'), d.get('ci_high'))}"
                       f" (bootstrap p={fmt(d.get('p_value'))})" if d else "") + "."))
    return out


def cost_section(run: RunFiles, sid: str, cfg: Any) -> Section | None:
    sm = run.summary
    stages = (run.pipeline or {}).get("stages") or {}
    if not sm and not stages:
        return None
    devices = int((sm or {}).get("world_size") or 1)
    gpu = (run.env or {}).get("gpu")
    kind = gpu["name"] if gpu else "CPU machine"
    rows = []
    if sm and sm.get("wall_time_s") is not None:
        rows.append(["training", sm["wall_time_s"]])
    timed = {**stages, "startup": (run.pipeline or {}).get("startup")}
    for name in ("startup", "data", "eval", "compare", "report"):
        st = timed.get(name) or {}
        # Every session: `tunelab run` and stand-alone `tunelab eval` / `compare` add up in seconds_total.
        sec = st.get("seconds_total", st.get("seconds"))
        if sec is not None:
            rows.append([name, sec])
    if not rows:
        return None
    total = sum(r[1] for r in rows)
    price = cfg.price_per_device_hour
    out = []
    for name, sec in rows + [["total", total]]:
        dh = sec / 3600 * devices
        out.append([Cell(name, "sig" if name == "total" else ""), fmt_seconds(sec), f"{dh:.4f}",
                    f"{dh * price:.4f} {cfg.currency}" if price is not None else "-"])
    s = Section(sid, "Cost", [table(["stage", "wall time", "device-hours", "cost"], out,
                                    f"{devices} x {kind}" + (f" at {price} {cfg.currency} per device-hour"
                                                             if price is not None else ""))])
    judge = judge_spend(run.root)
    if judge is not None:
        jprice = (((run.config or {}).get("eval") or {}).get("judge") or {}).get("price_per_million_tokens")
        text = (f"The endpoint judge was paid for {judge['total']:,} tokens ({judge['prompt']:,} prompt, "
                f"{judge['completion']:,} completion; records taken from another variant or the shared eval cache "
                "cost nothing here)")
        s.blocks.append(Para(text + (f": {judge['total'] * jprice / 1e6:.4f} {cfg.currency} at {jprice} {cfg.currency} "
                                     "per million tokens." if jprice is not None else
                                     ". Set eval.judge.price_per_million_tokens to add them to the cost.")))
    if price is None:
        s.blocks.append(Para("Set report.price_per_device_hour (e.g. --set report.price_per_device_hour=2.5) "
                             "to turn device-hours into money.", "note"))
    return s


PROMPT_CHARS = 4000  # a prompt is shown whole unless it is huge (long few-shot lists); cuts are marked


def prompt_blocks(run: RunFiles, task: str, variants: list[str]) -> list[Pre]:
    """The prompt of one item of `task` as each variant got it, one block per distinct prompt
    (variants that got the same text share it: `final` and `base` usually do, `base+cot` does
    not). The summary's `rendered_prompt` is the exact text after the chat template and
    generation prompt, special tokens included; where there is none (an endpoint rendered it,
    or results from before prompts were rendered) the first record of samples.jsonl is shown:
    chat messages one by one, a text prompt (completion style) as it is."""
    shown: dict[tuple[str, str, str], list[str]] = {}  # (item id, how, text) -> variants
    for v in variants:
        summary = run.evals.get(v, {}).get(task) or {}
        rendered = summary.get("rendered_prompt") or {}
        if isinstance(rendered.get("text"), str):
            key = (str(rendered.get("id")), "rendered", rendered["text"])
        else:
            folder = run.eval_dirs.get(v, {}).get(task)
            rec = _first_record(folder / "samples.jsonl") if folder is not None else None
            if not rec or not rec.get("prompt"):  # loss-style tasks store no prompt
                continue
            prompt = rec["prompt"]
            if isinstance(prompt, list):
                text = "\n\n".join(f"[{m.get('role')}]\n{m.get('content', '')}" for m in prompt)
                key = (str(rec.get("id")), "messages", text)
            else:
                key = (str(rec.get("id")), "text", str(prompt))
        shown.setdefault(key, []).append(v)
    template = (run.data_stats or {}).get("chat_template")
    how = {"rendered": "the exact text after the chat template, special tokens included",
           "messages": "the chat messages (samples.jsonl), before the backend applied the model's chat template"
                       + (f"; training used the '{template}' template" if template else ""),
           "text": "the text the model continued (samples.jsonl)"}
    return [Pre([("", cut(text, PROMPT_CHARS, max_lines=200))],
                f"prompt of item {item} as {', '.join(vs)} got it: {how[kind]}")
            for (item, kind, text), vs in shown.items()]


def _first_record(path: Path) -> dict[str, Any] | None:
    # Only the first line: samples files of large tasks run to megabytes.
    try:
        with open(path, encoding="utf-8") as f:
            line = next((ln for ln in f if ln.strip()), "")
        rec = json.loads(line) if line else None
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _conf(run: RunFiles) -> str:
    c = ((run.config.get("eval") or {}).get("confidence")) or 0.95
    return f"{round(100 * c)}%"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


__all__ = ["experiment_section", "data_section", "training_section", "checkpoint_section", "cost_section",
           "variant_order", "mask_segments", "selected_checkpoint", "prompt_blocks"]
