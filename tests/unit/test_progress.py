"""The one progress display: plain periodic lines with counts when the console is no terminal."""

import io
import re

from rich.console import Console

from tunelab.progress import Progress, track


def plain_console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=200), buf


def test_a_non_terminal_console_gets_one_plain_line_per_tenth_with_counts():
    console, buf = plain_console()
    with Progress(console, every_s=3600) as bar:
        tid = bar.add_task("final / math-word", total=100)
        for _ in range(100):
            bar.advance(tid)  # 100 items: 10 lines, not 100
    lines = buf.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("final / math-word: 10/100 (10%), 0:00:00 elapsed")
    assert lines[-1].startswith("final / math-word: 100/100 (100%)") and lines[-1].endswith("done")
    assert "\x1b" not in buf.getvalue()  # no control codes in a log file


def test_plain_lines_also_come_every_few_seconds_and_carry_an_eta():
    console, buf = plain_console()
    with Progress(console, every_s=0.0) as bar:
        tid = bar.add_task("sweep trials", total=1000)
        bar.advance(tid, 1)
        bar.advance(tid, 1)
    lines = buf.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["sweep trials: 1/1000 (0%)", "sweep trials: 2/1000 (0%)"]
    assert re.search(r"eta \d+:\d\d:\d\d$", lines[-1])


def test_track_counts_the_items_of_a_loop():
    console, buf = plain_console()
    assert list(track(["a", "b", "c"], "compare variants", console)) == ["a", "b", "c"]
    lines = buf.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"compare variants: {i}/3 ({p})"
                                                      for i, p in ((1, "33%"), (2, "67%"), (3, "100%"))]


def test_the_eval_output_in_a_non_terminal_run_shows_the_counts(tmp_path):
    from test_eval_runner import (  # tests/unit is on sys.path (rootdir conftest)
        EXP,
        FakeSession,
        make_run,
    )

    from tunelab.config import EvalConfig
    from tunelab.evaluation.engine import evaluate_run

    console, buf = plain_console()
    run = make_run(tmp_path, steps=())
    cfg = EvalConfig(tasks=["math-word"], models=["final"], limit=8, batch_size=2)
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, []), console=console)
    lines = [line for line in buf.getvalue().splitlines() if line.startswith("final / math-word: ")]
    assert [line.split(",")[0] for line in lines] == ["final / math-word: 4/8 (50%)", "final / math-word: 8/8 (100%)"]


def test_training_shows_the_same_display_with_counts_eta_and_the_latest_loss():
    from tunelab.training.progress import TrainProgress

    console, buf = plain_console()
    progress = TrainProgress(100, 40, console=console)  # a run resumed at step 40
    for step in range(41, 101):
        progress.update(step, 1.0 / step, 1e-4)
    progress.note_eval(100, {"val": {"loss": 0.5, "token_accuracy": 0.75}})
    progress.close()
    lines = buf.getvalue().splitlines()
    steps = [line for line in lines if line.startswith("train")]
    assert [line.split(":")[1].split(",")[0].strip() for line in steps] == [f"{n}/100 ({n}%)" for n in range(50, 101, 10)]
    assert steps[0].startswith("train (loss 0.0200, lr 1.00e-04): 50/100") and re.search(r"eta \d+:\d\d:\d\d$", steps[0])
    assert steps[-1].endswith("done") and lines[-1] == "step 100: val loss 0.5000 acc 0.750"
    silent, out = plain_console()
    TrainProgress(10, 0, enabled=False, console=silent).update(5, 1.0, 1e-4)  # non-main processes draw nothing
    assert out.getvalue() == ""


def test_the_first_eta_of_a_resumed_task_counts_only_the_items_done_here():
    console, _ = plain_console()
    with Progress(console, every_s=3600) as bar:
        tid = bar.add_task("train", total=100, completed=90)  # resumed at 90
        bar.advance(tid)  # one item done here ...
        task = bar._bar.tasks[tid]
        task.start_time, task._get_time = 1000.0, lambda: 1010.0  # ... in 10 s
        task._progress.clear()  # no speed sample yet: the mean rate of the items done here
        assert bar.line(tid).endswith("0:00:10 elapsed, eta 0:01:30")  # 9 left x 10 s, not 9 x 10/91 s
