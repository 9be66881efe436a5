"""Progress of work a person waits for: counts and an ETA, drawn to suit where the output goes.

On a terminal it is a rich bar (description, bar, done/total, elapsed, ETA). Anywhere else (CI,
`| tee log`, a cluster job's log file) a live bar would be a stream of control codes, so the same
progress is written as plain lines: one when another tenth of the work is done or, at item
boundaries, when `every_s` seconds have passed since the last line, and one at the end. Callers
advance it per item (a sample, a trial, a step), never per token.

    with Progress(console) as bar:
        tid = bar.add_task("final / humaneval", total=164)
        bar.advance(tid, 16)

    for trial in track(trials, "sweep trials", console):
        ...
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

T = TypeVar("T")
EVERY_S = 10.0  # plain lines: at most this long apart while items finish
STEPS = 10  # plain lines: one per tenth of the total, however fast


class Progress:
    """Tasks with counts and ETA: a rich bar on a terminal console, periodic plain lines elsewhere.

    Args:
        console: where to draw (default: stderr, so piped stdout stays clean).
        transient: remove the bar once done (terminal only; plain lines stay).
        every_s: seconds between plain lines while items keep finishing.
    """

    def __init__(self, console: Console | None = None, transient: bool = False, every_s: float = EVERY_S) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal and not self.console.is_dumb_terminal
        self.every_s = every_s
        # A long speed window: items that take minutes (sweep trials) still get an ETA.
        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=self.console, transient=transient, disable=not self.live,
                                 speed_estimate_period=600.0)
        self._printed: dict[TaskID, tuple[float, int, float]] = {}  # time, tenth and count of the last line
        self._start: dict[TaskID, float] = {}  # items already done when the task was added (a resume)

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def add_task(self, description: str, total: int | None = None, completed: int = 0) -> TaskID:
        """A new task of `total` items (None: unknown), `completed` of them already done."""
        tid = self._bar.add_task(description, total=total, completed=completed)
        self._printed[tid] = (time.monotonic(), self._tenth(tid), float(completed))
        self._start[tid] = float(completed)
        return tid

    def advance(self, task_id: TaskID, n: float = 1) -> None:
        """`n` more items of the task are done."""
        self._bar.advance(task_id, n)
        self._plain(task_id)

    def update(self, task_id: TaskID, *, total: int | None = None, completed: float | None = None,
               description: str | None = None) -> None:
        """Change a task's total (a shortened schedule), count or description."""
        self._bar.update(task_id, total=total, completed=completed, description=description)
        self._plain(task_id)

    def _tenth(self, task_id: TaskID) -> int:
        task = self._bar.tasks[task_id]
        return int(STEPS * task.completed / task.total) if task.total else 0

    def _plain(self, task_id: TaskID) -> None:
        if self.live:
            return
        task, now = self._bar.tasks[task_id], time.monotonic()
        last_t, last_tenth, last_n = self._printed[task_id]
        tenth = self._tenth(task_id)
        if task.completed == last_n or not (tenth > last_tenth or task.finished or now - last_t >= self.every_s):
            return
        self._printed[task_id] = (now, tenth, task.completed)
        self.console.print(self.line(task_id), markup=False, highlight=False, soft_wrap=True)

    def line(self, task_id: TaskID) -> str:
        """The plain line of a task: `desc: 40/164 (24%), 0:01:10 elapsed, eta 0:03:30`."""
        task = self._bar.tasks[task_id]
        elapsed = task.finished_time if task.finished_time is not None else (task.elapsed or 0.0)
        done = f"{task.completed:g}"
        if task.total:
            done += f"/{task.total:g} ({task.completed / task.total:.0%})"
        text = f"{task.description}: {done}, {_clock(elapsed)} elapsed"
        if task.finished:
            return text + ", done"
        eta = task.time_remaining
        done_here = task.completed - self._start.get(task_id, 0.0)  # a resumed task's earlier items took no time here
        if eta is None and done_here > 0 and task.total:  # one sample so far: the mean rate
            eta = (task.total - task.completed) * elapsed / done_here
        return text + (f", eta {_clock(eta)}" if eta is not None else "")


def track(items: Iterable[T], description: str, console: Console | None = None,
          total: int | None = None) -> Iterator[T]:
    """Yield `items`, one progress item each (see `Progress`); the bar ends with the loop.

    Args:
        items: what the loop goes over.
        description: the task's label.
        console: where to draw (default: stderr).
        total: the number of items, if `items` has no len().
    """
    if total is None and isinstance(items, Sequence):
        total = len(items)
    with Progress(console) as bar:
        tid = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(tid)


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
