"""`tunelab sweep` with `sweep.compare`: two real trials (a few steps each on the tiny random
model, trained with different chat templates) compared with each other in the sweep's report,
a re-run that loads no model for it, and `tunelab compare` of one trial with the other's final."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tunelab.cli import app

ROOT = Path(__file__).resolve().parents[2]
# Two real trials and a re-run: about 30 s of CPU (a minute on a shared 2-core machine). The
# default tier covers the same path with made trials (tests/unit/test_sweep_compare.py); .ci/run
# runs this file with --runslow beside the other real sweeps.
pytestmark = pytest.mark.slow
TRIALS = ("lora.r=4,data.chat_template=plain", "lora.r=8,data.chat_template=chatml")


def tunelab(*args: str) -> str:
    """The CLI in this process (the sweep still runs each trial as its own `tunelab run`)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    out = " ".join(res.output.split())
    assert res.exit_code == 0, out
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("sweep-compare")
    cfg = yaml.safe_load((ROOT / "configs" / "sweep-lora.yaml").read_text())
    cfg["data"]["sources"][0]["path"] = str(ROOT / "configs" / "data" / "smoke.jsonl")
    cfg["train"].update(max_steps=4, eval_every=4, save_every=4, log_every=2)
    cfg["eval"].update(limit=4, bootstrap_resamples=100)
    cfg["compare"] = {"n_prompts": 2, "max_new_tokens": 8, "top_k": 3}
    cfg["sweep"] = {"zip": {"lora.r": [4, 8], "data.chat_template": ["plain", "chatml"]},
                    "stages": ["data", "train", "eval"], "compare": ["base", "final"]}
    config = tmp / "sweep.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    root = tmp / "sweep"
    return config, root, tunelab("sweep", str(config), "--run-dir", str(root))


def test_the_sweep_report_compares_the_trials_side_by_side_and_paired(sweep):
    _, root, out = sweep
    a, b = (f"{t}:final" for t in TRIALS)
    info = json.loads((root / "sweep.json").read_text())["compare"]
    # The trials share the base weights but not the template: one base per template.
    assert info["variants"] == [f"{TRIALS[0]}:base", f"{TRIALS[1]}:base", a, b], out
    nt = json.loads((root / "compare" / "next_token.json").read_text())
    assert nt["chat_templates"] == {f"{TRIALS[0]}:base": "plain", f"{TRIALS[1]}:base": "chatml", a: "plain", b: "chatml"}
    assert "<|im_start|>" in nt["prompts"][0]["rendered_by"][b] and "<|im_start|>" not in nt["prompts"][0]["rendered_by"][a]
    gens = json.loads((root / "compare" / "generations.json").read_text())
    assert len(gens["items"]) == 2 and set(gens["items"][0]["outputs"]) == set(info["variants"])
    paired = json.loads((root / "compare" / "paired.json").read_text())
    row = next(r for r in paired["rows"] if (r["a"], r["b"], r["task"]) == (a, b, "loss"))  # trial vs trial
    assert row["n"] == 4 and row["same_items"] and row["test"] == "paired-bootstrap" and row["p_value"] is not None

    html = (root / "report.html").read_text()
    ids = re.findall(r'<section id="([^"]+)"', html)
    assert ids[:2] == ["trials", "tradeoff"] and {"models", "pareto"} <= set(ids)  # every model on every task
    assert {"cross", "cross-results", "cross-paired", "cross-next-token", "cross-generations"} <= set(ids)
    side = html.split('id="cross-generations"')[1].split("</section>")[0]
    assert a in side and b in side
    pairs = html.split('id="cross-paired"')[1].split("</section>")[0]
    assert f"{b} vs {a}" in pairs


def test_a_rerun_skips_the_trials_and_loads_no_model_for_the_comparison(sweep):
    config, root, _ = sweep
    before = {p.name: p.read_bytes() for p in (root / "compare").glob("next_token*.json")}
    out = tunelab("sweep", str(config), "--run-dir", str(root))
    assert out.count("done, skipped") == 2
    assert "next-token and generation views are up to date" in out
    assert {p.name: p.read_bytes() for p in (root / "compare").glob("next_token*.json")} == before
    assert all((root / "trials" / t / "final").is_dir() for t in TRIALS)  # nothing of the trials removed


def test_compare_of_one_trial_with_the_other_trials_final(sweep):
    _, root, _ = sweep
    mine, other = (root / "trials" / t for t in TRIALS)
    tunelab("compare", str(mine), "--set", f"compare.variants=[final, '{other}:final']",
            "--set", "compare.n_prompts=1", "--set", "compare.max_new_tokens=4")
    (nt_file,) = (mine / "compare").glob("next_token@*.json")
    nt = json.loads(nt_file.read_text())
    assert nt["variants"] == ["final", f"{TRIALS[1]}:final"]
    assert nt["chat_templates"] == {"final": "plain", f"{TRIALS[1]}:final": "chatml"}
    (paired_file,) = (mine / "compare").glob("paired@*.json")
    paired = json.loads(paired_file.read_text())
    row = next(r for r in paired["rows"] if (r["a"], r["b"]) == ("final", f"{TRIALS[1]}:final"))
    assert row["task"] == "loss" and row["n"] == 4  # the other trial's own eval results
