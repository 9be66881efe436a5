"""The items checkpoint selection chooses on, when the task has no validation split.

Choosing a checkpoint on the items it is reported on overstates the reported score, and
choosing it on training items picks the one that memorised best. A task whose splits lack `val`
(stdio, basic-python, math-word, repair and hint-judge have train and test) gets one carved from
its train split, by a rule that depends on nothing but the items and the seed:

    the k = max(1, round(carve_fraction x n)) train items with the smallest
    sha256("SEED/TASK/ID"), in the task's own order (the experiment seed, at most n - 1 items)

The carved items are kept out of training where tunelab builds the training data (`tunelab
run` and `tunelab train` pass `selection.training_holdout(exp)` to the data stage, which drops rows that
match one by id or by prompt and records it in data/stats.json `held_out`), and selection
checks them against the run's training rows before choosing: a run that trained on them
(trained before this rule, or with another seed or fraction) is refused with the fix. A task
with nothing to carve from (humaneval: test only) is refused too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.config import Experiment, SelectionConfig
from tunelab.data.holdout import Holdout, normalized, recorded_holdout, user_text
from tunelab.evaluation.task import EvalError, PromptOptions, Sample, Task

VAL, CARVED_FROM = "val", "train"


@dataclass(frozen=True)
class CarvedSplit:
    """A validation split carved from a task's train items (see the module docstring)."""

    task: str
    seed: int
    fraction: float
    n_from: int  # train items it was carved from
    ids: tuple[str, ...]
    split: str = VAL
    carved_from: str = CARVED_FROM

    @property
    def rule(self) -> str:
        return (f"the max(1, round({self.fraction} x {self.n_from})) = {len(self.ids)} items of split "
                f"'{self.carved_from}' with the smallest sha256(\"{self.seed}/{self.task}/ID\")")

    def record(self) -> dict[str, Any]:
        """What selection.json and data/stats.json record."""
        return {"task": self.task, "split": self.split, "carved_from": self.carved_from, "seed": self.seed,
                "fraction": self.fraction, "rule": self.rule, "n": len(self.ids), "n_from": self.n_from,
                "ids": list(self.ids)}


def carve(task_name: str, ids: Sequence[str], seed: int, fraction: float) -> tuple[str, ...]:
    """The carved ids among `ids`, in their order (see the module docstring)."""
    k = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    rank = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}/{task_name}/{i}".encode()).hexdigest())
    chosen = set(rank[:k])
    return tuple(i for i in ids if i in chosen)


class CarvedTask:
    """`task` with a `val` split of the carved items; its `train` split is the rest (few-shot
    examples taken from train never are carved items). Everything else is the task's own:
    name, version and options, so results are cached and filed like the task's."""

    def __init__(self, task: Task, carved: CarvedSplit) -> None:
        self.inner, self.carved = task, carved
        self.splits = (*task.splits, carved.split)

    def __getattr__(self, name: str) -> Any:  # only called for what the wrapper itself lacks
        if name in ("inner", "carved"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def load(self, split: str | None = None) -> list[Sample]:
        ids = set(self.carved.ids)
        if split == self.carved.split:
            return [s for s in self.inner.load(self.carved.carved_from) if s.id in ids]
        if split == self.carved.carved_from:
            return [s for s in self.inner.load(split) if s.id not in ids]
        return self.inner.load(split)

    def fewshot(self, opts: PromptOptions) -> list[Sample]:
        return Task.fewshot(self, opts)  # type: ignore[arg-type]  # the default, on this load()


def selection_task(task: Task, sel: SelectionConfig, seed: int) -> Task | CarvedTask:
    """The task as checkpoint selection uses it: itself when it has `sel.split`, else (split
    `val`) with a carved validation split.

    Raises:
        EvalError: the split is `train` without `allow_train_split`, or the task has no such split
            and nothing to carve `val` from; the message names the task, its splits and the fix.
    """
    check_selection_split(sel, task)
    if sel.split in task.splits:
        return task
    splits = ", ".join(task.splits)
    if sel.split != VAL:
        raise EvalError(f"eval.selection.split: task '{task.name}' has no split '{sel.split}'; its splits: {splits}. "
                        f"Choose on one of them other than '{sel.report_split}', or on val (carved from the "
                        f"train items when the task has none)")
    pool = task.load(CARVED_FROM) if CARVED_FROM in task.splits and CARVED_FROM != sel.report_split else []
    if len(pool) < 2:
        raise EvalError(
            f"checkpoint selection on task '{task.name}': it has no val split to choose on and "
            f"{'too few train items' if pool else 'no train split'} to carve one from (its splits: {splits}); "
            f"choosing on '{sel.report_split}' would overstate the reported score. Fix: choose by another task "
            f"(eval.selection.task) that has a val or train split, or give this one a val split (its task options)")
    ids = [s.id for s in pool]
    return CarvedTask(task, CarvedSplit(task.name, seed, sel.carve_fraction, len(ids),
                                        carve(task.name, ids, seed, sel.carve_fraction)))


def check_selection_split(sel: SelectionConfig, task: Task | None = None) -> None:
    """Refuse choosing on the report split, or on training items without the explicit opt-in."""
    if sel.split == sel.report_split:
        raise EvalError(f"eval.selection.split and eval.selection.report_split are both '{sel.split}': "
                        "the reported score would be biased upward; choose on val")
    if sel.split == CARVED_FROM and not sel.allow_train_split:
        allowed = [s for s in (task.splits if task is not None else (VAL,)) if s not in (CARVED_FROM, sel.report_split)]
        raise EvalError(
            f"eval.selection.split is 'train': choosing the checkpoint on training items picks the one that "
            f"memorised best. Allowed: {', '.join(dict.fromkeys([VAL, *allowed]))} (val is carved from the task's "
            f"train items, and kept out of training, when the task has none). To choose on training items "
            f"anyway, set eval.selection.allow_train_split: true (the report then says so)")


# ---- keeping the carved items out of training ---------------------------------------------------


def prompt_text(task: Task | CarvedTask, sample: Sample) -> str:
    """The text a sample asks with the task's default prompt (user turns or completion text)."""
    opts = PromptOptions(variant=task.prompt_variants[0], style=task.styles[0])
    prompt = task.build_prompt(sample, opts, ())
    return user_text(prompt.messages) if prompt.is_chat else normalized(prompt.text or "")


def holdout_of(task: CarvedTask) -> Holdout:
    """The carved items as training rows to leave out."""
    items = task.load(task.carved.split)
    return Holdout.of(f"checkpoint selection on {task.name}@{task.carved.split} (carved from its train items)",
                      [(s.id, prompt_text(task, s)) for s in items], task.carved.record())


def trained_on(run_dir: Path, exp: Experiment, task: CarvedTask) -> list[str]:
    """Ids of the carved items that are training rows of the run: its training split rebuilt
    from its config, without the rows its data stage recorded as held out (data/stats.json)."""
    from tunelab.data.mixing import build_splits

    train = build_splits(exp.data, exp.seed, recorded_holdout(Path(run_dir) / "data" / "stats.json")).train
    mine = holdout_of(task)
    return sorted({hit for ex in train if (hit := mine.match(ex)) is not None})
