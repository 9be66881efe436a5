"""Comparing variants of other runs: every view takes them, each is prompted with its own run's
chat template, labels are readable, paired tests find their results, a bad one is an error, and
a judge from another run is keyed by its weights. Two runs on the tiny base with saved random
adapters (no training: tests/integration/test_sweep_compare_cli.py trains real ones)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from tunelab.compare import run_compare
from tunelab.config import validate_config
from tunelab.errors import ConfigError

QUIET = Console(quiet=True)
ROWS = [{"instruction": f"Write a function f{i}(x) that returns x + {i}.", "output": f"def f{i}(x):\n    return x + {i}\n"}
        for i in range(12)]


def make_run(root: Path, base_dir: Path, data: Path, template: str, seed: int, save_adapter) -> Path:
    root.mkdir(parents=True)
    config = {"name": root.name, "model": {"name": str(base_dir), "device": "cpu"},
              "data": {"sources": [{"path": str(data)}], "chat_template": template, "split": {"val": 0.0, "test": 0.2}},
              "compare": {"prompts": ["Write add(a, b)."], "max_new_tokens": 4, "top_k": 3},
              "eval": {"bootstrap_resamples": 50}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    save_adapter(base_dir, root / "final", seed)
    (root / "train").mkdir()
    (root / "train" / "summary.json").write_text(json.dumps({}))
    return root


def write_eval(run: Path, folder: str, values: list[float], item: str = "same") -> Path:
    """eval/<folder>/t/ as the engine writes it: records with ids, item hashes and values."""
    out = run / "eval" / folder / "t"
    out.mkdir(parents=True)
    (out / "samples.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "item": f"{item}-{i}", "values": {"acc": v}, "generations": ["g"], "scores": [{}]}) + "\n"
        for i, v in enumerate(values)))
    (out / "summary.json").write_text(json.dumps({"task": "t", "n": len(values), "metrics": {"acc": {
        "value": sum(values) / len(values), "higher_is_better": True, "aggregation": "mean"}}}))
    return out


@pytest.fixture
def runs(tmp_path, tiny_qwen2_dir, tiny_adapter):
    """`mine` trained with the plain template, `deep` (another run) with chatml."""
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return (make_run(tmp_path / "mine", tiny_qwen2_dir, data, "plain", 1, tiny_adapter),
            make_run(tmp_path / "deep", tiny_qwen2_dir, data, "chatml", 2, tiny_adapter))


def exp_of(run: Path, variants: list[str]):
    raw = yaml.safe_load((run / "config.yaml").read_text())
    return validate_config({**raw, "compare": {**raw["compare"], "variants": variants}})


def test_a_variant_of_another_run_takes_part_in_every_view_under_a_readable_label(runs):
    """Bug (a): `compare.variants: [final, ../deep:final]` silently left the other run's out."""
    mine, deep = runs
    written = run_compare(mine, exp_of(mine, ["final", f"{deep}:final"]), QUIET)
    nt = json.loads(Path(written["next_token"]).read_text())
    gens = json.loads(Path(written["generations"]).read_text())
    assert nt["variants"] == ["final", "deep:final"] and nt["reference"] == "final"
    assert set(nt["prompts"][0]["top"]) == {"final", "deep:final"} and "deep:final" in nt["prompts"][0]["divergence"]
    assert set(gens["items"][0]["outputs"]) == {"final", "deep:final"}
    tc = json.loads(Path(written["token_classes"]).read_text())
    assert set(tc["by_variant"]) == {"final", "deep:final"}
    assert str(deep) not in Path(written["next_token"]).read_text()  # labels, never paths


def test_each_variant_is_prompted_with_its_own_runs_template(runs):
    """Bug (b): every variant was rendered with this run's template, not the one it trained with."""
    from tunelab.generation import Prompt, TransformersGenerator
    from tunelab.models.ref import ModelRef

    mine, deep = runs
    nt = json.loads(Path(run_compare(mine, exp_of(mine, ["final", f"{deep}:final"]), QUIET)["next_token"]).read_text())
    assert nt["chat_templates"] == {"final": "plain", "deep:final": "chatml"}
    by = nt["prompts"][0]["rendered_by"]
    model, tok, template = ModelRef.parse(f"{deep}:final").load()
    own = TransformersGenerator(model, tok, chat_template=template).render(Prompt(messages=nt["prompts"][0]["messages"]))
    assert by["deep:final"] == own and "<|im_start|>" in own
    assert "<|im_start|>" not in by["final"] and nt["prompts"][0]["rendered"] == by["final"]
    from tunelab.report import write_report

    section = write_report([mine]).read_text().split('id="next-token"')[1].split("</section>")[0]
    assert "rendered prompt as final got it" in section and "rendered prompt as deep:final got it" in section


def test_an_unknown_variant_of_another_run_is_an_error_naming_what_it_has(runs):
    mine, deep = runs
    with pytest.raises(ConfigError, match=r"compare.variants: .*step-7.*available: base, final"):
        run_compare(mine, exp_of(mine, ["final", f"{deep}:step-7"]), QUIET)
    with pytest.raises(ConfigError, match="no run directory"):
        run_compare(mine, exp_of(mine, ["final", f"{deep}-gone:final"]), QUIET)
    clash = deep.parent / "elsewhere" / "deep"
    clash.parent.mkdir()
    clash.symlink_to(deep)  # another folder named deep: one label for two variants
    with pytest.raises(ConfigError, match="both be labelled 'deep:final'"):
        run_compare(mine, exp_of(mine, ["final", f"{deep}:final", f"{clash}:final"]), QUIET)


def test_paired_tests_find_another_runs_results_evaluated_into_this_run_or_in_its_own(runs):
    """Bug (c): paired tests looked up variants by the text written, so results of `deep:final`
    (filed by the engine under that name) were never the reference nor the tuned side."""
    from tunelab.evaluation.variants import variant_folder

    mine, deep = runs
    exp = exp_of(mine, [f"{deep}:final", "final"])
    assert variant_folder(f"{deep}:final", mine, exp) == "deep:final"  # how the engine files it
    write_eval(mine, "deep:final", [1, 1, 1, 0, 1, 1, 1, 1])
    write_eval(mine, "final", [0, 0, 1, 0, 0, 0, 1, 0])
    paired = json.loads(Path(run_compare(mine, exp, QUIET)["paired"]).read_text())
    assert paired["reference"] == "deep:final" and paired["tuned"] == "final"
    row = next(r for r in paired["rows"] if (r["a"], r["b"]) == ("deep:final", "final"))
    assert row["test"] == "mcnemar-exact" and row["n"] == 8 and row["same_items"]

    # Not evaluated into this run: the results its own run holds are paired (and said so).
    other = exp_of(mine, ["final", f"{deep}:final"])
    import shutil

    shutil.rmtree(mine / "eval" / "deep:final")
    write_eval(deep, "final", [1, 1, 1, 1, 1, 1, 1, 0])
    paired = json.loads(Path(run_compare(mine, other, QUIET)["paired"]).read_text())
    row = next(r for r in paired["rows"] if (r["a"], r["b"]) == ("final", "deep:final"))
    assert row["mean_b"] == pytest.approx(7 / 8)
    assert any("deep:final: eval results from its own run" in n for n in paired["notes"])
    assert paired["folders"]["deep:final"]["t"] == str(Path("..") / "deep" / "eval" / "final" / "t")
    from tunelab.report import write_report

    results = write_report([mine]).read_text().split('id="results"')[1].split("</section>")[0]
    assert "deep:final" in results  # the report reads the other run's results from where they are


def test_a_judge_from_another_run_is_keyed_by_its_weights_and_prompted_with_its_template(runs, tiny_qwen2_dir,
                                                                                        tiny_adapter):
    """Bug (d): `eval.judge.model: OTHER:final` was identified by its text, so a retrained
    judge reused the cached judge scores."""
    from tunelab.config import EvalConfig
    from tunelab.evaluation.context import make_judge

    mine, deep = runs
    exp = exp_of(mine, ["base", "final"])
    cfg = EvalConfig(judge={"model": f"{deep}:final"})
    judge, first = make_judge(cfg, mine, exp)
    assert first.startswith("model:adapter:") and str(deep) not in first
    tiny_adapter(tiny_qwen2_dir, deep / "final", 3)  # the other run retrained
    _, second = make_judge(cfg, mine, exp)
    assert second != first
    assert judge._build().template == "chatml"  # deep's template, not mine's plain
