"""The single-run studies (configs/studies/): each runs offline with its documented override,
`--profile offline`, through the real CLI into one report holding what its study reported by hand.
Shortened here (fewer steps and items) so the three take about two minutes; docs/studies.md has
the shipped profiles' times."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelab.cli import app

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "configs" / "studies"
QUICK = ["--set", "train.max_steps=12", "--set", "train.eval_every=6", "--set", "train.save_every=6",
         "--set", "eval.limit=4", "--set", "eval.bootstrap_resamples=100", "--set", "eval.max_new_tokens=24",
         "--set", "compare.max_new_tokens=24", "--set", "train.max_eval_examples=8"]


def run_study(name: str, tmp_path: Path, *extra: str) -> tuple[Path, str]:
    run = tmp_path / name
    res = CliRunner().invoke(app, ["run", str(STUDIES / f"{name}.yaml"), "--profile", "offline", "--run-dir", str(run),
                                   *QUICK, *extra], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return run, (run / "report.html").read_text(encoding="utf-8")


def section(html: str, sid: str) -> str:
    assert f'id="{sid}"' in html, f"no {sid} section"
    return html.split(f'id="{sid}"')[1].split("</section>")[0]


def test_every_study_config_is_shipped():
    names = sorted(p.stem for p in STUDIES.glob("*.yaml"))
    assert {"next-tokens", "chrf-during-training", "gsm8k"} <= set(names)


@pytest.mark.slow(reason="trains and evaluates the built-in model (~40 s)")
def test_next_tokens_study_offline(tmp_path):
    run, html = run_study("next-tokens", tmp_path)
    nt = section(html, "next-token")
    # one prompt from the training data and one unseen, top-10 with probabilities of both variants
    assert "ts-instruct/train/1" in nt and "ts-instruct/test/3" in nt
    assert nt.count("top-10 first tokens of prompt") == 2 and "base p" in nt and "final p" in nt
    gens = section(html, "generations")
    assert "(in training: exact)" in gens and "(in training: no)" in gens  # both full greedy answers
    assert "TypeScript share of markers" in section(html, "token-classes")
    assert "loss" in section(html, "training")
    top = json.loads((run / "compare" / "next_token.json").read_text())
    assert all(len(p["top"]["final"]) == 10 for p in top["prompts"])


@pytest.mark.slow(reason="trains with in-training generations and evaluates (~40 s)")
def test_chrf_during_training_study_offline(tmp_path):
    run, html = run_study("chrf-during-training", tmp_path, "--set", "train.max_steps=12")
    rows = [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r.get("chrf") is not None] == [0, 6, 12]  # chrF at every eval step, and before
    training = section(html, "training")
    assert "val chrf of in-training generations on the right axis" in training
    assert "Generations behind the metric at step 12" in training
    assert re.search(r"similarity — chrf ↑", section(html, "headline"))
    assert (run / "eval" / "final" / "similarity").is_dir()


@pytest.mark.slow(reason="trains and evaluates the built-in model (~40 s)")
def test_gsm8k_study_offline(tmp_path):
    run, html = run_study("gsm8k", tmp_path)
    summary = json.loads((run / "eval" / "final" / "math-word" / "summary.json").read_text())
    assert summary["n"] == 4 and summary["limit"] == 4
    assert "math-word — accuracy_strict" in section(html, "headline")
    failures = section(html, "failures")
    assert "no_answer" in failures or "arithmetic_error" in failures or "wrong_answer" in failures
    cost = section(html, "cost")
    assert "USD" in cost and "0.1 USD per device-hour" in cost
    training = section(html, "training")
    assert "token accuracy" in training
