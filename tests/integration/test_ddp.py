"""The same loop as 2 CPU processes under torchrun (gloo): really 2 ranks, identical weights on
both, and the same training as one process with the doubled batch (loss normalised by the
global token count, not per rank)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"


def run(cmd: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def losses(run_dir: Path) -> dict[tuple[int, str], float]:
    rows = [json.loads(line) for line in (run_dir / "train" / "metrics.jsonl").read_text().splitlines()]
    return {(r["step"], r["split"]): r["loss"] for r in rows}


TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
# Checkpoints at steps 3, 6, ... fall between log lines (every 5): resuming from one must
# carry the half-summed log window over correctly across ranks.
ARGS = ["--set", "train.save_every=3", "--set", "train.keep_last=null"]
pytestmark = pytest.mark.skipif(TORCHRUN is None, reason="torchrun not installed")


def torchrun(run_dir: Path, *extra: str) -> None:
    run([TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "tunelab.cli", "train", str(SMOKE),
         "--run-dir", str(run_dir), *ARGS, *extra])


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    torchrun(run_dir)
    return run_dir


def test_two_cpu_processes_train_like_one_with_the_global_batch(ddp_run, tmp_path):
    single = tmp_path / "single"
    run([sys.executable, "-m", "tunelab.cli", "train", str(SMOKE), "--run-dir", str(single), *ARGS,
         "--set", "train.batch_size=8"])

    s = json.loads((ddp_run / "train" / "summary.json").read_text())
    env = json.loads((ddp_run / "env.json").read_text())
    assert s["world_size"] == 2 and env["world_size"] == 2
    hashes = s["adapter_sha256_per_rank"]
    assert len(hashes) == 2 and hashes[0] == hashes[1], "ranks ended with different weights"
    assert (ddp_run / "final" / "adapter_model.safetensors").exists()

    # Rank r takes its half of each global batch of 8, so each step sees the same examples as
    # one process with batch_size 8: the curves agree up to float summation order.
    a, b = losses(ddp_run), losses(single)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-4), key
    assert s["tokens_seen"] == json.loads((single / "train" / "summary.json").read_text())["tokens_seen"]


def test_two_process_resume_from_a_checkpoint_between_log_lines(ddp_run, tmp_path):
    run_dir = tmp_path / "resumed"
    shutil.copytree(ddp_run, run_dir)
    for p in (run_dir / "checkpoints").iterdir():
        if int(p.name.split("-")[1]) > 3:
            shutil.rmtree(p)
    shutil.rmtree(run_dir / "final")
    (run_dir / "train" / "summary.json").unlink()
    torchrun(run_dir, "--resume")
    assert losses(run_dir) == losses(ddp_run)
