"""`tunelab eval` end to end on a tiny trained run: variants x tasks, selection, samples files, opt-in."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelab.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """configs/smoke.yaml trained for 4 steps with checkpoints at 2 and 4."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run = tmp_path_factory.mktemp("eval") / "run"
    res = invoke("train", str(ROOT / "configs" / "smoke.yaml"), "--run-dir", str(run), "--set", "train.max_steps=4",
                 "--set", "train.save_every=2", "--set", "train.eval_every=2", "--set", "train.log_every=2")
    assert res.exit_code == 0, res.output
    assert (run / "checkpoints" / "step-2").is_dir() and (run / "final").is_dir()
    return run


def test_eval_writes_samples_and_summaries_for_every_variant_and_task(run_dir):
    res = invoke("eval", str(run_dir), "--models", "base,step-*,final", "--tasks", "math-word,loss", "--limit", "3",
                 "--set", "eval.max_new_tokens=6")
    assert res.exit_code == 0, res.output
    for variant in ("base", "step-2", "step-4", "final"):
        for task, metric in (("math-word", "accuracy_strict"), ("loss", "loss")):
            out = run_dir / "eval" / variant / task
            records = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
            summary = json.loads((out / "summary.json").read_text())
            assert len(records) == 3 and summary["n"] == 3 and summary["version"]
            m = summary["metrics"][metric]
            assert m["ci_low"] <= m["value"] <= m["ci_high"]
    base_loss = json.loads((run_dir / "eval" / "base" / "loss" / "summary.json").read_text())["metrics"]["loss"]["value"]
    final_loss = json.loads((run_dir / "eval" / "final" / "loss" / "summary.json").read_text())["metrics"]["loss"]["value"]
    assert base_loss != final_loss  # the adapter is applied
    first = (run_dir / "eval" / "final" / "math-word" / "samples.jsonl").read_bytes()
    assert json.loads(first.splitlines()[0])["generations"][0] is not None
    # Rerun: everything comes from the cache; nothing is appended.
    res = invoke("eval", str(run_dir), "--models", "final", "--tasks", "math-word", "--limit", "3",
                 "--set", "eval.max_new_tokens=6")
    assert res.exit_code == 0 and (run_dir / "eval" / "final" / "math-word" / "samples.jsonl").read_bytes() == first


def test_another_run_on_the_same_base_takes_the_base_records_from_the_shared_cache(run_dir, tmp_path):
    other = tmp_path / "other"  # a second run of the same config: same base, no training needed to eval it
    other.mkdir()
    shutil.copy(run_dir / "config.yaml", other / "config.yaml")
    args = ("--models", "base", "--tasks", "math-word", "--limit", "2", "--set", "eval.max_new_tokens=3")
    first = invoke("eval", str(run_dir), *args)
    assert first.exit_code == 0 and "shared cache" not in first.output, first.output
    second = invoke("eval", str(other), *args)
    assert second.exit_code == 0, second.output
    assert "base on math-word: 2 of 2 items from the shared cache" in second.output
    mine, theirs = (sorted((d / "eval" / "base" / "math-word").glob("summary*.json")) for d in (other, run_dir))
    assert len(mine) == 1 and json.loads(mine[0].read_text())["metrics"] == json.loads(
        next(p for p in theirs if p.name == mine[0].name).read_text())["metrics"]
    third = tmp_path / "third"  # the same again with the shared cache off: generated anew
    third.mkdir()
    shutil.copy(run_dir / "config.yaml", third / "config.yaml")
    off = invoke("eval", str(third), *args, "--set", "eval.shared_cache=false")
    assert off.exit_code == 0 and "shared cache" not in off.output, off.output
    assert not any("shared_cache" in r for r in map(json.loads, (third / "eval" / "base" / "math-word" / "samples.jsonl")
                                                     .read_text().splitlines()))


def test_eval_runs_prompting_baselines_as_variants(run_dir):
    res = invoke("eval", str(run_dir), "--models", "base,base+cot,final", "--tasks", "math-word", "--limit", "2",
                 "--set", "eval.max_new_tokens=6")
    assert res.exit_code == 0, res.output
    summary = json.loads((run_dir / "eval" / "base+cot" / "math-word" / "summary.json").read_text())
    assert summary["variant"] == "base+cot" and summary["prompt"]["variant"] == "chain-of-thought"
    record = json.loads((run_dir / "eval" / "base+cot" / "math-word" / "samples.jsonl").read_text().splitlines()[0])
    assert "step by step" in record["prompt"][-1]["content"]


def test_eval_selects_the_best_checkpoint_on_val(run_dir):
    res = invoke("eval", str(run_dir), "--select", "--models", "step-*,final", "--tasks", "similarity", "--limit", "2",
                 "--set", "eval.max_new_tokens=6")
    assert res.exit_code == 0, res.output
    sel = json.loads((run_dir / "eval" / "selection.json").read_text())
    assert sel["selection_split"] == "val" and sel["report_split"] == "test" and sel["metric"] == "chrf"
    assert sel["decision"] in ("best", "no_difference") and sel["carved"] is None  # similarity has its own val
    assert sel["resolved"] in ("step-2", "step-4", "final") and set(sel["report"]) == {sel["resolved"], "base"}
    assert (run_dir / "eval" / sel["resolved"] / "similarity@val" / "summary.json").is_file()
    said = " ".join(res.output.split())
    assert ("best on val by similarity/chrf" in said) if sel["decision"] == "best" else ("no difference on val" in said)


def test_eval_scores_a_samples_file_and_explains_mistakes(tmp_path, run_dir, monkeypatch, capsys):
    from tunelab.evaluation import registry

    task = registry.get_task("math-word")
    rows = [{"task_id": s.id, "completion": f"#### {s.data['final']}"} for s in task.load("test")[:2]]
    rows.append({"task_id": rows[0]["task_id"], "completion": "#### -1"})
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = invoke("eval", "--task", "math-word", "--samples", str(samples), "--output", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    out = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [(r["sample_index"], r["passed"]) for r in out] == [(0, True), (1, False), (0, True)]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["accuracy_strict"]["value"] == pytest.approx(0.75)

    from tunelab.cli import main

    def cli_error(*args: str) -> str:
        monkeypatch.setattr("sys.argv", ["tunelab", *args])
        with pytest.raises(SystemExit) as e:
            main()
        assert e.value.code == 2
        return " ".join(capsys.readouterr().err.split())

    assert "did you mean 'math-word'" in cli_error("eval", str(run_dir), "--tasks", "math-wrod")
    assert "did you mean 'step-2'" in cli_error("eval", str(run_dir), "--tasks", "math-word", "--models", "stepp-2")
    assert "--samples needs --task" in cli_error("eval", "--samples", str(samples))

    @dataclasses.dataclass
    class CodeTask(registry.Task):
        name = "fake-code"
        executes_code = True

    registry.list_tasks()
    monkeypatch.setitem(registry._REGISTRY, "fake-code", CodeTask)
    assert "--allow-code-execution" in cli_error("eval", str(run_dir), "--tasks", "fake-code")


def test_eval_runs_code_tasks_end_to_end_only_when_allowed(run_dir, monkeypatch, capsys):
    args = ["eval", str(run_dir), "--models", "base,final", "--tasks", "humaneval,basic-python", "--limit", "2",
            "--set", "eval.max_new_tokens=8"]
    from tunelab.cli import main

    monkeypatch.setattr("sys.argv", ["tunelab", *args])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2 and "allow-code-execution" in " ".join(capsys.readouterr().err.split())
    assert not (run_dir / "eval" / "final" / "humaneval").exists()

    res = invoke(*args, "--allow-code-execution")
    assert res.exit_code == 0, res.output
    for variant in ("base", "final"):
        for task in ("humaneval", "basic-python"):
            summary = json.loads((run_dir / "eval" / variant / task / "summary.json").read_text())
            assert summary["n"] == 2 and "pass@1" in summary["metrics"]
            assert summary["sandbox"]  # the isolation level reached is recorded
            records = [json.loads(x) for x in (run_dir / "eval" / variant / task / "samples.jsonl").read_text().splitlines()]
            # A random tiny model writes no passing code: every generation has a real verdict.
            verdicts = {s["verdict"] for r in records for s in r["scores"]}
            assert verdicts and verdicts <= {"passed", "failed", "runtime_error", "syntax_error", "timeout",
                                             "memory_limit", "no_code"}
            assert sum(summary["failure_categories"].values()) == 2
