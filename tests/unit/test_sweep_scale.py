"""Sweeps side by side and searched, without training: device and core slots, concurrent trials,
and an Optuna study (objectives, pruning through the stop file, resume) with a fake launcher that
writes the files a trial writes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tunelab.config import SweepConfig, load_config
from tunelab.errors import ConfigError
from tunelab.sweep import run_sweep
from tunelab.sweep.executors import local_slots

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "configs" / "sweep-lora.yaml"
OPTUNA = ROOT / "configs" / "sweep-optuna.yaml"


def _env(slot) -> dict:
    return slot.launch.keywords["env"]


def test_cpu_cores_are_split_between_concurrent_trials():
    slots = local_slots(SweepConfig(max_concurrent=2), 4, gpus=[], cores=[0, 1, 2, 3])
    assert [s.launch.keywords["cpus"] for s in slots] == [[0, 1], [2, 3]]
    assert all(_env(s)["OMP_NUM_THREADS"] == "2" for s in slots)
    one = local_slots(SweepConfig(), 4, gpus=[], cores=[0, 1])  # default: serial, every core
    assert len(one) == 1 and one[0].launch.keywords["cpus"] is None and _env(one[0])["OMP_NUM_THREADS"] == "2"
    assert len(local_slots(SweepConfig(max_concurrent=8), 2, gpus=[], cores=[0, 1])) == 2  # no more than trials


def test_each_trial_gets_its_own_gpus():
    gpus = [str(i) for i in range(8)]
    assert [_env(s)["CUDA_VISIBLE_DEVICES"] for s in local_slots(SweepConfig(), 10, gpus=gpus, cores=[0])] == gpus
    two = local_slots(SweepConfig(gpus_per_trial=2, max_concurrent=3), 10, gpus=gpus[:4] + ["6", "7"], cores=[0])
    assert [_env(s)["CUDA_VISIBLE_DEVICES"] for s in two] == ["0,1", "2,3", "6,7"]
    cpu_only = local_slots(SweepConfig(gpus_per_trial=0), 2, gpus=gpus, cores=[0])
    assert _env(cpu_only[0])["CUDA_VISIBLE_DEVICES"] == ""
    with pytest.raises(ConfigError, match="gpus_per_trial"):
        local_slots(SweepConfig(gpus_per_trial=4), 2, gpus=["0"], cores=[0])


def test_optuna_config_is_checked():
    with pytest.raises(ConfigError, match="direction"):
        load_config(OPTUNA, ["sweep.optuna.objectives=[{metric: loss/loss}]"])
    with pytest.raises(ConfigError, match="sweep.zip"):
        load_config(OPTUNA, ["sweep.zip={lora.r: [4]}"])
    with pytest.raises(ConfigError, match="low must be below high"):
        load_config(OPTUNA, ["sweep.optuna.space={train.lr: {low: 1, high: 0}}"])


class StepLauncher:
    """A fake `tunelab run` that logs a val row every 10 steps (loss falls with the lr; lr 0
    stays at the base loss), waits between rows, and stops when the sweep writes its stop file."""

    def __init__(self, pause: float = 0.0) -> None:
        self.calls, self.pause, self.active, self.most = [], pause, 0, 0
        self.lock = threading.Lock()

    def __call__(self, cmd, log: Path, on_start) -> int:
        run = Path(cmd[cmd.index("--run-dir") + 1])
        sets = dict(s.split("=", 1) for s in (cmd[i + 1] for i, c in enumerate(cmd) if c == "--set"))
        lr = float(sets.get("train.lr", 0.001))
        with self.lock:
            self.calls.append(run.name)
            self.active += 1
            self.most = max(self.most, self.active)
        on_start(4242)
        try:
            (run / "train").mkdir(exist_ok=True)
            metrics = run / "train" / "metrics.jsonl"
            metrics.write_text("")
            for step in (0, 10, 20, 30):
                loss = 3.0 - 100 * lr * step / 10
                with open(metrics, "a") as f:
                    f.write(json.dumps({"step": step, "split": "val", "loss": loss}) + "\n")
                deadline = time.time() + max(self.pause, 0.01)
                while time.time() < deadline:
                    if (run / "stop").exists():
                        return -15
                    time.sleep(0.02)
            (run / "config.yaml").write_text("name: t\n")
            (run / "train" / "summary.json").write_text(json.dumps(
                {"trainable_params": 1000, "wall_time_s": 5.0, "best_val_loss": loss, "world_size": 1}))
            return 0
        finally:
            with self.lock:
                self.active -= 1


def test_two_trials_run_at_once(tmp_path):
    launcher = StepLauncher(pause=0.3)
    res = run_sweep(SWEEP, ["sweep.max_concurrent=2"], tmp_path, launch=launcher)
    assert launcher.most == 2 and sorted(launcher.calls) == sorted(t["name"] for t in res["trials"])
    assert [t["status"] for t in res["trials"]] == ["done", "done"]
    assert [t["why"] for t in res["trials"]] == ["finished", "finished"]


def test_optuna_prunes_the_trial_that_falls_behind_and_resumes_the_study(tmp_path):
    pytest.importorskip("optuna")
    launcher = StepLauncher(pause=0.6)  # the watcher looks every 0.25 s
    res = run_sweep(OPTUNA, [], tmp_path, launch=launcher)
    by_lr = {t["values"]["train.lr"]: t for t in res["trials"]}
    assert set(by_lr) == {0.001, 1e-7} and len(launcher.calls) == 2
    assert by_lr[0.001]["status"] == "done" and by_lr[1e-7]["status"] == "pruned"
    assert "fell behind" in by_lr[1e-7]["why"] and "step 10" in by_lr[1e-7]["why"]
    pruned = json.loads((tmp_path / "trials" / by_lr[1e-7]["name"] / "trial.json").read_text())
    assert pruned["status"] == "pruned" and pruned["returncode"] == -15
    rows = [json.loads(x) for x in (tmp_path / "trials" / by_lr[1e-7]["name"] / "train" / "metrics.jsonl").open()]
    assert max(r["step"] for r in rows) < 30  # stopped before its last step
    assert res["search"]["method"] == "optuna" and res["search"]["best"] == [by_lr[0.001]["name"]]
    html = (tmp_path / "report.html").read_text()
    assert "Searched with Optuna" in html and "pruned" in html and "fell behind" in html

    again = StepLauncher()
    res2 = run_sweep(OPTUNA, [], tmp_path, launch=again)  # the study is complete: nothing runs
    assert again.calls == [] and [t["status"] for t in res2["trials"]] == [t["status"] for t in res["trials"]]
    more = StepLauncher()
    res3 = run_sweep(OPTUNA, ["sweep.optuna.n_trials=3"], tmp_path, launch=more)
    assert len(more.calls) == 1 and len(res3["trials"]) == 3


def test_an_optuna_trial_that_crashed_is_retried_in_its_folder(tmp_path):
    pytest.importorskip("optuna")

    class Crash(StepLauncher):
        def __call__(self, cmd, log, on_start):
            on_start(1)
            self.calls.append(Path(cmd[cmd.index("--run-dir") + 1]).name)
            return -9

    res = run_sweep(OPTUNA, ["sweep.optuna.pruner=none", "sweep.optuna.n_trials=1"], tmp_path, launch=Crash())
    assert [t["status"] for t in res["trials"]] == ["failed"] and "SIGKILL" in res["trials"][0]["why"]
    again = StepLauncher()
    res = run_sweep(OPTUNA, ["sweep.optuna.pruner=none", "sweep.optuna.n_trials=1"], tmp_path, launch=again)
    assert again.calls == [res["trials"][0]["name"]] and res["trials"][0]["status"] == "done"
    state = json.loads((tmp_path / "trials" / again.calls[0] / "trial.json").read_text())
    assert state["attempts"] == 2
