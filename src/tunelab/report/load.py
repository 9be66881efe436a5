"""Read everything a report shows from a run directory: files only, nothing recomputed.

Every file is optional: a run that stopped after training has no eval/ or compare/, and its
report simply has fewer sections. A file that exists but cannot be parsed becomes a note in the
report instead of an exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunelab.runs import RunPaths, read_jsonl


@dataclass
class RunFiles:
    """The parsed files of one run directory (None / empty where a file is missing)."""

    root: Path
    config: dict[str, Any]
    env: dict[str, Any] | None
    data_stats: dict[str, Any] | None
    metrics: list[dict[str, Any]]
    summary: dict[str, Any] | None
    evals: dict[str, dict[str, dict[str, Any]]]  # variant folder -> task label -> summary.json
    eval_dirs: dict[str, dict[str, Path]]
    selection: dict[str, Any] | None
    compare: dict[str, dict[str, Any]]  # next_token, generations, token_classes, paired, baselines
    pipeline: dict[str, Any] | None
    trial: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.root.name)

    def records(self, variant: str, task: str) -> list[dict[str, Any]]:
        """The samples.jsonl records that `variant`'s `task` summary was computed from (the cache
        also holds records of other settings, which a one-off eval adds)."""
        from tunelab.evaluation.results import summary_records

        return summary_records(self.eval_dirs[variant][task], self.evals[variant][task])

    def same_items(self, a: str, b: str, task: str) -> bool:
        """Whether variants a and b were scored on the same items of `task` (same items hash;
        summaries without one are taken as alike)."""
        ia, ib = (self.evals.get(v, {}).get(task, {}).get("items") for v in (a, b))
        return ia is None or ib is None or ia == ib

    def ordered(self, names: list[str]) -> list[str]:
        """`names` in the order tables show variants: a sweep's comparison in the order it
        compared them (`compare.order`), a run's by `variant_order`."""
        order = (self.config.get("compare") or {}).get("order") or []
        return [v for v in order if v in names] + variant_order([v for v in names if v not in order])

    def report_config(self, overrides: dict[str, Any] | None = None) -> Any:
        """The run's `report` section (defaults where missing) with `overrides` applied."""
        from tunelab.config import ReportConfig

        raw = dict(self.config.get("report") or {})
        raw.update(overrides or {})
        return ReportConfig.model_validate(raw)


def _json(path: Path, problems: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as e:
        problems.append(f"{path}: unreadable ({e})")
        return None


def load_run(root: Path) -> RunFiles:
    """Parse the files of run directory `root` (see the module docstring)."""
    root = Path(root)
    paths = RunPaths(root)
    problems: list[str] = []
    config: dict[str, Any] = {}
    if paths.config.is_file():
        try:
            config = yaml.safe_load(paths.config.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            problems.append(f"{paths.config}: unreadable ({e})")
    evals: dict[str, dict[str, dict[str, Any]]] = {}
    eval_dirs: dict[str, dict[str, Path]] = {}
    eval_root = root / "eval"
    if eval_root.is_dir():
        for vdir in sorted(p for p in eval_root.iterdir() if p.is_dir()):
            for tdir in sorted(p for p in vdir.iterdir() if p.is_dir()):
                s = _json(tdir / "summary.json", problems)
                if isinstance(s, dict):
                    evals.setdefault(vdir.name, {})[tdir.name] = s
                    eval_dirs.setdefault(vdir.name, {})[tdir.name] = tdir
    compare = _compare_files(root, problems)
    _linked_evals(root, compare.get("paired"), evals, eval_dirs, problems)
    return RunFiles(
        root=root, config=config, env=_json(paths.env, problems), data_stats=_json(paths.data / "stats.json", problems),
        metrics=read_jsonl(paths.metrics), summary=_json(paths.summary, problems), evals=evals, eval_dirs=eval_dirs,
        selection=_json(root / "eval" / "selection.json", problems), compare=compare,
        pipeline=_json(root / "pipeline.json", problems), trial=_json(root / "trial.json", problems),
        problems=problems,
    )


def _compare_files(root: Path, problems: list[str]) -> dict[str, dict[str, Any]]:
    compare = {}
    for name in ("next_token", "generations", "token_classes", "paired", "baselines"):
        obj = _json(root / "compare" / f"{name}.json", problems)
        if isinstance(obj, dict):
            compare[name] = obj
    return compare


def _linked_evals(root: Path, paired: dict[str, Any] | None, evals: dict[str, dict[str, dict[str, Any]]],
                  eval_dirs: dict[str, dict[str, Path]], problems: list[str]) -> None:
    """Add the eval results compare read from elsewhere (paired.json `folders`, relative to
    `root`: a variant of another run evaluated in its own run, a sweep trial's) under their labels."""
    for label, tasks in ((paired or {}).get("folders") or {}).items():
        if label in evals:
            continue  # filed in this run: the run's own files win
        for task, rel in tasks.items():
            folder = root / rel
            s = _json(folder / "summary.json", problems)
            if isinstance(s, dict):
                evals.setdefault(label, {})[task] = s
                eval_dirs.setdefault(label, {})[task] = folder


def load_sweep_compare(root: Path, sweep: dict[str, Any]) -> RunFiles | None:
    """The sweep's comparison of its trials (SWEEP_DIR/compare/, from `sweep.compare`) as the
    files the run report's compare sections render, or None when this sweep has none."""
    root = Path(root)
    info = sweep.get("compare")
    if not isinstance(info, dict) or info.get("error") or not (root / "compare").is_dir():
        return None
    problems: list[str] = []
    compare = _compare_files(root, problems)
    evals: dict[str, dict[str, dict[str, Any]]] = {}
    eval_dirs: dict[str, dict[str, Path]] = {}
    _linked_evals(root, compare.get("paired"), evals, eval_dirs, problems)
    variants = sweep["compare"].get("variants") or []
    config = {"name": sweep.get("name"), "report": sweep.get("report") or {},
              "compare": {"variants": variants, "order": variants}}
    return RunFiles(root=root, config=config, env=None, data_stats=None, metrics=[], summary=None, evals=evals,
                    eval_dirs=eval_dirs, selection=None, compare=compare, pipeline=None, trial=None, problems=problems)


def variant_order(names: list[str]) -> list[str]:
    """base first, then prompting baselines, checkpoints by step, best, final, anything else."""

    def key(v: str) -> tuple[int, int, str]:
        if v == "base":
            return (0, 0, v)
        if v.startswith("base+"):
            return (1, 0, v)
        if v.startswith("step-") and v[5:].isdigit():
            return (2, int(v[5:]), v)
        return ({"best": 3, "final": 4}.get(v, 5), 0, v)

    return sorted(names, key=key)
