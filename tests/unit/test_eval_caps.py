"""`--limit` looks: every capped number says it is one ("first 5 of 300 items"), on the console
and in the report, and a capped number is never set beside an uncapped one as a comparison."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from test_eval_runner import EXP, FakeSession, make_run, own_run  # tests/unit is on sys.path (rootdir conftest)

from tunelab.config import EvalConfig, capped, load_config
from tunelab.evaluation.console import print_results, selection_lines
from tunelab.evaluation.engine import evaluate_run
from tunelab.evaluation.results import cap_text, mixed_caps

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def plain_console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=400, force_terminal=False, color_system=None), buf


def text_of(buf: io.StringIO) -> str:
    return " ".join(buf.getvalue().split())


def test_a_capped_summary_records_the_split_size_and_says_so(tmp_path):
    run = make_run(tmp_path, steps=())
    res = evaluate_run(run, EXP, EvalConfig(tasks=["math-word"], models=["final"], limit=4),
                       session_factory=lambda ref: FakeSession(ref, []), console=Console(quiet=True))
    summary = res["final"]["math-word"]
    assert (summary["n"], summary["n_total"], summary["limit"]) == (4, 300, 4)
    assert cap_text(summary) == "first 4 of 300 items"
    assert cap_text({"n": 300, "n_total": 300, "limit": None}) is None
    # summaries from before the split size was recorded still say they were capped
    assert cap_text({"n": 5, "keyed": {"limit": {"run": None, "here": 5}}}) == "first 5 items (limit 5)"
    assert mixed_caps({"base": {"n": 5, "n_total": 300}, "final": {"n": 300, "n_total": 300}}) == (
        "scored on different items (base: first 5 of 300 items; final: all 300 items): "
        "not a like-for-like comparison")
    assert mixed_caps({"base": {"n": 5, "n_total": 300}, "final": {"n": 5, "n_total": 300}}) is None


def test_tunelab_eval_says_where_keyed_results_went_and_that_they_are_capped(tmp_path, monkeypatch):
    """The keyed-summary console line of `tunelab eval` (issue 11), and the cap marks."""
    import tunelab.evaluation.context as context
    from tunelab.commands.eval import eval_command

    run, _ = own_run(tmp_path, tasks=["math-word"], models=["base", "final"], limit=8)
    monkeypatch.setattr(context, "VariantSession", lambda ref, run_dir, exp, cfg: FakeSession(ref, []))
    console, buf = plain_console()
    results = eval_command(run, models="final", tasks="math-word", limit=5, console=console)
    out = text_of(buf)
    assert (run / "eval" / "final" / "math-word" / "summary@limit-5.json").is_file()
    assert not (run / "eval" / "final" / "math-word" / "summary.json").exists()
    assert ("written as summary@limit-5.json beside the run's own summary.json "
            "(settings other than the run's own: limit 8 -> 5)") in out
    assert "5 (capped: first 5 of 300 items)" in out
    assert "capped math-word: every number above is on the first 5 of 300 items" in out
    assert results["final"]["math-word"]["n_total"] == 300


def test_the_console_warns_when_variants_were_capped_differently():
    console, buf = plain_console()
    metric = {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 5, "higher_is_better": True}
    print_results({"base": {"t": {"metrics": {"m": metric}, "n": 5, "n_total": 60}},
                   "final": {"t": {"metrics": {"m": {**metric, "n": 60}}, "n": 60, "n_total": 60}}}, console)
    out = text_of(buf)
    assert "WARNING t: scored on different items (base: first 5 of 60 items; final: all 60 items)" in out


def test_limit_caps_every_item_the_eval_and_compare_stages_read():
    exp = load_config(SMOKE, ["compare.prompts=[a,b,c]", "eval.limit=9"])
    small = capped(exp, 2)
    assert small.eval.limit == 2 and small.compare.prompts == ["a", "b"] and small.compare.n_prompts == 2
    assert capped(exp.model_copy(update={"eval": exp.eval.model_copy(update={"limit": 1})}), 2).eval.limit == 1


def test_the_report_marks_capped_numbers_and_never_compares_them_unsaid(tmp_path):
    from test_report_render import build_run

    from tunelab.report.load import load_run
    from tunelab.report.render import render_html
    from tunelab.report.sections_compare import results_section
    from tunelab.report.sections_headline import headline_section

    def html() -> str:
        sections = [headline_section(load_run(run), "headline"), results_section(load_run(run), "results")]
        return " ".join(render_html("run", "", sections).split())

    run = build_run(tmp_path)
    for variant in ("base", "base+few-shot", "step-20", "step-40", "final"):
        path = run / "eval" / variant / "math-word" / "summary.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "n_total": 300, "limit": 30}))
    out = html()
    assert "Capped: every number here is on the first 30 of 300 items of split test" in out
    assert "30 (capped)" in out and "Capped numbers" not in out
    assert "math-word — accuracy ↑ (n=30, capped: first 30 of 300 items)" in out  # the first screen says it too
    # One variant uncapped beside capped ones: said before the numbers, and no delta against it.
    path = run / "eval" / "final" / "math-word" / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "n_total": 30, "items": "all", "limit": None}))
    out = html()
    assert "Capped numbers: scored on different items (base: first 30 of 300 items;" in out
    assert "final: all 30 items): not a like-for-like comparison" in out
    assert "; but scored on different items (base: first 30 of 300 items; final: all 30 items)" in out


def test_selection_lines_say_the_decision_and_loudly_when_chosen_on_training_items():
    sel = {"selection_split": "train", "report_split": "test", "task": "stdio", "metric": "pass@1",
           "decision": "no_difference", "best": None, "top": "step-10", "resolved": "final",
           "resolved_because": "no difference beyond the noise ...",
           "comparisons": [{"of": "step-10 - final", "diff": 0.0, "p_value": 1.0}],
           "on_training_items": True, "cap": {"limit": 4, "n": 4, "n_total": 21, "report_n": 4, "report_n_total": 20},
           "carved": None}
    lines = selection_lines(sel)
    assert lines[0].startswith("no difference on train by stdio/pass@1") and "best resolves to final" in lines[0]
    assert "p=1" in lines[0] and "not naming a best" in lines[0]
    assert any(line.startswith("WARNING: chosen on TRAINING items") for line in lines)
    assert "chosen on the first 4 of 21 train items, reported on the first 4 of 20 test items" in lines[-1]


def test_tunelab_run_and_compare_take_limit(tmp_path):
    from test_report_render import build_run
    from typer.testing import CliRunner

    from tunelab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["run", str(SMOKE), "--run-dir", str(tmp_path / "r"), "--only", "data", "--limit", "2"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    saved = load_config(tmp_path / "r" / "config.yaml")  # the run records the cap it was run with
    assert saved.eval.limit == 2 and saved.compare.n_prompts == 2

    run = build_run(tmp_path / "c")
    plain = (run / "compare" / "next_token.json").read_bytes()
    res = runner.invoke(app, ["compare", str(run), "--limit", "1"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "compare: capped at the first 1 prompts and 1 items per task (--limit)" in out
    keyed = list((run / "compare").glob("paired@*.json"))
    assert len(keyed) == 1 and json.loads(keyed[0].read_text())["keyed"]["n_prompts"] == {"run": 4, "here": 1}
    assert (run / "compare" / "next_token.json").read_bytes() == plain  # the run's own files stay
