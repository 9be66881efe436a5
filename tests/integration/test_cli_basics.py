"""The real CLI, end to end, for the commands around training: config, data, models, generate.

Each user mistake must come out as one readable message (exit code 2, no traceback).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def tunelab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "tunelab.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def experiment(tmp_path: Path, rows: list[dict] | str, **overrides) -> Path:
    data = tmp_path / "train.jsonl"
    data.write_text(rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"name": "cli", "model": {"name": "builtin:tiny-random-qwen2"},
           "data": {"sources": [{"path": "train.jsonl"}], "max_seq_len": 64}, **overrides}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


ROWS = [{"instruction": f"Write a function that returns {i}.", "input": "", "output": f"def f():\n    return {i}\n"}
        for i in range(20)]


def test_config_show_prints_resolved_config_with_overrides(tmp_path):
    r = tunelab("config", "show", str(experiment(tmp_path, ROWS)), "--set", "train.lr=3e-4")
    assert r.returncode == 0, r.stderr
    shown = yaml.safe_load(r.stdout)
    assert shown["train"]["lr"] == pytest.approx(3e-4)
    assert shown["lora"]["r"] == 16  # default filled in


def test_bad_config_is_one_message_naming_key_and_suggestion(tmp_path):
    cfg = experiment(tmp_path, ROWS, train={"lerning_rate": 1e-4})
    r = tunelab("config", "show", str(cfg))
    assert r.returncode == 2
    assert "train.lerning_rate: unknown key" in r.stderr and "Traceback" not in r.stderr
    r = tunelab("train", str(cfg), "--set", "lora.rank=4")
    assert r.returncode == 2 and "did you mean 'r'" in r.stderr and "Traceback" not in r.stderr


def test_data_validate_lists_every_bad_row_with_file_and_line(tmp_path):
    text = "".join(json.dumps(r) + "\n" for r in ROWS[:3]) + "{not json\n" + json.dumps({"instruction": "x"}) + "\n"
    r = tunelab("data", "validate", str(experiment(tmp_path, text)))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "train.jsonl:4" in r.stderr and "train.jsonl:5" in r.stderr
    assert "output" in r.stderr


def test_data_validate_accepts_good_data_and_reports_missing_file(tmp_path):
    r = tunelab("data", "validate", str(experiment(tmp_path, ROWS)))
    assert r.returncode == 0 and "data OK" in r.stdout
    cfg = experiment(tmp_path, ROWS)
    (tmp_path / "train.jsonl").unlink()
    r = tunelab("data", "validate", str(cfg))
    assert r.returncode == 2 and "train.jsonl" in r.stderr and "Traceback" not in r.stderr


def test_data_inspect_shows_counts_and_label_mask(tmp_path):
    r = tunelab("data", "inspect", str(experiment(tmp_path, ROWS)), "-n", "1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "train" in out and "val" in out
    assert "return" in out  # the preview shows the example's tokens
    assert "loss" in out.lower()


def test_models_lists_builtin_models():
    r = tunelab("models")
    assert r.returncode == 0, r.stderr
    assert "tiny-code" in r.stdout and "tiny-random-qwen2" in r.stdout


def test_generate_from_a_builtin_model_is_greedy_and_deterministic():
    args = ("generate", "--model", "builtin:tiny-random-qwen2", "--prompt", "def add(a, b):", "--max-new-tokens", "8")
    a, b = tunelab(*args), tunelab(*args)
    assert a.returncode == 0, a.stderr
    assert a.stdout.startswith("def add(a, b):") and len(a.stdout.strip()) > len("def add(a, b):")
    assert a.stdout == b.stdout


def test_generate_unknown_builtin_is_a_clear_error():
    r = tunelab("generate", "--model", "builtin:tiny-cod", "--prompt", "x")
    assert r.returncode == 2 and "tiny-code" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # trains a run first (~20 s); test_chat_cli checks run variants in their training template
def test_generate_chat_from_a_run_variant_answers_without_template_tokens(tmp_path):
    run = tmp_path / "run"
    r = tunelab("train", str(ROOT / "configs" / "smoke.yaml"), "--run-dir", str(run), "--set", "train.max_steps=2",
                "--set", "train.eval_every=2", "--set", "train.save_every=2")
    assert r.returncode == 0, r.stderr
    args = ("generate", "--run-dir", str(run), "--model", "final", "--chat", "--prompt", "Write hello world.",
            "--max-new-tokens", "6")
    a, b = tunelab(*args), tunelab(*args)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and "<|im_start|>" not in a.stdout and "Write hello world." not in a.stdout
    r = tunelab("generate", "--run-dir", str(run), "--model", "step-3", "--prompt", "x")
    assert r.returncode == 2 and "step-2" in r.stderr


def test_task_typos_and_missing_code_opt_in_fail_before_any_work(tmp_path):
    cfg = experiment(tmp_path, ROWS)
    r = tunelab("config", "show", str(cfg), "--set", "eval.tasks=[humanevl]")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "eval.tasks" in r.stderr and "humanevl" in r.stderr and "did you mean 'humaneval'" in r.stderr
    r = tunelab("config", "show", str(cfg), "--set", "eval.tasks=[humaneval]", "--set", "eval.task_options.humaneval.n_samples=2")
    assert r.returncode == 2 and "eval.task_options.humaneval.n_samples" in r.stderr and "its options:" in r.stderr
    run_dir = tmp_path / "run"
    r = tunelab("run", str(cfg), "--set", "eval.tasks=[humaneval]", "--set", "train.max_steps=1",
                "--run-dir", str(run_dir))
    assert r.returncode == 2 and "allow-code-execution" in r.stderr and "Traceback" not in r.stderr
    assert not run_dir.exists()  # failed before the data stage, let alone training
