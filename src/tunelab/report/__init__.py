"""`tunelab report DIR [DIR ...]`: one self-contained report.html and a report.md.

    report.html        every section that has data; plots as inline SVG; no network; prints well
    report.md          the same tables and text; plots linked from report_files/
    report_files/*.svg

A run directory gives the run's report (in that directory); a sweep directory (with
sweep.json) gives the sweep's trade-off report, from the table and Pareto front the sweep wrote
there (and, with `sweep.compare`, its trials compared with each other, rendered by the
run report's compare sections); several directories give a comparison of the runs (their rows read by
`tunelab.tradeoff`) followed by each run's sections (in --output, default the current
directory). Everything is read from files in the directories (`load.py`); nothing is recomputed
and no model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunelab.config import SweepConfig
from tunelab.errors import TunelabError
from tunelab.report import sections_compare as sc
from tunelab.report import sections_headline as sh
from tunelab.report import sections_run as sr
from tunelab.report import sections_sweep as ss
from tunelab.report.blocks import Para, Section
from tunelab.report.load import RunFiles, load_run, load_sweep_compare
from tunelab.report.render import figure_files, render_html, render_markdown
from tunelab.runs import atomic_write_text, read_json
from tunelab.tradeoff import pareto_points, priced, tradeoff_rows

# Section ids a single-run report can have, in order (the browser test looks for them).
RUN_SECTIONS = ("headline", "experiment", "data", "training", "checkpoints", "results", "paired", "wins", "next-token",
                "token-classes", "generations", "failures", "cost")
SWEEP_SECTIONS = ("trials", "tradeoff", "models", "pareto", "val-curves", "selection", "seeds", "sweep-cost")
# A sweep with `sweep.compare` adds its trials compared with each other, after those.
CROSS_SECTIONS = ("cross", "cross-results", "cross-paired", "cross-wins", "cross-next-token", "cross-token-classes",
                  "cross-generations", "cross-failures")


def run_sections(run: RunFiles, overrides: dict[str, Any] | None = None, prefix: str = "",
                 title_prefix: str = "") -> list[Section]:
    """Every section of one run that has data, ids prefixed by `prefix`."""
    cfg = run.report_config(overrides)
    p, n = prefix, cfg.max_chars
    built = [
        sh.headline_section(run, f"{p}headline"),  # first screen: did fine-tuning help?
        sr.experiment_section(run, f"{p}experiment"),
        sr.data_section(run, f"{p}data", n),
        sr.training_section(run, f"{p}training", p),
        sr.checkpoint_section(run, f"{p}checkpoints", p),
        sc.results_section(run, f"{p}results"),
        sc.paired_section(run, f"{p}paired"),
        sc.wins_section(run, f"{p}wins", cfg.wins_per_task, n),
        sc.next_token_section(run, f"{p}next-token", p, n),
        sc.token_class_section(run, f"{p}token-classes", p),
        sc.generations_section(run, f"{p}generations", n),
        sc.failures_section(run, f"{p}failures", cfg.examples_per_category, n),
        sr.cost_section(run, f"{p}cost", cfg),
    ]
    out = [s for s in built if s is not None]
    if run.problems:
        out.append(Section(f"{p}problems", "Unreadable files", [Para(x, "warn") for x in run.problems]))
    for s in out:
        s.title = title_prefix + s.title
    return out


def multi_sections(rows: list[dict[str, Any]], pareto: dict[str, Any], trials: list[dict[str, Any]] | None,
                   price: float | None, currency: str, search: dict[str, Any] | None = None) -> list[Section]:
    """The sections over several runs (a sweep's trials, or run directories given together)."""
    built = [ss.trials_section(trials, rows, "trials", search) if trials else None,
             ss.tradeoff_section(rows, "tradeoff", currency), ss.models_section(rows, "models"),
             ss.pareto_section(pareto, "pareto", ""), ss.curves_section(rows, "val-curves", ""),
             ss.selection_section(rows, "selection", ""), ss.seeds_section(rows, "seeds"),
             ss.sweep_cost_section(rows, "sweep-cost", price, currency)]
    return [s for s in built if s is not None]


def cross_sections(run: RunFiles, info: dict[str, Any], trials: list[dict[str, Any]] | None,
                   overrides: dict[str, Any] | None = None) -> list[Section]:
    """A sweep's trials compared with each other (SWEEP_DIR/compare/), with the run report's
    own compare renderers; ids prefixed `cross-`."""
    cfg = run.report_config(overrides)
    p, n = "cross-", cfg.max_chars
    if "paired" in run.compare:  # its notes are the comparison's: shown once, in the first section
        run.compare["paired"] = {**run.compare["paired"], "notes": []}
    built = [
        ss.cross_section(info, trials, run.compare, "cross"),
        sc.results_section(run, f"{p}results"),
        sc.paired_section(run, f"{p}paired"),
        sc.wins_section(run, f"{p}wins", cfg.wins_per_task, n),
        sc.next_token_section(run, f"{p}next-token", p, n),
        sc.token_class_section(run, f"{p}token-classes", p),
        sc.generations_section(run, f"{p}generations", n),
        sc.failures_section(run, f"{p}failures", cfg.examples_per_category, n),
    ]
    out = [s for s in built if s is not None]
    if run.problems:
        out.append(Section(f"{p}problems", "Unreadable files", [Para(x, "warn") for x in run.problems]))
    for s in out[1:]:
        s.title = "Across trials: " + ("every compared variant's results" if s.id == f"{p}results" else s.title)
    return out


def write_report(dirs: Sequence[Path], output: Path | None = None, overrides: dict[str, Any] | None = None
                 ) -> Path:
    """Write report.html, report.md and report_files/ for `dirs`; returns the HTML path."""
    dirs = [Path(d) for d in dirs]
    for d in dirs:
        if not d.is_dir():
            raise TunelabError(f"not a directory: {d}")
        if not (d / "config.yaml").is_file() and not (d / "sweep.json").is_file():
            raise TunelabError(f"{d} is neither a run directory (config.yaml) nor a sweep directory (sweep.json)")
    overrides = overrides or {}
    stamp = time.strftime("%Y-%m-%d %H:%M")
    if len(dirs) == 1 and (dirs[0] / "sweep.json").is_file():
        sweep = read_json(dirs[0] / "sweep.json")
        price = overrides.get("price_per_device_hour", sweep.get("price_per_device_hour"))
        currency = overrides.get("currency", sweep.get("currency") or "USD")
        rows = sweep.get("table") or []  # the sweep's own table and front, as it wrote them
        if "price_per_device_hour" in overrides:
            rows = priced(rows, price)
        sections = multi_sections(rows, sweep.get("pareto") or {}, sweep.get("trials"), price, currency,
                                  sweep.get("search"))
        cross = load_sweep_compare(dirs[0], sweep)
        if cross is not None:
            sections += cross_sections(cross, sweep["compare"], sweep.get("trials"), overrides)
        elif (sweep.get("compare") or {}).get("error"):
            sections.append(ss.cross_section(sweep["compare"], sweep.get("trials"), {}, "cross"))
        title, subtitle = f"Sweep: {sweep.get('name')}", f"{len(sweep.get('trials') or [])} trials in {dirs[0]} · {stamp}"
        out_dir = output or dirs[0]
    elif len(dirs) == 1:
        run = load_run(dirs[0])
        sections = run_sections(run, overrides)
        title, subtitle = f"Run: {run.name}", f"{dirs[0]} · {stamp}"
        out_dir = output or dirs[0]
    else:
        runs = [load_run(d) for d in dirs]
        cfg = runs[0].report_config(overrides)
        rows = tradeoff_rows(dirs, cfg.price_per_device_hour)
        sections = multi_sections(rows, pareto_points(rows, None, SweepConfig().cost), None, cfg.price_per_device_hour,
                                  cfg.currency)
        names = [r.name for r in runs]
        for i, run in enumerate(runs, 1):
            # Runs of one config share a name: tell them apart by their folders.
            label = run.name if names.count(run.name) == 1 else str(run.root)
            sections += run_sections(run, overrides, prefix=f"run{i}-", title_prefix=f"{label}: ")
        title, subtitle = f"{len(runs)} runs", " · ".join(str(d) for d in dirs) + f" · {stamp}"
        out_dir = output or Path.cwd()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = figure_files(sections)
    for name, svg in figures.items():
        atomic_write_text(out_dir / "report_files" / name, svg)
    for old in (out_dir / "report_files").glob("*.svg"):
        if old.name not in figures:  # a plot of an earlier render that no longer exists
            old.unlink()
    atomic_write_text(out_dir / "report.md", render_markdown(title, subtitle, sections))
    atomic_write_text(out_dir / "report.html", render_html(title, subtitle, sections))
    return out_dir / "report.html"


def parse_report_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`report.KEY=VALUE` items (values parsed as YAML) as {KEY: VALUE}, checked against ReportConfig."""
    from pydantic import ValidationError

    from tunelab.config import ReportConfig, apply_override, format_validation_error
    from tunelab.errors import ConfigError

    raw: dict[str, Any] = {"report": {}}
    for item in items:
        apply_override(raw, item, sections=("report",), doing="rendering a report")
    out = raw["report"]
    try:
        ReportConfig.model_validate(out)  # ranges and types fail here, before anything is read
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, "report settings")) from None
    return out


__all__ = ["write_report", "run_sections", "cross_sections", "parse_report_overrides", "RUN_SECTIONS",
           "SWEEP_SECTIONS", "CROSS_SECTIONS"]
