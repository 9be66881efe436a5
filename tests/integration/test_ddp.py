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


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None
                    and shutil.which("torchrun") is None, reason="torchrun not installed")
def test_two_cpu_processes_train_like_one_with_the_global_batch(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "tunelab.cli", "train", str(SMOKE),
         "--run-dir", str(ddp)])
    run([sys.executable, "-m", "tunelab.cli", "train", str(SMOKE), "--run-dir", str(single),
         "--set", "train.batch_size=8"])

    s = json.loads((ddp / "train" / "summary.json").read_text())
    env = json.loads((ddp / "env.json").read_text())
    assert s["world_size"] == 2 and env["world_size"] == 2
    hashes = s["adapter_sha256_per_rank"]
    assert len(hashes) == 2 and hashes[0] == hashes[1], "ranks ended with different weights"
    assert (ddp / "final" / "adapter_model.safetensors").exists()

    # Rank r takes its half of each global batch of 8, so each step sees the same examples as
    # one process with batch_size 8: the curves agree up to float summation order.
    a, b = losses(ddp), losses(single)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-4), key
    assert s["tokens_seen"] == json.loads((single / "train" / "summary.json").read_text())["tokens_seen"]
