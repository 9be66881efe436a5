"""Checkpoint selection: never on training items, a carved val split for tasks without one (kept
out of training), and "no difference" instead of a best where the paired tests see none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config import EvalConfig, SelectionConfig, validate_config
from tunelab.data.mixing import build_splits
from tunelab.errors import ConfigError
from tunelab.evaluation import registry
from tunelab.evaluation.holdout import CarvedTask, carve, selection_task
from tunelab.evaluation.selection import decide, select_checkpoint, training_holdout
from tunelab.evaluation.task import EvalError, PromptOptions
from tunelab.runs import read_json

# The run's training data is unrelated to math-word: the carved items are not training rows.
EXP = validate_config({"model": {"name": "builtin:tiny-random-qwen2"},
                       "data": {"sources": [{"builtin": "stdlib-instruct"}]}})
# This run trained on math-word's train split: carved math-word items are training rows.
ON_MATH = validate_config({"model": {"name": "builtin:tiny-random-qwen2"},
                           "data": {"sources": [{"builtin": "math-word"}]}})
_FINAL = {}


def final_of(question: str) -> int:
    if not _FINAL:
        task = registry.get_task("math-word")
        _FINAL.update({s.data["question"]: s.data["final"] for split in ("train", "test") for s in task.load(split)})
    return _FINAL[question]


class Session:
    """Answers math-word questions: right when (answer % 100) / 100 < its skill."""

    def __init__(self, ref: str, skills: dict[str, float]):
        self.ref, self.backend, self.identity, self.skill = ref, "fake", f"fake:{ref}", skills.get(ref, 0.0)

    def generator(self):
        return self

    def generate(self, prompts, settings):
        out = []
        for p in prompts:
            want = final_of(p.messages[-1]["content"])
            out.append([f"#### {want if (int(want) % 100) / 100 < self.skill else int(want) + 1}"] * settings.n)
        return out

    def close(self):
        pass


def make_run(tmp_path: Path, steps=(10, 20)) -> Path:
    run = tmp_path / "run"
    for d in [run / "final", *(run / "checkpoints" / f"step-{s}" for s in steps)]:
        d.mkdir(parents=True, exist_ok=True)
        (d / "adapter_config.json").write_text("{}")
    return run


def select(run, exp, skills, **sel):
    cfg = EvalConfig(tasks=["math-word"], models=["base", "step-*", "final"], limit=16,
                     selection=SelectionConfig(**sel))
    return select_checkpoint(run, exp, cfg, session_factory=lambda ref: Session(ref, skills), run_eval=cfg)


def test_the_carve_is_seeded_recorded_and_leaves_the_train_split_without_it():
    task = selection_task(registry.get_task("basic-python"), SelectionConfig(), seed=0)
    assert isinstance(task, CarvedTask) and "val" in task.splits
    train = [s.id for s in registry.get_task("basic-python").load("train")]
    val = [s.id for s in task.load("val")]
    assert len(val) == round(0.25 * len(train)) == len(task.carved.ids) and set(val) <= set(train)
    assert val == [i for i in train if i in set(val)]  # in the task's order
    assert {s.id for s in task.load("train")} == set(train) - set(val)
    assert task.load("test") == registry.get_task("basic-python").load("test")
    rec = task.carved.record()
    assert rec["seed"] == 0 and rec["ids"] == val and rec["carved_from"] == "train" and "sha256" in rec["rule"]
    # the same seed, the same items; another seed, others
    assert carve("basic-python", train, 0, 0.25) == tuple(val)
    assert carve("basic-python", train, 1, 0.25) != tuple(val)
    # a task with its own val split keeps it
    compose = registry.get_task("compose")
    assert selection_task(compose, SelectionConfig(), 0) is compose


def test_few_shot_examples_of_a_carved_task_are_never_carved_items():
    task = selection_task(registry.get_task("math-word"), SelectionConfig(carve_fraction=0.5), seed=3)
    shots = task.fewshot(PromptOptions(variant="few-shot", num_fewshot=8))
    assert len(shots) == 8 and not {s.id for s in shots} & set(task.carved.ids)


def test_a_task_with_nothing_to_carve_from_is_refused_naming_its_splits_and_the_fix():
    with pytest.raises(EvalError, match=r"task 'humaneval'.*no train split.*its splits: test.*eval.selection.task"):
        selection_task(registry.get_task("humaneval"), SelectionConfig(), 0)


def test_choosing_on_training_items_is_refused_unless_opted_in(tmp_path):
    with pytest.raises(ConfigError, match=r"eval.selection.split is 'train'.*Allowed: val.*allow_train_split: true"):
        registry.validate_eval_config(EvalConfig(selection=SelectionConfig(split="train")))
    with pytest.raises(EvalError, match=r"eval.selection.split is 'train'.*Allowed: val"):
        select(make_run(tmp_path), EXP, {}, split="train")
    registry.validate_eval_config(EvalConfig(selection=SelectionConfig(split="train", allow_train_split=True)))
    result = select(make_run(tmp_path), EXP, {"step-20": 1.0}, split="train", allow_train_split=True)
    assert result["on_training_items"] is True and result["carved"] is None and result["selection_split"] == "train"


def test_training_rows_of_the_carved_items_are_held_out_and_recorded():
    exp = validate_config({"model": {"name": "builtin:tiny-random-qwen2"},
                           "data": {"sources": [{"builtin": "basic-python-stdio"}, {"builtin": "stdlib-instruct"}]},
                           "eval": {"tasks": ["stdio"], "models": ["base", "step-*", "final"]}})
    holdout = training_holdout(exp)
    carved = selection_task(registry.get_task("stdio"), exp.eval.selection, exp.seed)
    assert holdout is not None and holdout.ids == set(carved.carved.ids)
    full = build_splits(exp.data, exp.seed)
    held = build_splits(exp.data, exp.seed, holdout)
    assert {ex.id for ex in full.train} & holdout.ids and not {ex.id for ex in held.train} & holdout.ids
    assert held.val == full.val and held.test == full.test  # only training rows are dropped
    gone = held.held_out
    assert gone["n_removed"] == len(full.train) - len(held.train) > 0
    assert gone["removed_by_source"] == {"basic-python-stdio": gone["n_removed"]} and gone["ids"] == list(carved.carved.ids)
    # Rows of another file that ask the same thing (other ids, a system prompt) match by prompt.
    row = next(ex for ex in full.train if ex.id in holdout.ids)
    twin = type(row)([{"role": "system", "content": "Be brief."}, *row.messages], "mine", "mine.jsonl:1", "q-7")
    assert holdout.match(twin) == row.id
    # No selection among checkpoints, or a task with a val split of its own: nothing held out.
    assert training_holdout(exp.model_copy(update={"eval": exp.eval.model_copy(update={"models": ["base", "final"]})})) is None
    assert training_holdout(exp.model_copy(update={"eval": exp.eval.model_copy(update={"tasks": ["compose"]})})) is None


def test_selection_refuses_carved_items_the_run_trained_on_and_uses_them_once_held_out(tmp_path):
    run = make_run(tmp_path)
    with pytest.raises(EvalError, match=r"task 'math-word': it has no val split \(its splits: train, test\).*"
                                        r"the run trained on \d+ of them.*Fix: train again"):
        select(run, ON_MATH, {"step-20": 1.0})
    # What the data stage records when it held them out (data/stats.json), as training writes it.
    exp = ON_MATH.model_copy(update={"eval": EvalConfig(tasks=["math-word"], models=["base", "step-*", "final"])})
    held = build_splits(exp.data, exp.seed, training_holdout(exp)).held_out
    (run / "data").mkdir()
    (run / "data" / "stats.json").write_text(json.dumps({"held_out": held}))
    result = select(run, ON_MATH, {"step-20": 1.0})
    assert result["carved"]["ids"] == held["ids"] and result["carved"]["n_from"] == 2000
    scored = read_json(run / "eval" / "step-20" / "math-word@val" / "summary.json")["item_ids"]
    assert scored == held["ids"][:16]  # the first 16 (limit) of the carved items, nothing else


def test_a_clear_winner_is_named_best_and_best_refs_resolve_to_it(tmp_path):
    from tunelab.models.adapters import list_variants, variant_dir

    run = make_run(tmp_path)
    result = select(run, EXP, {"step-10": 0.0, "step-20": 1.0, "final": 0.05})
    assert result["decision"] == "best" and result["best"] == result["top"] == result["resolved"] == "step-20"
    assert [c["variant"] for c in result["comparisons"]] == ["step-10", "final"]
    assert all(c["significant"] and c["better"] and c["test"] == "mcnemar-exact" for c in result["comparisons"])
    assert result["carved"]["task"] == "math-word" and result["cap"]["n"] == 16
    assert "best" in list_variants(run) and variant_dir(run, "best") == run / "checkpoints" / "step-20"


def test_all_zero_scores_give_no_difference_and_best_resolves_to_final(tmp_path):
    from tunelab.models.adapters import variant_dir

    run = make_run(tmp_path)
    result = select(run, EXP, {})  # every candidate answers every item wrong: pass rate 0
    assert result["decision"] == "no_difference" and result["best"] is None
    assert result["top"] == "step-10" and result["resolved"] == "final" and "final" in result["resolved_because"]
    assert {c["test"] for c in result["comparisons"]} == {"none"} and {c["p_value"] for c in result["comparisons"]} == {1.0}
    assert set(result["report"]) == {"final", "base"}
    assert read_json(run / "eval" / "selection.json")["decision"] == "no_difference"
    assert variant_dir(run, "best") == run / "final"


def test_a_top_that_beats_some_candidates_but_not_all_is_no_best():
    beats = {"variant": "step-10", "significant": True, "better": True}
    ties = {"variant": "step-30", "significant": False, "better": True}
    d = decide("step-20", ["step-10", "step-20", "step-30"], [beats, ties])
    assert d["decision"] == "no_difference" and d["tied_with_top"] == ["step-30"] and d["resolved"] == "step-30"
    d = decide("step-20", ["step-10", "step-20", "final"], [beats, {**ties, "variant": "final", "significant": True}])
    assert d["decision"] == "best" and d["resolved"] == "step-20"
    assert decide("final", ["final"], [])["resolved_because"] == "final is the only candidate"


def test_the_report_shows_the_decision_the_tests_and_loudly_a_choice_on_training_items():
    from tunelab.report.blocks import Section
    from tunelab.report.render import render_html
    from tunelab.report.sections_headline import selection_line
    from tunelab.report.sections_run import selection_blocks

    def html(sel: dict) -> str:
        blocks = [*selection_blocks(sel), selection_line(sel)]
        return " ".join(render_html("run", "", [Section("checkpoints", "Checkpoints", blocks)]).split())

    sel = {"task": "similarity", "metric": "chrf", "selection_split": "val", "report_split": "test",
           "decision": "no_difference", "best": None, "top": "step-40", "resolved": "step-40", "alpha": 0.05,
           "resolved_because": "no difference beyond the noise between step-40 (the top score) and step-20",
           "candidates": [{"variant": "step-20", "value": 30.0, "ci_low": 28.0, "ci_high": 32.0},
                          {"variant": "step-40", "value": 40.0, "ci_low": 38.0, "ci_high": 42.0}],
           "comparisons": [{"variant": "step-20", "of": "step-40 - step-20", "diff": 10.0, "ci_low": -2.0,
                            "ci_high": 21.0, "test": "permutation", "p_value": 0.31}],
           "report": {"step-40": {"value": 40.0, "ci_low": 38.0, "ci_high": 42.0},
                      "base": {"value": 20.0, "ci_low": 18.0, "ci_high": 22.0}},
           "carved": {"split": "val", "carved_from": "train", "n": 5, "n_from": 21, "seed": 0,
                      "rule": "the max(1, round(0.25 x 21)) = 5 items ..."}, "on_training_items": False}
    out = html(sel)
    assert "No difference: no candidate beats the others beyond the noise on val, so none is named best." in out
    assert "The best model ref resolves to step-40: no difference beyond the noise" in out
    assert "10 [-2, 21], permutation p=0.31" in out and "carved from train: 5 of 21 items" in out
    assert "no checkpoint differed beyond the noise in chrf on val; best resolves to step-40" in out
    assert "TRAINING" not in out
    out = html({**sel, "on_training_items": True, "selection_split": "train", "carved": None})
    assert '<p class="warn">Chosen on TRAINING items' in out and "train (TRAINING items)" in out
    # selection.json files of older tunelab versions (no decision) still read as a choice
    legacy = {k: v for k, v in sel.items() if k not in ("decision", "top", "resolved", "comparisons", "carved")}
    assert "Checkpoint selection: step-40 had the best chrf on val" in html({**legacy, "best": "step-40"})


def test_the_data_stage_holds_the_carved_items_out_and_a_started_run_keeps_its_rows(tmp_path, capsys):
    from rich.console import Console

    from tunelab.data.holdout import recorded_holdout
    from tunelab.pipeline import _holdout, stage_data
    from tunelab.runs import RunPaths
    from tunelab.training.loop import _resumed_holdout

    exp = validate_config({"model": {"name": "builtin:tiny-random-qwen2"}, "seed": 1,
                           "data": {"sources": [{"builtin": "basic-python-stdio"}], "max_seq_len": 512},
                           "eval": {"tasks": ["stdio"], "models": ["base", "step-*", "final"]}})
    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    note = stage_data(exp, paths, Console(quiet=True))
    held = read_json(paths.data / "stats.json")["held_out"]
    carved = selection_task(registry.get_task("stdio"), exp.eval.selection, 1).carved
    assert held["ids"] == list(carved.ids) and held["seed"] == 1 and held["task"] == "stdio"
    assert f"{held['n_removed']} training row(s) held out for checkpoint selection on stdio@val" in note
    trained = build_splits(exp.data, exp.seed, recorded_holdout(paths.data / "stats.json")).train
    assert held["n_removed"] > 0 and not {ex.id for ex in trained} & set(carved.ids)
    # Once training has started, the rows it started with stay, whatever the config asks now.
    (paths.root / "checkpoints" / "step-2").mkdir(parents=True)
    (paths.root / "checkpoints" / "step-2" / "adapter_config.json").write_text("{}")
    other = exp.model_copy(update={"eval": exp.eval.model_copy(update={"tasks": ["basic-python"]})})
    assert _holdout(other, paths).origins == frozenset(held["removed_origins"])
    kept = _resumed_holdout(paths, training_holdout(other), main=True)
    assert kept.origins == frozenset(held["removed_origins"]) and "resuming with the training rows" in capsys.readouterr().out


def test_a_corpus_metric_is_decided_by_the_paired_bootstrap(tmp_path):
    task = registry.get_task("similarity")
    refs = {s.data["messages"][-1]["content"]: s.data["reference"] for split in ("val", "test") for s in task.load(split)}

    class Echo(Session):  # step-20 answers with the reference, the others with nothing useful
        def generate(self, prompts, settings):
            return [[refs[p.messages[-1]["content"]] if self.skill else "pass"] * settings.n for p in prompts]

    cfg = EvalConfig(tasks=["similarity"], models=["step-*", "final"], limit=12, bootstrap_resamples=200,
                     selection=SelectionConfig(metric="chrf_corpus"))
    result = select_checkpoint(make_run(tmp_path), EXP, cfg, session_factory=lambda ref: Echo(ref, {"step-20": 1.0}),
                               run_eval=cfg)
    assert result["carved"] is None and result["decision"] == "best" and result["best"] == "step-20"
    assert {c["test"] for c in result["comparisons"]} == {"paired-bootstrap"}
    assert all(c["diff"] > 0 and c["p_value"] < 0.05 and c["n"] == 12 for c in result["comparisons"])


def test_tunelab_run_and_train_hand_the_holdout_to_training(tmp_path, monkeypatch):
    import tunelab.data.pipeline as data_pipeline
    from rich.console import Console
    from typer.testing import CliRunner

    from tunelab.cli import app
    from tunelab.pipeline import stage_train
    from tunelab.runs import RunPaths

    class Reached(Exception):
        pass

    seen = []

    def prepare(exp, tokenizer, holdout=None):
        seen.append(holdout)
        raise Reached

    monkeypatch.setattr(data_pipeline, "prepare", prepare)
    raw = {"model": {"name": "builtin:tiny-random-qwen2", "dtype": "float32"},
           "data": {"sources": [{"builtin": "basic-python-stdio"}], "max_seq_len": 512},
           "eval": {"tasks": ["stdio"], "models": ["base", "step-*", "final"], "allow_code_execution": True}}
    exp = validate_config(raw)
    with pytest.raises(Reached):  # the training loop builds its data without the carved items
        stage_train(exp, RunPaths(tmp_path / "run"), Console(quiet=True))
    assert seen[-1] is not None and seen[-1].ids == training_holdout(exp).ids
    config = tmp_path / "c.yaml"
    config.write_text(exp.to_yaml())
    with pytest.raises(Reached):  # and so does `tunelab train`
        CliRunner().invoke(app, ["train", str(config), "--run-dir", str(tmp_path / "t")], catch_exceptions=False)
    assert len(seen) == 2 and seen[-1].ids == training_holdout(exp).ids


def test_selection_loads_each_model_once_the_chosen_one_is_reported_without_reloading(tmp_path):
    run = make_run(tmp_path)
    loaded: list[str] = []

    def factory(ref):
        loaded.append(ref)
        return Session(ref, {"step-10": 0.0, "step-20": 0.05, "final": 1.0})

    cfg = EvalConfig(tasks=["math-word"], models=["base", "step-*", "final"], limit=16)
    result = select_checkpoint(run, EXP, cfg, session_factory=factory, run_eval=cfg)
    assert result["best"] == "final"
    # val: the candidates in order; test: final (still held) first, then base; nothing twice
    assert loaded == ["step-10", "step-20", "final", "base"]
