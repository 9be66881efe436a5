"""Sweeps without training: trial expansion and names, Pareto fronts, and the runner's
bookkeeping (skip finished, survive a failed or killed trial, never overwrite) with a fake launcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config import SweepConfig, load_config
from tunelab.errors import ConfigError, TunelabError
from tunelab.sweep import expand_trials, run_sweep, trial_name
from tunelab.tradeoff import pareto_front, pareto_points

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "configs" / "sweep-lora.yaml"


def test_grid_zip_and_seeds_expand_to_named_overrides():
    cfg = SweepConfig(grid={"train.lr": [1e-3, 5e-4]}, zip={"lora.r": [4, 16], "lora.alpha": [8, 32]}, seeds=[0, 1])
    trials = expand_trials(cfg)
    assert len(trials) == 2 * 2 * 2
    assert trials[0].overrides == ("train.lr=0.001", "lora.r=4", "lora.alpha=8", "seed=0")
    assert len({t.name for t in trials}) == 8
    exp = load_config(SWEEP, list(trials[-1].overrides))
    assert (exp.train.lr, exp.lora.r, exp.lora.alpha, exp.seed) == (5e-4, 16, 32, 1)


def test_any_key_sweeps_lists_and_indices_included():
    cfg = SweepConfig(grid={"lora.target_modules": [["q_proj", "v_proj"], "all-linear"],
                            "data.sources.0.weight": [1, 2]})
    trials = expand_trials(cfg)
    exp = load_config(SWEEP, list(trials[0].overrides))
    assert exp.lora.target_modules == ["q_proj", "v_proj"] and exp.data.sources[0].weight == 1
    assert load_config(SWEEP, list(trials[-1].overrides)).data.sources[0].weight == 2
    assert all("/" not in t.name and " " not in t.name and len(t.name) <= 80 for t in trials)


def test_trial_names_are_stable_and_filesystem_safe():
    assert trial_name({"lora.r": 4, "seed": 0}) == "lora.r=4,seed=0"
    odd = trial_name({"data.sources": [{"builtin": "a/b c"}]})
    assert odd == trial_name({"data.sources": [{"builtin": "a/b c"}]}) and "/" not in odd
    assert trial_name({"k": "x" * 200}) != trial_name({"k": "x" * 199})


def test_labels_name_trials_whose_values_are_whole_data_source_lists():
    deep, diverse = [{"builtin": "compose-deep"}], [{"builtin": "compose-diverse"}]
    cfg = SweepConfig(grid={"data.sources": [deep, diverse]}, labels={"data.sources": ["deep", "diverse"]})
    trials = expand_trials(cfg)
    assert [t.name for t in trials] == ["deep", "diverse"]
    # The overrides still carry the whole list, and a trial loads as its own run would.
    assert load_config(SWEEP, list(trials[1].overrides)).data.sources[0].builtin == "compose-diverse"
    unlabelled = expand_trials(SweepConfig(grid={"data.sources": [deep, diverse]}))
    assert all(t.name.startswith("data.sources=") and len(t.name) > 20 for t in unlabelled)
    # A label on one zip key names the whole (r, alpha) element; grid and seeds keep key=value.
    cfg = SweepConfig(grid={"data.sources": [deep, diverse]}, zip={"lora.r": [4, 64], "lora.alpha": [8, 128]},
                      labels={"data.sources": ["deep", "diverse"], "lora.r": ["r4", "r64"]}, seeds=[0])
    assert [t.name for t in expand_trials(cfg)] == ["deep,r4,seed=0", "deep,r64,seed=0", "diverse,r4,seed=0",
                                                    "diverse,r64,seed=0"]
    assert expand_trials(cfg)[1].overrides[1:] == ("lora.r=64", "lora.alpha=128", "seed=0")
    # Zip elements are labelled by position: two may share the labelled key's value.
    cfg = SweepConfig(zip={"lora.r": [8, 8], "lora.alpha": [16, 32]}, labels={"lora.r": ["a16", "a32"]})
    assert [t.name for t in expand_trials(cfg)] == ["a16", "a32"]
    # Without labels the names are what they always were.
    cfg = SweepConfig(grid={"train.lr": [1e-3]}, zip={"lora.r": [4], "lora.alpha": [8]}, seeds=[1])
    assert expand_trials(cfg)[0].name == "train.lr=0.001,lora.r=4,lora.alpha=8,seed=1"


@pytest.mark.parametrize("labels, message", [
    ({"lora.rr": ["a", "b"]}, r"not a key of sweep.grid or sweep.zip \(did you mean 'lora.r'\?\)"),
    ({"lora.r": ["a"]}, "1 label.s. for 2 value.s."),
    ({"lora.r": ["a b", "c"]}, "'a b' is not a folder name"),
    ({"lora.r": ["a", "a"]}, "a label is used twice"),
])
def test_labels_are_checked(labels, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SWEEP, ["sweep.zip={}", "sweep.grid={lora.r: [4, 8]}", f"sweep.labels={json.dumps(labels)}"])


def test_sweep_config_is_checked():
    with pytest.raises(ConfigError, match="same length"):
        load_config(SWEEP, ["sweep.zip={lora.r: [4, 8], lora.alpha: [8]}"])
    with pytest.raises(ConfigError, match="both"):
        load_config(SWEEP, ["sweep.grid={lora.r: [4]}"])


def test_pareto_front():
    assert pareto_front([(1, 0.5), (2, 0.7), (3, 0.6), (2, 0.7)], True) == [True, True, False, True]
    assert pareto_front([(1, 3.0), (2, 2.0), (3, 2.5)], False) == [True, True, False]
    rows = [{"name": "a", "wall_time_s": 1.0, "scores": {}, "best_val_loss": 2.0},
            {"name": "b", "wall_time_s": 2.0, "scores": {}, "best_val_loss": 1.0}]
    p = pareto_points(rows, None, "wall_time_s")
    assert p["metric"] == "best_val_loss" and not p["higher_is_better"] and all(x["front"] for x in p["points"])


def test_pareto_front_over_several_optuna_objectives_not_only_the_plotted_two():
    # c is dominated in the plotted plane (pass@1 vs seconds) by a, but it uses the least memory:
    # over the three objectives of the search it is on the front, and the plot's caption says why.
    from tunelab.report.sections_sweep import pareto_section

    def row(name, score, secs, mem):
        return {"name": name, "device_seconds": secs, "peak_memory_mb": mem, "best_val_loss": 1.0,
                "scores": {"t/pass@1": {"value": score, "higher_is_better": True}}}

    rows = [row("a", 0.8, 10.0, 500.0), row("b", 0.5, 20.0, 600.0), row("c", 0.7, 12.0, 100.0)]
    plane = pareto_points(rows, "t/pass@1", "device_seconds")
    assert [x["front"] for x in plane["points"]] == [True, False, False]
    objectives = [("t/pass@1", "maximize"), ("device_seconds", "minimize"), ("peak_memory_mb", "minimize")]
    p = pareto_points(rows, "t/pass@1", "device_seconds", objectives)
    assert [x["front"] for x in p["points"]] == [True, False, True] and len(p["objectives"]) == 3
    caption = pareto_section(p, "pareto", "s-").blocks[0].caption
    assert "front over the search's objectives, t/pass@1 (maximize), device_seconds (minimize)" in caption


class FakeLauncher:
    """Stands in for `tunelab run`: writes the files a finished trial has, or fails as told."""

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.fail, self.calls = dict(fail or {}), []

    def __call__(self, cmd: list[str], log: Path, on_start) -> int:
        run = Path(cmd[cmd.index("--run-dir") + 1])
        sets = [cmd[i + 1] for i, c in enumerate(cmd) if c == "--set"]
        self.calls.append(run.name)
        on_start(12345)
        assert json.loads((run / "trial.json").read_text())["pid"] == 12345
        rc = self.fail.pop(run.name, 0)
        if rc:
            return rc
        r = int(next(s for s in sets if s.startswith("lora.r=")).split("=")[1])
        (run / "train").mkdir(exist_ok=True)
        (run / "config.yaml").write_text("name: t\n")
        (run / "train" / "summary.json").write_text(json.dumps(
            {"trainable_params": 1024 * r, "total_params": 10**6, "wall_time_s": 10.0 + r, "peak_memory_mb": 500.0,
             "tokens_per_s": 1000.0, "best_val_loss": 3.0 - r / 10, "world_size": 1, "steps": 20,
             "cpu_time_s": 5.0 + r, "device_time_s": None, "tokens_seen": 4000}))
        (run / "train" / "metrics.jsonl").write_text(json.dumps(
            {"step": 20, "split": "val", "loss": 3.0 - r / 10, "per_source": {"a": {"loss": 3.1}, "b": {"loss": 2.9}}}) + "\n")
        ev = run / "eval" / "final" / "loss"
        ev.mkdir(parents=True)
        (ev / "summary.json").write_text(json.dumps({"metrics": {"loss": {
            "value": 3.0 - r / 10, "ci_low": 2.9 - r / 10, "ci_high": 3.1 - r / 10, "higher_is_better": False}}}))
        return 0


def test_a_killed_trial_does_not_stop_the_sweep_and_resumes_on_rerun(tmp_path):
    first = FakeLauncher(fail={"lora.r=4,lora.alpha=8": -9})
    res = run_sweep(SWEEP, [], tmp_path, launch=first)
    assert first.calls == ["lora.r=4,lora.alpha=8", "lora.r=16,lora.alpha=32"]
    assert [t["status"] for t in res["trials"]] == ["failed", "done"]
    killed = json.loads((tmp_path / "trials" / "lora.r=4,lora.alpha=8" / "trial.json").read_text())
    assert killed["error"] == "killed by SIGKILL" and killed["returncode"] == -9
    done = {r["name"]: r for r in res["table"]}["lora.r=16,lora.alpha=32"]
    assert done["trainable_params"] == 16384 and done["scores"]["loss/loss"]["value"] == pytest.approx(1.4)
    assert done["per_source_loss"] == {"val: a": 3.1, "val: b": 2.9}
    assert done["cost"] == pytest.approx(26.0 / 3600 * 0.10)
    # The load-independent costs beside the wall time; the default cost axis is one of them.
    assert done["cpu_seconds"] == done["device_seconds"] == 21.0 and done["train_tokens"] == 4000
    assert res["pareto"]["cost"] == "device_seconds" and "cost_asked" not in res["pareto"]
    assert (tmp_path / "report.html").is_file() and (tmp_path / "sweep.json").is_file()

    again = FakeLauncher()
    res = run_sweep(SWEEP, [], tmp_path, launch=again)
    assert again.calls == ["lora.r=4,lora.alpha=8"]  # the finished trial is skipped
    assert [t["status"] for t in res["trials"]] == ["done", "done"]
    assert json.loads((tmp_path / "trials" / "lora.r=4,lora.alpha=8" / "trial.json").read_text())["attempts"] == 2
    assert sum(p["front"] for p in res["pareto"]["points"]) >= 1
    html = (tmp_path / "report.html").read_text()
    assert 'id="tradeoff"' in html and 'id="pareto"' in html and "loss val: a" in html


def test_an_invalid_trial_fails_fast_and_others_run(tmp_path):
    launcher = FakeLauncher()
    res = run_sweep(SWEEP, ["sweep.zip={lora.r: [0, 4], lora.alpha: [8, 8]}"], tmp_path, launch=launcher)
    assert launcher.calls == ["lora.r=4,lora.alpha=8"]
    bad = json.loads((tmp_path / "trials" / "lora.r=0,lora.alpha=8" / "trial.json").read_text())
    assert bad["status"] == "failed" and "lora.r" in bad["error"]
    assert [t["status"] for t in res["trials"]] == ["failed", "done"]


def test_a_trial_folder_of_other_overrides_is_never_overwritten(tmp_path):
    folder = tmp_path / "trials" / "lora.r=4,lora.alpha=8"
    folder.mkdir(parents=True)
    (folder / "trial.json").write_text(json.dumps({"overrides": ["something=else"], "status": "done"}))
    with pytest.raises(TunelabError, match="refusing to overwrite"):
        run_sweep(SWEEP, [], tmp_path, launch=FakeLauncher())


def test_an_empty_sweep_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        run_sweep(SWEEP, ["sweep.zip={}"], tmp_path, launch=FakeLauncher())


def test_a_trial_still_running_is_left_alone_and_a_dead_one_is_resumed(tmp_path):
    import os
    import subprocess
    import sys
    import time

    folder = tmp_path / "trials" / "lora.r=4,lora.alpha=8"
    folder.mkdir(parents=True)
    overrides = ["lora.r=4", "lora.alpha=8"]
    # A live process whose command line names the trial folder: the trial's own `tunelab run`.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(folder)])
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    for _ in range(100):  # until the child has exec'd (its command line is empty before)
        if not cmdline.exists() or cmdline.read_bytes():
            break
        time.sleep(0.02)
    try:
        (folder / "trial.json").write_text(json.dumps({"overrides": overrides, "status": "running", "pid": proc.pid}))
        launcher = FakeLauncher()
        res = run_sweep(SWEEP, [], tmp_path, launch=launcher)
        assert launcher.calls == ["lora.r=16,lora.alpha=32"]
        assert [t["status"] for t in res["trials"]] == ["running", "done"]
    finally:
        proc.kill()
        proc.wait()
    # The number now belongs to another process (this one): the trial is not running any more.
    (folder / "trial.json").write_text(json.dumps({"overrides": overrides, "status": "running", "pid": os.getpid()}))
    launcher = FakeLauncher()
    run_sweep(SWEEP, [], tmp_path, launch=launcher)
    assert launcher.calls == ["lora.r=4,lora.alpha=8"]
