"""`sweep.search: optuna`: trials sampled by Optuna (TPE or random), one or several objectives,
and pruning of trials whose validation metric falls behind.

The study lives in the sweep directory (`optuna.journal`, Optuna's journal file storage), so a
re-run of the sweep continues it: trials that crashed or were cut off are tried again in their
own folder (training resumes from its checkpoint), finished and pruned ones stay as they are.

Pruning: while a trial trains, the sweep reads the val rows its training loop writes to
`train/metrics.jsonl` at every eval step and reports them to a second study (`NAME:pruning`,
one trial per trial, direction of `prune_metric`); when its pruner says the trial falls behind,
the trial is stopped and recorded as `pruned`. A study of its own keeps pruning on the val loss
correct whatever the objectives are (a score to maximise, several objectives).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tunelab.config import Experiment
from tunelab.tradeoff import objective_value
from tunelab.errors import TunelabError
from tunelab.runs import read_json, read_jsonl
from tunelab.sweep.launch import running_trial
from tunelab.sweep.trials import Trial, make_trial, show, trial_name, value_labels


def _optuna():
    try:
        import optuna
    except ImportError as e:
        raise TunelabError("sweep.search=optuna needs Optuna: pip install 'tunelab[sweep]' (or pip install optuna)") from e
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _plain(values: list[Any]) -> bool:
    return all(v is None or isinstance(v, (bool, int, float, str)) for v in values)


class OptunaSearch:
    """The study of one sweep directory (see the module docstring); safe to use from the sweep's
    worker threads."""

    def __init__(self, root: Path, exp: Experiment) -> None:
        optuna = self.optuna = _optuna()
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        self.root, self.exp, self.cfg = root, exp, exp.sweep.optuna
        self.lock = threading.Lock()
        self.last: dict[int, float] = {}  # pruning trial number -> its latest reported value
        storage = JournalStorage(JournalFileBackend(str(root / "optuna.journal")))
        seed = self.cfg.seed if self.cfg.seed is not None else exp.seed
        sampler = (optuna.samplers.TPESampler(seed=seed) if self.cfg.sampler == "tpe"
                   else optuna.samplers.RandomSampler(seed=seed))
        self.study = optuna.create_study(study_name=exp.name, storage=storage, sampler=sampler, load_if_exists=True,
                                         directions=[o.direction for o in self.cfg.objectives])
        if [d.name.lower() for d in self.study.directions] != [o.direction for o in self.cfg.objectives]:
            raise TunelabError(f"{root / 'optuna.journal'} holds a study with other objectives; use another sweep directory")
        self.pruning = optuna.create_study(study_name=f"{exp.name}:pruning", storage=storage, load_if_exists=True,
                                           direction=self.cfg.prune_direction, pruner=self._pruner())
        if not self.study.trials:
            for params in self.cfg.enqueue[: self.cfg.n_trials]:  # beyond the budget they would never run
                self.study.enqueue_trial(self._labels(params))
        self._retry_unfinished()

    def _pruner(self):
        p, c = self.optuna.pruners, self.cfg
        if c.pruner == "median":
            return p.MedianPruner(n_startup_trials=c.startup_trials, n_warmup_steps=c.warmup_steps)
        if c.pruner == "halving":
            return p.SuccessiveHalvingPruner()
        return p.NopPruner()

    def _labels(self, params: dict[str, Any]) -> dict[str, Any]:
        """Values as Optuna stores them (a choice that is a list or mapping: its text)."""
        grid = self.exp.sweep.grid
        return {k: v if k not in grid or _plain(grid[k]) else show(v) for k, v in params.items()}

    def _retry_unfinished(self) -> None:
        """Trials a crash, kill or interrupted sweep left: tried again in their folder."""
        S = self.optuna.trial.TrialState
        trials = self.study.get_trials(deepcopy=False)
        for t in trials:
            folder = t.user_attrs.get("folder")
            later = any(u.number > t.number and u.user_attrs.get("folder") == folder for u in trials)
            if t.state not in (S.RUNNING, S.FAIL) or not folder or later:
                continue
            tdir = self.root / "trials" / folder
            state = read_json(tdir / "trial.json") if (tdir / "trial.json").is_file() else {}
            if t.state == S.RUNNING:
                if state.get("status") == "running" and running_trial(state.get("pid"), tdir):
                    continue  # another sweep process still runs it
                self._tell(t.number, t.user_attrs.get("pruning_trial"), S.FAIL)
            self.study.enqueue_trial(t.params, user_attrs={"folder": folder})

    def next_trial(self) -> tuple[Trial, Any] | None:
        """The next trial to run and its handle for `watch`/`finish`; None once `n_trials`
        settings were tried and nothing waits to be retried."""
        S = self.optuna.trial.TrialState
        with self.lock:
            trials = self.study.get_trials(deepcopy=False)
            folders = {t.user_attrs.get("folder") for t in trials} - {None}
            if not any(t.state == S.WAITING for t in trials) and len(folders) >= self.cfg.n_trials:
                return None
            ot = self.study.ask()
            values = self._suggest(ot)
            folder = ot.user_attrs.get("folder") or trial_name({"trial": ot.number, **values},
                                                                value_labels(self.exp.sweep))
            pt = self.pruning.ask()
            ot.set_user_attr("folder", folder)
            ot.set_user_attr("pruning_trial", pt.number)
            return make_trial(values, folder, ot.number), (ot, pt)

    def _suggest(self, ot: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, choices in self.exp.sweep.grid.items():
            if _plain(choices):
                values[key] = ot.suggest_categorical(key, choices)
            else:
                labels = [show(v) for v in choices]
                values[key] = choices[labels.index(ot.suggest_categorical(key, labels))]
        for key, r in self.cfg.space.items():
            if r.integer:
                values[key] = ot.suggest_int(key, int(r.low), int(r.high), step=int(r.step or 1), log=r.log)
            else:
                values[key] = ot.suggest_float(key, r.low, r.high, step=r.step, log=r.log)
        return values

    def watch(self, handle: Any, tdir: Path):
        """A `Watch` for the trial: reports new val rows to its pruning trial, and returns why
        to stop it once the pruner says so."""
        _, pt = handle
        metric, seen = self.cfg.prune_metric, set()

        def check() -> str | None:
            new = []
            for r in read_jsonl(tdir / "train" / "metrics.jsonl"):
                if r.get("split") == "val" and isinstance(r.get(metric), (int, float)) and r.get("step") not in seen:
                    seen.add(r["step"])
                    new.append(r)
            with self.lock:
                for r in new:
                    pt.report(float(r[metric]), int(r["step"]))
                    self.last[pt.number] = float(r[metric])
                if new and pt.should_prune():
                    last = new[-1]
                    return (f"val {metric} {last[metric]:.4g} at step {last['step']} fell behind the other trials "
                            f"({self.cfg.pruner} pruner)")
            return None

        return check

    def finish(self, handle: Any, status: str, row: dict[str, Any] | None) -> None:
        """Tell the study how the trial ended (objectives from its trade-off `row` when done)."""
        S = self.optuna.trial.TrialState
        ot, pt = handle
        with self.lock:
            if status == "running":
                return  # another sweep process owns it
            if status == "done" and row is not None:
                values = [objective_value(row, o.metric) for o in self.cfg.objectives]
                if None not in values:
                    self.study.tell(ot, values)
                    last = self.last.get(pt.number)
                    if last is None:
                        self.pruning.tell(pt, state=S.FAIL)
                    else:
                        self.pruning.tell(pt, last)
                    return
                missing = [o.metric for o, v in zip(self.cfg.objectives, values) if v is None]
                ot.set_user_attr("error", f"objective(s) missing from the trade-off row: {missing}")
            self._tell(ot.number, pt.number, S.PRUNED if status == "pruned" else S.FAIL)

    def _tell(self, number: int, pruning_number: int | None, state: Any) -> None:
        self.study.tell(number, state=state, skip_if_finished=True)
        if pruning_number is not None:
            self.pruning.tell(pruning_number, state=state, skip_if_finished=True)

    def folders(self) -> list[tuple[str, int]]:
        """(folder, latest trial number) of every setting tried, in the order first tried."""
        out: dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            if t.user_attrs.get("folder"):
                out[t.user_attrs["folder"]] = t.number
        return list(out.items())

    def summary(self) -> dict[str, Any]:
        """What was searched, for sweep.json and the report."""
        S = self.optuna.trial.TrialState
        trials = self.study.get_trials(deepcopy=False)
        best = [t.user_attrs.get("folder") for t in self.study.best_trials] if any(
            t.state == S.COMPLETE for t in trials) else []
        return {"method": "optuna", "sampler": self.cfg.sampler, "n_trials": self.cfg.n_trials,
                "choices": self.exp.sweep.grid, "space": {k: r.model_dump() for k, r in self.cfg.space.items()},
                "objectives": [o.model_dump() for o in self.cfg.objectives],
                "pruner": self.cfg.pruner, "prune_metric": self.cfg.prune_metric, "best": best,
                "storage": "optuna.journal"}
