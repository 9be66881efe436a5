"""The two multi-run studies end to end, each as its one shipped command: `tunelab sweep
configs/studies/NAME.yaml --profile offline`, made tiny with a few more overrides (few steps,
few items, short replies), and the sweep report holding every section the study needs. .ci/run
runs them (about 2.5 minutes together on 2 idle cores)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelab.cli import app

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "configs" / "studies"


def tunelab(*args: str) -> str:
    """The CLI in this process (the sweep still runs each trial as its own `tunelab run`)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    out = " ".join(res.output.split())
    assert res.exit_code == 0, out
    return out


def sections(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', html)


def section(html: str, sid: str) -> str:
    return html.split(f'<section id="{sid}"')[1].split("</section>")[0]


@pytest.mark.slow(reason="two real trials with two checkpoints each, every one scored in the sandbox, checkpoint "
                         "selection, then the trials compared: ~45 s on 2 cores")
def test_study_2_deep_vs_diverse_as_one_sweep(tmp_path):
    root = tmp_path / "sweep"
    out = tunelab("sweep", str(STUDIES / "deep-vs-diverse.yaml"), "--profile", "offline", "--run-dir", str(root),
                  "--set", "train.max_steps=10", "--set", "train.log_every=5", "--set", "train.eval_every=5",
                  "--set", "train.save_every=5", "--set", "train.max_eval_examples=8", "--set", "eval.limit=6",
                  "--set", "eval.max_new_tokens=24", "--set", "eval.bootstrap_resamples=100",
                  "--set", "compare.n_prompts=2", "--set", "compare.max_new_tokens=16",
                  "--set", "compare.permutation_resamples=200")
    assert "sweep: 2/2 trials done" in out, out
    check_deep_vs_diverse(root)


def check_deep_vs_diverse(root: Path) -> None:
    for trial in ("deep", "diverse"):  # readable trial folders, though each swaps a whole data.sources list
        tdir = root / "trials" / trial
        metrics = [json.loads(line) for line in (tdir / "train" / "metrics.jsonl").read_text().splitlines()]
        for split in ("train", "val", "test"):  # every loss every 5 steps (the study: every 20), val/test from 0
            want = [5, 10] if split == "train" else [0, 5, 10]
            assert [m["step"] for m in metrics if m["split"] == split] == want, (trial, split)
        assert sorted(p.name for p in (tdir / "checkpoints").iterdir()) == ["step-10", "step-5"]  # every one kept
        assert {p.name for p in (tdir / "eval").iterdir()} >= {"base", "step-5", "step-10", "final"}  # all scored
        selection = json.loads((tdir / "eval" / "selection.json").read_text())
        assert selection["task"] == "compose" and selection["selection_split"] == "val"
        assert selection["decision"] in ("best", "no_difference") and selection["resolved"]
    stats = json.loads((root / "trials" / "diverse" / "data" / "stats.json").read_text())
    assert set(stats["counts"]["train"]) == {"compose-diverse"}

    html = (root / "report.html").read_text()
    ids = sections(html)
    assert {"trials", "tradeoff", "models", "pareto", "val-curves", "selection", "cross", "cross-results",
            "cross-paired", "cross-generations", "cross-next-token"} <= set(ids), ids
    assert {"deep", "diverse"} <= set(re.findall(r"<td>(deep|diverse)</td>", section(html, "trials")))
    curves = section(html, "val-curves")
    assert all(f"{s} loss against step" in curves for s in ("validation", "training", "test"))
    chosen = section(html, "selection")
    assert "compose/pass@1 on val" in chosen and chosen.count("<tr>") == 3  # header + one row per trial
    models = section(html, "models")
    assert all(name in models for name in (">base<", "deep:final", "diverse:final", "compose/pass@1"))
    # The two tuned models answer the same prompts side by side, with paired tests between them.
    side = section(html, "cross-generations")
    assert "deep:final" in side and "diverse:final" in side
    assert "diverse:final vs deep:final" in section(html, "cross-paired")


@pytest.mark.slow(reason="six real trials (3 datasets x 2 LoRA settings) scored on repair in the sandbox and on "
                         "hints by the rule-based judge: ~100 s on 2 cores")
def test_study_4_repair_and_hints_as_one_sweep(tmp_path):
    root = tmp_path / "sweep"
    out = tunelab("sweep", str(STUDIES / "repair-hints.yaml"), "--profile", "offline", "--run-dir", str(root),
                  "--set", "train.max_steps=4", "--set", "train.log_every=2", "--set", "train.eval_every=2",
                  "--set", "train.save_every=4", "--set", "train.max_eval_examples=8", "--set", "eval.limit=4",
                  "--set", "eval.max_new_tokens=24", "--set", "eval.bootstrap_resamples=100",
                  "--set", "data.max_seq_len=384")
    names = ["repair,r4", "repair,r64", "hint,r4", "hint,r64", "merged,r4", "merged,r64"]
    assert "sweep: 6/6 trials done" in out, out
    check_repair_hints(root)


def check_repair_hints(root: Path) -> None:
    names = ["repair,r4", "repair,r64", "hint,r4", "hint,r64", "merged,r4", "merged,r64"]
    sweep = json.loads((root / "sweep.json").read_text())
    assert [t["name"] for t in sweep["trials"]] == names
    rows = {r["name"]: r for r in sweep["table"]}
    assert rows["repair,r4"]["trainable_params"] < rows["repair,r64"]["trainable_params"]
    merged = json.loads((root / "trials" / "merged,r4" / "data" / "stats.json").read_text())
    assert set(merged["counts"]["train"]) == {"repair", "repair-hint"}
    # Whole problems went to one split: no val/test row shares its problem with a training row.
    assert all(v["shares_group_with_train"] == 0 for v in merged["overlap"].values())
    for name in names:
        r = rows[name]
        assert {"base", "base+cot", "final"} <= set(r["variant_scores"]), name
        assert {"repair/rpass", "repair/redit", "hint-judge/HGood", "hint-judge/HConceal"} <= set(r["scores"])
        assert r["judges"] == ["rules:hint-v1"] and r["train_curve"] and r["val_curve"]
        assert r["peak_memory_mb"] and r["device_seconds"] and r["wall_time_s"]
    summary = json.loads((root / "trials" / "hint,r4" / "eval" / "final" / "hint-judge" / "summary.json").read_text())
    assert summary["report"]["stand_in_judge"] == "rules" and "RULE-BASED STAND-IN JUDGE" in summary["warning"]

    html = (root / "report.html").read_text()
    ids = sections(html)
    assert {"trials", "tradeoff", "models", "pareto", "val-curves"} <= set(ids), ids
    tradeoff = section(html, "tradeoff")
    assert all(col in tradeoff for col in ("trainable params", "device time", "peak memory (MB)", "repair/rpass",
                                           "repair/redit", "hint-judge/HGood"))
    assert "STAND-IN JUDGE" in tradeoff
    curves = section(html, "val-curves")
    assert "training loss against step" in curves and "validation loss against step" in curves
    models = section(html, "models")
    listed = re.findall(r'<td title="results of [^"]+">([^<]+)</td>', models)
    assert listed == ["base", "base+cot", *[f"{n}:final" for n in names]], listed
    assert "STAND-IN JUDGE" in models and "hint-judge/HComprehensible" in models and "repair/rpass" in models
