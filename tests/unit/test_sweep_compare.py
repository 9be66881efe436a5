"""`sweep.compare`: a sweep's finished trials compared with each other, into SWEEP_DIR/compare/
and the sweep report, with the real compare code on tiny models. The trials are made by a fake
launcher (a saved random adapter and eval files per trial, no training);
tests/integration/test_sweep_compare_cli.py runs real trials through the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from tunelab.config import load_config
from tunelab.errors import ConfigError
from tunelab.sweep import run_sweep

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("lora.r=4,lora.alpha=8", "lora.r=16,lora.alpha=32")


class TrialMaker:
    """Stands in for `tunelab run`: a trial directory with config.yaml, final/ and eval results
    of base and final on the same 6 items (final of r=16 passes more)."""

    def __init__(self, base_dir: Path, save_adapter, fail: str | None = None) -> None:
        self.base_dir, self.save_adapter, self.fail, self.calls = base_dir, save_adapter, fail, []

    def __call__(self, cmd: list[str], log: Path, on_start) -> int:
        run = Path(cmd[cmd.index("--run-dir") + 1])
        self.calls.append(run.name)
        on_start(1)
        if run.name == self.fail:
            return 1
        sets = [cmd[i + 1] for i, c in enumerate(cmd) if c == "--set"]
        exp = load_config(Path(cmd[cmd.index("run") + 1]), sets)
        raw = exp.model_dump(mode="json")
        raw["model"] = {"name": str(self.base_dir), "device": "cpu"}
        (run / "config.yaml").write_text(yaml.safe_dump(raw))
        self.save_adapter(self.base_dir, run / "final", exp.lora.r)
        (run / "train").mkdir(exist_ok=True)
        (run / "train" / "summary.json").write_text(json.dumps({"wall_time_s": 1.0, "trainable_params": exp.lora.r}))
        passes = {"base": 1, "final": 2 if exp.lora.r == 4 else 5}
        for variant, k in passes.items():
            out = run / "eval" / variant / "t"
            out.mkdir(parents=True)
            values = [1.0 if i < k else 0.0 for i in range(6)]
            (out / "samples.jsonl").write_text("".join(json.dumps(
                {"id": f"q{i}", "item": f"h{i}", "values": {"acc": v}, "generations": [f"answer {i}"], "scores": [{}]}) + "\n"
                for i, v in enumerate(values)))
            (out / "summary.json").write_text(json.dumps({"task": "t", "n": 6, "metrics": {"acc": {
                "value": k / 6, "ci_low": 0.0, "ci_high": 1.0, "n": 6, "higher_is_better": True, "aggregation": "mean"}}}))
        return 0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "sweep-lora.yaml").read_text())
    cfg["data"]["sources"][0]["path"] = str(ROOT / "configs" / "data" / "smoke.jsonl")
    cfg["compare"] = {"prompts": ["Write add(a, b)."], "max_new_tokens": 4, "top_k": 3}
    cfg["eval"]["bootstrap_resamples"] = 100
    cfg["sweep"]["compare"] = ["base", "final"]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_finished_trials_are_compared_in_the_sweep_report_and_a_rerun_reuses_the_views(config, tmp_path, tiny_qwen2_dir,
                                                                                      tiny_adapter):
    root = tmp_path / "sweep"
    res = run_sweep(config, [], root, Console(quiet=True), launch=TrialMaker(tiny_qwen2_dir, tiny_adapter))
    a, b = (f"{n}:final" for n in NAMES)
    assert res["compare"]["variants"] == ["base", a, b] and res["compare"]["files"]["paired"] == "compare/paired.json"
    gens = json.loads((root / "compare" / "generations.json").read_text())
    assert list(gens["items"][0]["outputs"]) == ["base", a, b] and gens["reference"] == "base"
    paired = json.loads((root / "compare" / "paired.json").read_text())
    rows = {(r["a"], r["b"]): r for r in paired["rows"]}
    assert set(rows) == {("base", a), ("base", b), (a, b)}  # every two, trial against trial too
    assert rows[(a, b)]["mean_a"] == pytest.approx(2 / 6) and rows[(a, b)]["mean_b"] == pytest.approx(5 / 6)
    assert rows[(a, b)]["same_items"] and rows[(a, b)]["test"] == "mcnemar-exact"

    html = (root / "report.html").read_text()
    ids = re.findall(r'<section id="([^"]+)"', html)
    assert ids[0] == "trials" and {"cross", "cross-results", "cross-paired", "cross-generations"} <= set(ids)
    side = html.split('id="cross-generations"')[1].split("</section>")[0]
    assert a in side and b in side
    assert f"{b} vs {a}" in html.split('id="cross-paired"')[1].split("</section>")[0]
    results = html.split('id="cross-results"')[1].split("</section>")[0]
    assert all(x in results for x in ("base", a, b))  # every SFT model in one table

    console = Console(record=True, width=200)
    again = TrialMaker(tiny_qwen2_dir, tiny_adapter)
    run_sweep(config, [], root, console, launch=again)
    assert again.calls == [] and "next-token and generation views are up to date" in console.export_text()


def test_a_trial_that_did_not_finish_is_left_out_and_said_so(config, tmp_path, tiny_qwen2_dir, tiny_adapter):
    root = tmp_path / "sweep"
    res = run_sweep(config, [], root, Console(quiet=True),
                    launch=TrialMaker(tiny_qwen2_dir, tiny_adapter, fail=NAMES[0]))
    assert res["compare"]["variants"] == ["base", f"{NAMES[1]}:final"]
    assert f"not compared, not finished: {NAMES[0]}" in res["compare"]["notes"]
    assert "not finished" in (root / "report.html").read_text().split('id="cross"')[1]


def test_sweep_compare_names_are_checked(config, tmp_path, tiny_qwen2_dir, tiny_adapter):
    with pytest.raises(ConfigError, match="not a trial variant"):
        load_config(config, ["sweep.compare=[final, latest]"])
    with pytest.raises(ConfigError, match="names no trial of this sweep.*did you mean 'lora.r=4,lora.alpha=8'"):
        run_sweep(config, ["sweep.compare=['lora.r=4,lora.alpha=9:final']"], tmp_path, Console(quiet=True),
                  launch=TrialMaker(tiny_qwen2_dir, tiny_adapter))
    # A named trial's variant it does not hold: said in sweep.json and the report, the table kept.
    res = run_sweep(config, ["sweep.compare=['lora.r=4,lora.alpha=8:step-3', final]"], tmp_path / "s",
                    Console(quiet=True), launch=TrialMaker(tiny_qwen2_dir, tiny_adapter))
    assert "step-3" in res["compare"]["error"] and "available: base, final" in res["compare"]["error"]
    assert res["table"] and "comparison across trials failed" in (tmp_path / "s" / "report.html").read_text()
