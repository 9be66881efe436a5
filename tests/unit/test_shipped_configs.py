"""Contract test: every config shipped in configs/ loads (STYLE.md 10)."""

from pathlib import Path

import pytest
import yaml

from tunelab.config import load_config
from tunelab_build.pretrain.config import load_recipe

ROOT = Path(__file__).resolve().parents[2] / "configs"
EXPERIMENTS = sorted(p for p in ROOT.glob("*.yaml"))


def test_there_are_shipped_experiments():
    names = {p.name for p in EXPERIMENTS}
    assert "smoke.yaml" in names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_config_loads(path):
    exp = load_config(path)
    for src in exp.data.sources:
        if src.path:
            assert Path(src.path).is_file(), f"{path.name}: data file {src.path} is missing"


@pytest.mark.parametrize("path", sorted((ROOT / "pretrain").glob("*.yaml")), ids=lambda p: p.name)
def test_pretrain_config_loads(path):
    cfg = load_recipe(path)
    assert cfg.vocab_size >= 8000 and cfg.max_steps > cfg.warmup_steps


@pytest.mark.parametrize("path", sorted((ROOT / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_launch_config_parses(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["distributed_type"] in {"MULTI_GPU", "FSDP", "DEEPSPEED"}
    assert cfg["num_processes"] >= cfg["num_machines"]


STUDIES = sorted((ROOT / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_study_config_loads_as_run_checks_it_real_and_offline(path):
    from tunelab.evaluation.registry import validate_eval_config

    header = path.read_text().split("\nname:")[0]
    assert "Real:" in header and f"tunelab run configs/studies/{path.name} --profile offline" in header.replace(
        "tunelab sweep", "tunelab run"), f"{path.name}: the header must say how to run it, real and offline"
    for overrides in ([], ["profile=offline"]):
        exp = load_config(path, overrides)
        validate_eval_config(exp.eval, runs_tasks=True)
        if overrides:
            assert exp.profile == "offline" and exp.model.name.startswith("builtin:")
            assert all(s.builtin or (s.path and Path(s.path).is_file()) for s in exp.data.sources), (
                f"{path.name}: the offline profile must use built-in or shipped data only")
