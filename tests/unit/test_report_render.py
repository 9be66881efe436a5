"""The report from run-directory files: every section that has data, nothing external, deltas
coloured by direction and marked by significance, Markdown alongside, fewer sections when
files are missing. `build_run` writes a complete synthetic run (the browser test uses it too)."""

from __future__ import annotations

import json
import re
from html import escape as html_escape
from pathlib import Path

import pytest

from tunelab.compare import token_class_report
from tunelab.compare.generations import decoding_settings, side_by_side
from tunelab.compare.paired import baseline_table, paired_comparisons
from tunelab.config import load_config
from tunelab.errors import ConfigError, TunelabError
from tunelab.report import RUN_SECTIONS, parse_report_overrides, write_report

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


MATH_PROMPT = "Tom has {i} apples & buys 2 <more>. How many now? ({variant})"
RENDERED = "<|im_start|>user\n" + MATH_PROMPT.replace("{i}", "0") + "<|im_end|>\n<|im_start|>assistant\n"


def _w(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))


def _eval(run: Path, variant: str, task: str, recs: list[dict], metrics: dict, prompt: str = "zero-shot",
          failures: dict | None = None, rendered: str | None = None) -> None:
    out = run / "eval" / variant / task
    _w(out / "samples.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
    ms = {}
    for name, (hib, agg) in metrics.items():
        vals = [r["values"][name] for r in recs if name in r["values"]]
        v = sum(vals) / len(vals) if vals else 31.0
        ms[name] = {"value": v, "ci_low": v - 0.05, "ci_high": v + 0.05, "n": len(recs), "higher_is_better": hib,
                    "aggregation": agg}
    _w(out / "summary.json", {"task": task, "version": "1", "n": len(recs), "split": "test", "metrics": ms,
                              "prompt": {"variant": prompt}, "ci": {"confidence": 0.95},
                              "failure_categories": failures or {},
                              "rendered_prompt": {"id": recs[0]["id"], "text": rendered} if rendered else None})


def build_run(root: Path) -> Path:
    """A run directory with every file a finished `tunelab run` writes (no model needed)."""
    run = root / "run"
    exp = load_config(SMOKE, ["report.price_per_device_hour=2.5", "eval.tasks=[math-word,similarity]"])
    _w(run / "config.yaml", exp.to_yaml())
    _w(run / "env.json", {"time": "2026-01-01T00:00:00", "command": "tunelab run configs/smoke.yaml", "seed": 0,
                          "world_size": 1, "python": "3.11", "platform": "Linux", "cpu_count": 2,
                          "versions": {"torch": "2.13", "transformers": "5.23"}, "gpu": None, "git_sha": "abc123"})
    _w(run / "data" / "stats.json", {
        "chat_template": "chatml", "end_of_turn": "<|im_end|>", "masking": "loss on assistant replies",
        "max_seq_len": 256, "truncation": "right", "packing": {"enabled": False},
        "counts": {"train": {"a": 40, "b": 8}, "val": {"a": 5, "b": 1}, "test": {"a": 5, "b": 1}},
        "kept": {"train": {"a": 40, "b": 8}, "val": {"a": 5, "b": 1}, "test": {"a": 5, "b": 1}},
        "tokens": {"train": {"n_kept": 48, "n_truncated": 1, "n_dropped": 0, "n_no_label": 0, "tokens_total": 2300,
                             "label_tokens_total": 1000, "length_mean": 47.9, "length_p95": 65, "length_max": 75}},
        "preview": "<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\n⟦def add(a, b):\n    return a + b<|im_end|>⟧\n"})
    rows = []
    for step in range(5, 45, 5):
        rows.append({"step": step, "split": "train", "loss": 3 - step / 30, "token_accuracy": step / 120,
                     "tokens_per_s": 1000})
        if step % 10 == 0:
            for split in ("val", "test"):
                rows.append({"step": step, "split": split, "loss": 3.1 - step / 40, "token_accuracy": step / 100,
                             "per_source": {"a": {"loss": 2.5, "token_accuracy": 0.3, "tokens": 90, "examples": 5},
                                            "b": {"loss": 2.9, "token_accuracy": 0.2, "tokens": 20, "examples": 1}},
                             **({"chrf": step / 2, "generation_samples": 4} if split == "val" else {})})
    _w(run / "train" / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    for step in (20, 40):
        gens = [{"step": step, "id": f"v{i}", "prompt": f"Write function number {i}.", "reference": f"def f{i}(): pass",
                 "generation": f"def g{i}_at_{step}(): pass", "metric": "chrf", "score": 10.0 * i} for i in range(5)]
        _w(run / "train" / "generations" / f"step-{step}.jsonl", "".join(json.dumps(g) + "\n" for g in gens))
    _w(run / "train" / "summary.json", {
        "stop_reason": "max_steps", "steps": 40, "total_steps": 40, "epochs": 3.3, "wall_time_s": 95.0,
        "train_time_s": 80.0, "tokens_seen": 20000, "tokens_per_s": 250.0, "peak_memory_mb": 900.0,
        "peak_memory_kind": "cpu_peak_rss", "trainable_params": 16384, "total_params": 614976, "best_step": 40,
        "best_val_loss": 2.1, "final_val_loss": 2.1, "final_val_token_accuracy": 0.4, "final_test_loss": 2.2,
        "final_test_token_accuracy": 0.38, "world_size": 1})
    _w(run / "pipeline.json", {"stages": {s: {"status": "done", "seconds": 10.0, "seconds_total": 10.0}
                                          for s in ("data", "train", "eval", "compare", "report")}})
    math_metrics = {"accuracy": (True, "mean")}
    sim_metrics = {"chrf": (True, "mean"), "chrf_corpus": (True, "corpus"), "edit": (False, "mean")}
    for variant, rate, chrf, prompt in (("base", 4, 20, "zero-shot"), ("base+few-shot", 3, 20, "few-shot"),
                                        ("step-20", 2, 30, "zero-shot"), ("step-40", 2, 40, "zero-shot"),
                                        ("final", 2, 40, "zero-shot")):
        recs = [{"id": f"m{i}", "values": {"accuracy": float(i % rate == 0)}, "generations": [f"#### {i}"],
                 "prompt": [{"role": "user", "content": MATH_PROMPT.format(i=i, variant=variant)}],
                 "scores": [{"verdict": "correct" if i % rate == 0 else "wrong_answer", "detail": f"expected {i + 1}"}]}
                for i in range(30)]
        # base and final rendered their prompt (the same text), base+few-shot its own; the
        # checkpoints' summaries predate rendered prompts and show their messages instead.
        rendered = {"base": RENDERED.format(variant="base"), "final": RENDERED.format(variant="base"),
                    "base+few-shot": RENDERED.format(variant="base+few-shot")}.get(variant)
        _eval(run, variant, "math-word", recs, math_metrics, prompt,
              {"correct": sum(i % rate == 0 for i in range(30)), "wrong_answer": sum(i % rate != 0 for i in range(30))},
              rendered=rendered)
        if variant.startswith("base+"):
            continue
        recs = [{"id": f"s{i}", "values": {"chrf": chrf + (i % 7), "edit": 10 - chrf / 10 + i % 3},
                 "prompt": f"def f{i}():\n    \"\"\"Return one.\"\"\"\n",
                 "generations": ["def f():\n    return 1\n" if variant != "base" else "The function returns one."],
                 "scores": [{"verdict": "inexact"}]} for i in range(20)]
        _eval(run, variant, "similarity", recs, sim_metrics)
    _w(run / "eval" / "selection.json", {
        "task": "similarity", "metric": "chrf", "selection_split": "val", "report_split": "test", "best": "step-40",
        "candidates": [{"variant": "step-20", "value": 30.0, "ci_low": 28.0, "ci_high": 32.0},
                       {"variant": "step-40", "value": 40.0, "ci_low": 38.0, "ci_high": 42.0}],
        "report": {"step-40": {"value": 40.0, "ci_low": 38.0, "ci_high": 42.0},
                   "base": {"value": 20.0, "ci_low": 18.0, "ci_high": 22.0}},
        "difference_vs_base": {"of": "step-40 - base", "diff": 20.0, "ci_low": 17.0, "ci_high": 23.0, "p_value": 0.0}})
    top = {"base": [{"id": 1, "token": "The", "prob": 0.4}, {"id": 2, "token": " $x", "prob": 0.2}],
           "final": [{"id": 3, "token": "def", "prob": 0.7}, {"id": 4, "token": "\n", "prob": 0.1}]}
    _w(run / "compare" / "next_token.json", {
        "variants": ["base", "final"], "reference": "base", "top_k": 2, "units": "bits", "prompts": [{
            "id": "test-0", "rendered": "<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\n",
            "in_train": {"status": "near", "similarity": 0.83, "origin": "f:3"}, "top": top,
            "entropy_bits": {"base": 5.1, "final": 2.2},
            "divergence": {"final": {"kl_ref_to_variant": 1.5, "kl_variant_to_ref": 1.2, "js": 0.3}},
            "reply": {"source": "reference reply", "tokens": ["def", " add", "(a"],
                      "prob": {"base": [0.005, 0.2, 0.6], "final": [0.95, 0.7, 0.6]},
                      "top1": {"base": ["The", " add", "(a"], "final": ["def", " add", "(a"]},
                      "mean_nll_bits": {"base": 3.2, "final": 0.33}, "top1_agreement": {"base": 0.667, "final": 1.0},
                      "largest_changes": {"final": [{"position": 0, "token": "def", "prob_reference": 0.005,
                                                     "prob": 0.95}]}}}]})
    outs = {"base": ["The sum of a and b."], "final": ["```python\ndef add(a, b):\n    return a + b\n```"]}
    _w(run / "compare" / "generations.json", {
        "variants": ["base", "final"], "reference": "base", "settings": decoding_settings(64, 0),
        "items": [{"id": "test-0", "messages": [{"role": "user", "content": "Add two numbers."}],
                   "reference": "def add(a, b):\n    return a + b", "in_train": "near",
                   "outputs": side_by_side(outs, "base")[0]}]})
    _w(run / "compare" / "token_classes.json", token_class_report(run))
    _w(run / "compare" / "paired.json", {**paired_comparisons(run, "base", "final", n_resamples=200), "notes": []})
    _w(run / "compare" / "baselines.json", {"rows": baseline_table(run)})
    return run


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str, str]:
    run = build_run(tmp_path_factory.mktemp("report"))
    html_path = write_report([run])
    return run, html_path.read_text(), (run / "report.md").read_text()


def section_ids(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', html)


def test_every_section_with_data_is_rendered(report):
    _, html, md = report
    assert section_ids(html) == list(RUN_SECTIONS)
    for title in ("## Experiment and environment", "## Results: base vs tuned vs prompting baselines",
                  "## Paired comparison", "## Next-token view", "## Side-by-side generations", "## Cost"):
        assert title in md


def test_the_html_is_self_contained(report):
    run, html, _ = report
    assert not re.search(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//', html, re.I)
    assert not re.search(r"<(?:script|link|iframe|img)\b|@import|url\((?!#)", html, re.I)
    n_svg = html.count("<svg")
    assert n_svg == len(list((run / "report_files").glob("*.svg"))) >= 6
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "element ids must be unique across inline SVGs"
    assert "@media print" in html


def test_deltas_are_coloured_by_direction_and_marked_by_significance(report):
    _, html, md = report
    # math-word accuracy: final (every 2nd right) vs base (every 4th): better and significant
    row = re.search(r"<tr><td>final</td>.*?</tr>", html.split('id="results"')[1], re.S).group()
    assert 'class="better sig"' in row and " *</td>" in row
    # similarity edit distance is lower-is-better: lower for final -> better
    sim = html.split("similarity (v1")[1].split("</table>")[0]
    final_row = re.search(r"<tr><td>final</td>.*?</tr>", sim, re.S).group()
    assert final_row.count('class="better') == 2  # chrf up, edit down
    assert "▲" in md  # colour becomes arrows in Markdown


def test_data_preview_generations_and_next_tokens(report):
    _, html, md = report
    assert '<span class="mask">def add(a, b):' in html
    gens = html.split('id="generations"')[1]
    assert '<span class="new">' in gens and "python parses" in gens and "no code" in gens
    assert "near duplicate (0.83)" in html and "⟦def add" in md
    # the reply scored token by token: tinted by probability, tooltips, the summary table
    nt = html.split('id="next-token"')[1].split("</section>")[0]
    assert '<span class="p0" title="base: p=0.005; base&#x27;s top-1: &#x27;The&#x27;">def</span>' in nt
    assert '<span class="p4" title="final: p=0.950; base: p=0.005">def</span>' in nt
    assert "mean NLL (bits/token)" in nt and "&#x27;def&#x27; 0.01→0.95" in nt
    assert "in-training generation metric" in html and "chrf" in html
    # which language the generated code looks like: Python markers only, so TypeScript's share is 0%
    tc = html.split('id="token-classes"')[1].split("</section>")[0]
    assert "does the code look like TypeScript or Python?" in tc and "TypeScript share of markers" in tc
    assert re.search(r"<tr><td>final · compare</td><td>\d+</td><td>[1-9]\d*</td><td>0%</td></tr>", tc)
    # ... and drawn with the losses, on the loss figure's right axis (study: chrF during training)
    assert "val chrf of in-training generations on the right axis" in html
    assert "checkpoint selection: chosen on val" in html
    cost = html.split('id="cost"')[1]
    assert "0.0375" in cost and "0.0938 USD" in cost  # (95 s training + 4 x 10 s) / 3600 h, at 2.5 per hour
    assert "wrong_answer" in html.split('id="failures"')[1] and "expected 2" in html


def test_missing_files_mean_fewer_sections(tmp_path):
    run = tmp_path / "bare"
    _w(run / "config.yaml", load_config(SMOKE).to_yaml())
    _w(run / "train" / "metrics.jsonl", json.dumps({"step": 1, "split": "train", "loss": 2.0}) + "\n")
    _w(run / "eval" / "selection.json", "{not json")
    html = write_report([run]).read_text()
    assert section_ids(html) == ["experiment", "training", "problems"]
    assert "unreadable" in html


def test_several_runs_get_a_comparison_and_their_own_sections(tmp_path, report):
    run, _, _ = report
    other = build_run(tmp_path)
    html = write_report([run, other], tmp_path / "both").read_text()
    ids = section_ids(html)
    assert ids[0] == "tradeoff" and {"val-curves", "sweep-cost"} <= set(ids)
    assert "run1-results" in ids and "run2-generations" in ids


def test_a_sweep_report_renders_the_table_and_front_of_sweep_json(tmp_path):
    from tunelab.sweep import Trial, summarize_sweep

    root = tmp_path / "sweep"
    trials = [Trial(name, (f"lora.r={r}",), {"lora.r": r}) for name, r in (("r4", 4), ("r16", 16))]
    (root / "trials").mkdir(parents=True)
    for t in trials:
        build_run(tmp_path / t.name).rename(root / "trials" / t.name)
    exp = load_config(SMOKE, ["report.enabled=false", "report.price_per_device_hour=2.5"])
    written = summarize_sweep(root, exp, trials, {t.name: "done" for t in trials}, SMOKE)
    assert [r["name"] for r in written["table"]] == ["r4", "r16"] and written["pareto"]["points"]
    sweep = json.loads((root / "sweep.json").read_text())
    # Numbers no trial's files hold: if the report recomputed the table, they would not show.
    sweep["table"][0]["trainable_params"] = 97531
    sweep["pareto"]["metric"] = "metric-only-in-sweep-json"
    (root / "sweep.json").write_text(json.dumps(sweep))
    html = write_report([root]).read_text()
    assert {"tradeoff", "pareto"} <= set(section_ids(html))
    assert "97,531" in html and "metric-only-in-sweep-json" in html
    # A price given when rendering re-prices the stored device-hours; nothing else changes.
    html = write_report([root], overrides={"price_per_device_hour": 1000.0}).read_text()
    assert f"{sweep['table'][0]['device_hours'] * 1000.0:.4f}" in html and "97,531" in html


def test_long_and_looping_texts_are_cut_visibly():
    from tunelab.report.blocks import cut

    assert cut("#\n" * 50 + "done", 1500) == "#\n… [the same line 49 more times]\ndone"
    assert cut("x" * 30, 10) == "x" * 10 + "… [20 more characters]"
    assert cut("\n".join(str(i) for i in range(100)), 10_000, max_lines=3) == "0\n1\n2\n… [97 more lines]"
    assert cut("a\n\n\n\n\nb", 100) == "a\n\n\n\n\nb"  # blank lines are layout, kept


def test_bad_arguments(tmp_path):
    with pytest.raises(TunelabError, match="neither a run directory"):
        write_report([tmp_path])
    assert parse_report_overrides(["report.price_per_device_hour=1.5"]) == {"price_per_device_hour": 1.5}
    with pytest.raises(ConfigError, match="did you mean"):
        parse_report_overrides(["report.price_per_device_hr=1"])
    with pytest.raises(ConfigError, match="only report"):
        parse_report_overrides(["train.lr=1"])
    with pytest.raises(ConfigError):
        parse_report_overrides(["report.price_per_device_hour=-1"])


def test_each_task_shows_the_prompt_of_its_first_item_as_each_variant_got_it(report):
    _, html, md = report
    results = html.split('id="results"')[1].split("</section>")[0]
    math = results.split("math-word (v1")[1].split("<h3>")[0]
    # The rendered text (chat template, special tokens), escaped, once for the variants that share it.
    assert "prompt of item m0 as base, final got it: the exact text after the chat template" in math
    assert f"<pre>{html_escape(RENDERED.format(variant='base'))}</pre>" in math and "<|im_start|>" not in math
    assert f"<pre>{html_escape(RENDERED.format(variant='base+few-shot'))}</pre>" in math
    assert "prompt of item m0 as base+few-shot got it: the exact text" in math
    # Summaries without a rendered prompt fall back to the stored messages.
    assert "prompt of item m0 as step-20 got it: the chat messages" in math and "[user]" in math
    assert html_escape(MATH_PROMPT.format(i=0, variant="step-20")) in math
    sim = results.split("similarity (v1")[1]
    assert ("prompt of item s0 as base, step-20, step-40, final got it: the text the model continued "
            "(samples.jsonl)") in sim
    assert html_escape('def f0():\n    """Return one."""') in sim
    assert RENDERED.format(variant="base") in md


def test_wins_and_losses_item_by_item(report):
    _, html, md = report
    wins = html.split('id="wins"')[1].split("</section>")[0]
    # math-word: base right on every 4th item, final on every 2nd -> final better on 7, worse on none
    row = re.search(r"<tr><td>math-word</td>.*?</tr>", wins, re.DOTALL).group()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[2:] == ["30", "7", "0", "23"]
    assert "math-word / m2: final better (accuracy 0 → 1)" in wins
    assert "math-word / m4:" not in wins  # both right: a tie, not shown
    assert "#### 2" in wins and "similarity / s0: final better (chrf 20 → 40)" in wins
    assert "What changed item by item" in md


def test_a_delta_over_fewer_items_than_its_values_says_which_items(tmp_path, report):
    _, html, _ = report
    assert "paired items" not in html  # every variant has a value on every item there
    run = tmp_path / "run"
    _w(run / "config.yaml", load_config(SMOKE, ["eval.tasks=[repair]"]).to_yaml())
    # REdit exists only where the repair parsed: base on all 30 items, final on 17 of them.
    for variant, vals in (("base", {i: 40.0 + i % 3 for i in range(30)}), ("final", {i: 20.0 for i in range(17)})):
        recs = [{"id": f"r{i}", "values": {"redit": vals.get(i)}, "generations": ["x"], "scores": [{"verdict": "failed"}]}
                for i in range(30)]
        _w(run / "eval" / variant / "repair" / "samples.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
        v = sum(vals.values()) / len(vals)
        _w(run / "eval" / variant / "repair" / "summary.json", {
            "task": "repair", "version": "2", "n": 30, "split": "test", "ci": {"confidence": 0.95},
            "metrics": {"redit": {"value": v, "ci_low": v - 1, "ci_high": v + 1, "n": len(vals), "ci_method": "bootstrap",
                                  "higher_is_better": False, "aggregation": "mean"}}})
    paired = paired_comparisons(run, "base", "final", n_resamples=200)
    row = paired["rows"][0]
    assert (row["n"], row["n_a"], row["n_b"]) == (17, 30, 17)
    _w(run / "compare" / "paired.json", {**paired, "notes": []})
    page = write_report([run]).read_text()
    results = page[page.index('id="results"'):page.index('id="paired"')]
    assert f"{row['diff']:+.4g} * on 17 paired items" in results
    assert "values beside it cover 30 and 17 items" in results and "CI: bootstrap" in results


def test_a_task_warning_heads_its_results_and_failures_show_the_judges_reply(tmp_path):
    run = build_run(tmp_path)
    summary_path = run / "eval" / "final" / "math-word" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["warning"] = "the judge's reply could be read for only 0 of 30 hints"
    _w(summary_path, summary)
    samples = run / "eval" / "final" / "math-word" / "samples.jsonl"
    recs = [json.loads(line) for line in samples.read_text().splitlines()]
    recs[1]["scores"][0] = {"verdict": "judge_unparsed", "judge_reply": "As an AI I cannot grade hints."}
    _w(samples, "".join(json.dumps(r) + "\n" for r in recs))
    page = write_report([run]).read_text()
    results = page[page.index('id="results"'):page.index('id="paired"')]
    task_start = results.index("math-word (v1")
    warning = results.index("Warning (final): the judge&#x27;s reply could be read for only 0 of 30 hints")
    assert task_start < warning < results.index("<table", task_start)  # a headline above the numbers
    failures = page[page.index('id="failures"'):]
    assert "As an AI I cannot grade hints." in failures and "the judge&#x27;s reply" in failures


def test_the_data_section_shows_what_held_out_items_share_with_training(tmp_path):
    run = build_run(tmp_path)
    stats = json.loads((run / "data" / "stats.json").read_text())
    stats["overlap"] = {"val": {"n": 6, "shares_group_with_train": 0, "near_duplicate_of_train": 0},
                        "test": {"n": 6, "shares_group_with_train": 2, "near_duplicate_of_train": 1}}
    _w(run / "data" / "stats.json", stats)
    page = write_report([run]).read_text()
    data = page[page.index('id="data"'):page.index('id="training"')]
    assert "share a group with train" in data and "near-duplicate of a train item" in data
    assert "measure recall as much as generalisation" in data


def test_cost_adds_up_every_session_of_a_stage_including_stand_alone_commands(tmp_path):
    from tunelab.report.load import load_run
    from tunelab.report.sections_run import cost_section
    from tunelab.runs import accounted, add_stage_seconds

    run = build_run(tmp_path)
    state = json.loads((run / "pipeline.json").read_text())
    add_stage_seconds(state["stages"]["eval"], 50.0)  # a second `tunelab run` session of the eval stage
    _w(run / "pipeline.json", state)
    with pytest.raises(RuntimeError):
        with accounted(run, "compare"):  # a stand-alone `tunelab compare` that failed: its time still counts
            raise RuntimeError("simulated failure")
    state = json.loads((run / "pipeline.json").read_text())
    add_stage_seconds(state.setdefault("startup", {"seconds_total": 0.0}), 7.0)  # importing the model libraries
    _w(run / "pipeline.json", state)
    assert state["stages"]["eval"]["seconds_total"] == 60.0
    assert state["stages"]["compare"]["seconds_total"] >= 10.0 and state["stages"]["compare"]["sessions"] == 1
    loaded = load_run(run)
    section = cost_section(loaded, "cost", loaded.report_config(None))
    def text(c):
        return c.text if hasattr(c, "text") else str(c)

    rows = {text(r[0]): [text(c) for c in r] for r in section.blocks[0].rows}
    total = 95.0 + 7.0 + sum(state["stages"][k]["seconds_total"] for k in ("data", "eval", "compare", "report"))
    assert float(rows["startup"][2]) == pytest.approx(7.0 / 3600, abs=1e-4)
    assert "<td>startup</td><td>done</td><td>7.0 s</td>" in write_report([run]).read_text()  # the stage table too
    assert float(rows["eval"][2]) == pytest.approx(60.0 / 3600, abs=1e-4)  # device-hours: both sessions
    assert float(rows["total"][2]) == pytest.approx(total / 3600, abs=1e-4)  # training + every session


def test_variants_scored_on_other_items_get_no_delta_and_one_off_results_change_nothing(tmp_path):
    """A one-off eval (other task data, --limit 5) once replaced final's summary.json: the report
    showed base on 30 items against final on 5 others as a delta, and the wins mixed both."""
    run = build_run(tmp_path)
    for v in ("base", "final"):  # what the engine records: the fingerprint and items of each summary
        sp = run / "eval" / v / "math-word" / "summary.json"
        _w(sp, {**json.loads(sp.read_text()), "fingerprint": f"fp-{v}", "items": "items-30"})
        recs = [json.loads(x) for x in (sp.parent / "samples.jsonl").read_text().splitlines()]
        _w(sp.parent / "samples.jsonl", "".join(json.dumps({**r, "fingerprint": f"fp-{v}"}) + "\n" for r in recs))
    def body() -> str:  # the page without the time it was written
        page = write_report([run]).read_text()
        return page[page.index("<nav"):]

    page = body()
    # The one-off: records of other items appended to the caches, its summaries keyed beside.
    for v in ("base", "final"):
        out = run / "eval" / v / "math-word"
        with (out / "samples.jsonl").open("a") as f:
            for i in range(5):
                f.write(json.dumps({"id": f"m{i}", "fingerprint": "fp-other", "values": {"accuracy": 1.0 * (v == "final")},
                                    "generations": ["other"], "scores": [{"verdict": "judge_unparsed"}]}) + "\n")
        _w(out / "summary@abc.json", {"task": "math-word", "n": 5, "items": "items-5", "metrics": {}})
    assert body() == page
    sp = run / "eval" / "final" / "math-word" / "summary.json"
    _w(sp, {**json.loads(sp.read_text()), "items": "items-5"})  # as an older tunelab wrote it over
    page = write_report([run]).read_text()
    results = page[page.index('id="results"'):page.index('id="paired"')]
    math = results[results.index("math-word"):results.index("similarity")]
    assert "other items" in math and "scored on different items" in math


def test_next_token_bars_are_labelled_on_one_scale_with_long_tokens_cut():
    from tunelab.report.plots import next_token_bars, readable_token, to_svg

    long = "x" * 60
    fig = next_token_bars({"base": [{"token": long, "prob": 0.2}, {"token": " ", "prob": 0.1}],
                           "final": [{"token": "def", "prob": 0.8}, {"token": "\n", "prob": 0.0004}]})
    base, final = fig.axes
    assert base.get_xlim() == final.get_xlim() and base.get_xlim()[1] >= 0.8  # the tuned panel's max sets both
    svg = to_svg(fig, "t")
    for text in ("0.200", "0.100", "0.800", "4.0e-04"):
        assert text in svg
    ticks = [t.get_text() for t in base.get_yticklabels()]
    assert "x" * 11 + "…" in ticks and long not in svg and "␣" in ticks
    assert "\\n" in [t.get_text() for t in final.get_yticklabels()]
    assert readable_token(long, 12) == "x" * 11 + "…" and readable_token(long) == long


def test_the_next_token_view_prints_each_probability_and_whole_tokens(report):
    _, html, md = report
    nt = html.split('id="next-token"')[1].split("</section>")[0]
    assert "0.400" in nt and "0.700" in nt  # on the bars (SVG text) and in the table
    assert "final token" in nt and "\\n" in nt and "␣$x" in nt
    assert "| 1 | The | 0.400 | def | 0.700 |" in md


def test_training_shows_train_accuracy_and_the_last_steps_generations(report):
    from tunelab.report.load import load_run
    from tunelab.report.plots import loss_curves

    run, html, _ = report
    acc_axis = loss_curves(load_run(run).metrics).axes[1]
    assert "train" in [line.get_label() for line in acc_axis.get_lines()]
    training = html.split('id="training"')[1].split("</section>")[0]
    assert "Generations behind the metric at step 40" in training
    assert "def g0_at_40(): pass" in training and "def g2_at_40" in training and "def g3_at_40" not in training
    assert "_at_20" not in training and "chrf 20" in training


def test_the_first_section_answers_did_fine_tuning_help(tmp_path):
    run = build_run(tmp_path)
    stats = json.loads((run / "data" / "stats.json").read_text())
    stats["overlap"] = {"test": {"n": 6, "shares_group_with_train": None, "near_duplicate_of_train": 0,
                                 "reply_near_duplicate_of_train": 0, "prompt_or_reply_near_duplicate_of_train": 0}}
    _w(run / "data" / "stats.json", stats)
    page = write_report([run]).read_text()
    md = (run / "report.md").read_text()
    assert section_ids(page)[0] == "headline"
    paired = json.loads((run / "compare" / "paired.json").read_text())
    row = next(r for r in paired["rows"] if (r["a"], r["b"], r["task"], r["metric"]) == ("base", "final", "math-word",
                                                                                         "accuracy"))
    assert row["test"] == "mcnemar-exact"
    for text in (md[:md.index("## Experiment")], page[page.index('id="headline"'):page.index('id="experiment"')]):
        line = next(ln for ln in text.splitlines() if "math-word" in ln and "accuracy" in ln)
        # base -> tuned with each value's CI, the paired difference's CI, the test and its p-value
        assert "base 0.2667 [0.2167, 0.3167]" in line and "final 0.5 [0.45, 0.55]" in line
        assert f"95% CI [{row['ci_low']:.4g}, {row['ci_high']:.4g}]" in line
        assert "mcnemar-exact p = " in line and f"{row['b_only']} vs {row['a_only']} discordant" in line
        assert "similarity" in text and "Checkpoint selection: step-40" in text
        assert "Overlap: 0 of 6 test items have a near-duplicate prompt or reference answer" in text
    first = md[:md.index("## Experiment")].splitlines()
    assert sum("math-word —" in ln for ln in first) == 1 == sum("similarity —" in ln for ln in first)
    # the selection's task is headlined by the chosen checkpoint, not by whatever came last
    assert "→ step-40" in next(ln for ln in first if "similarity —" in ln)


def test_a_sweep_report_has_every_model_on_every_task_loss_curves_and_each_selection(tmp_path):
    from tunelab.sweep import Trial, summarize_sweep

    root = tmp_path / "sweep"
    trials = [Trial(name, (f"lora.r={r}",), {"lora.r": r}) for name, r in (("r4", 4), ("r16", 16))]
    (root / "trials").mkdir(parents=True)
    for t in trials:
        build_run(tmp_path / t.name).rename(root / "trials" / t.name)
    # r16's hints were judged by the rule-based stand-in: the report must say so, loudly.
    hint = root / "trials" / "r16" / "eval" / "final" / "hint-judge"
    _eval(root / "trials" / "r16", "final", "hint-judge", [{"id": "h0", "values": {"HGood": 1.0}}],
          {"HGood": (True, "mean")})
    summary = json.loads((hint / "summary.json").read_text())
    (hint / "summary.json").write_text(json.dumps({**summary, "judge": "rules:hint-v1"}))
    exp = load_config(SMOKE, ["report.price_per_device_hour=2.5"])
    written = summarize_sweep(root, exp, trials, {t.name: "done" for t in trials}, SMOKE)
    row = written["table"][0]
    assert set(row["variant_scores"]) == {"base", "base+few-shot", "step-20", "step-40", "final"}
    assert row["selection"]["best"] == "step-40" and row["selection"]["task"] == "similarity"
    assert row["train_curve"][0] == [5, 3 - 5 / 30] or row["train_curve"][0] == (5, 3 - 5 / 30)
    assert [p[0] for p in row["test_curve"]] == [10, 20, 30, 40]
    html = (root / "report.html").read_text()
    ids = section_ids(html)
    assert ids.index("tradeoff") < ids.index("models") < ids.index("val-curves") < ids.index("selection")
    models = html.split('id="models"')[1].split("</section>")[0]
    names = re.findall(r'<td title="results of [^"]+">([^<]+)</td>', models)
    # base and base+few-shot once (every trial evaluates the same base), then each trial's final.
    assert names == ["base", "base+few-shot", "r4:final", "r16:final"]
    assert "read from r4; r16 evaluated the same weights with the same prompts" in models
    assert "math-word/accuracy" in models and "similarity/chrf" in models and "hint-judge/HGood" in models
    assert "STAND-IN JUDGE" in models and "Runs judged so: r16" in models
    assert "STAND-IN JUDGE" in html.split('id="tradeoff"')[1].split("</section>")[0]
    curves = html.split('id="val-curves"')[1].split("</section>")[0]
    assert "training loss against step" in curves and "test loss against step" in curves
    sel = html.split('id="selection"')[1].split("</section>")[0]
    assert "similarity/chrf on val" in sel and "best: step-40" in sel and "20 [17, 23]" in sel
    # A trial whose selection found no difference reports the checkpoint it resolved to, and says so.
    sel_file = root / "trials" / "r4" / "eval" / "selection.json"
    sel_json = json.loads(sel_file.read_text())
    sel_file.write_text(json.dumps({**sel_json, "decision": "no_difference", "best": None, "top": "step-40",
                                    "resolved": "step-20", "report": {**sel_json["report"],
                                                                       "step-20": sel_json["report"]["step-40"]}}))
    summarize_sweep(root, exp, trials, {t.name: "done" for t in trials}, SMOKE)
    html = (root / "report.html").read_text()
    assert "no difference (top step-40)" in html.split('id="selection"')[1]
    assert "r4:step-20 (selection: no difference, trained longest)" in html.split('id="models"')[1].split("</section>")[0]
