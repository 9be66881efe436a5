"""`tunelab eval`: settings from the run, `--set eval.*` and flags, then the evaluation engine.

    tunelab eval RUN_DIR --models base,base+cot,step-*,final --tasks math-word   # variants x tasks
    tunelab eval RUN_DIR --select --tasks similarity                             # best checkpoint
    tunelab eval --task humaneval --samples FILE.jsonl --allow-code-execution    # outside generations
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import EvalConfig, Experiment
from tunelab.evaluation.console import print_results, selection_lines
from tunelab.evaluation.registry import validate_eval_config
from tunelab.evaluation.results import key_name
from tunelab.evaluation.task import EvalError


def resolve_eval_config(run_dir: Path | None, overrides: Sequence[str] = (), **flags: Any) -> tuple[Experiment | None, EvalConfig]:
    """The run's `eval` section (or defaults), then `--set eval.*` overrides, then CLI flags (not None)."""
    from pydantic import ValidationError

    from tunelab.config import apply_override, format_validation_error, load_config, parse_override
    from tunelab.errors import ConfigError

    for item in overrides:  # all checked before the run's config is read
        parse_override(item, ("eval",), "evaluating an existing run")
    exp = None
    if run_dir is not None:
        if not (run_dir / "config.yaml").is_file():
            raise EvalError(f"{run_dir} is not a run directory (no config.yaml); train first or give --samples")
        exp = load_config(run_dir / "config.yaml")
    raw = {"eval": exp.eval.model_dump(mode="json") if exp is not None else {}}
    for item in overrides:
        apply_override(raw, item)
    raw["eval"].update({k: v for k, v in flags.items() if v is not None})
    try:
        cfg = EvalConfig.model_validate(raw["eval"])
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, "eval settings")) from None
    validate_eval_config(cfg)
    return exp, cfg


def eval_command(run_dir: Path | None, models: str | None = None, tasks: str | None = None, limit: int | None = None,
                 allow_code_execution: bool = False, task: str | None = None, samples: Path | None = None,
                 output: Path | None = None, split: str | None = None, select: bool = False,
                 overrides: Sequence[str] = (), console: Console | None = None) -> dict[str, Any]:
    """`tunelab eval`: evaluate a run's variants, choose the best checkpoint (`select`), or score a
    samples file (`samples`)."""
    from tunelab.evaluation.engine import evaluate_run
    from tunelab.evaluation.samples_file import score_samples_file

    console = console or Console()
    flags = {"models": _csv(models), "tasks": _csv(tasks), "limit": limit, "split": split,
             "allow_code_execution": True if allow_code_execution else None}
    if samples is not None:
        if not task:
            raise EvalError("--samples needs --task NAME (the task the completions answer)")
        _, cfg = resolve_eval_config(run_dir, overrides, **flags)
        summary = score_samples_file(task, samples, cfg, output, console=console)
        print_results({"samples": {task: summary}}, console)
        return summary
    if run_dir is None:
        raise EvalError("give a run directory (tunelab eval RUN_DIR --tasks ...) or --samples FILE --task NAME")
    if task:
        flags["tasks"] = flags["tasks"] or [task]
    exp, cfg = resolve_eval_config(run_dir, overrides, **flags)
    assert exp is not None
    if select:
        from tunelab.evaluation.selection import select_checkpoint

        chosen = select_checkpoint(run_dir, exp, cfg, console=console, run_eval=exp.eval)
        name = f"selection@{key_name(chosen['keyed'])}.json" if chosen.get("keyed") else "selection.json"
        for line in selection_lines(chosen):
            console.print(line, markup=False, highlight=False, style="bold red" if line.startswith("WARNING") else None)
        console.print(f"written to {run_dir / 'eval' / name}" + _differs_note(chosen.get("keyed")),
                      markup=False, highlight=False)
        return chosen
    results = evaluate_run(run_dir, exp, cfg, console=console, run_eval=exp.eval)
    print_results(results, console)
    console.print(f"results in {run_dir / 'eval'}")
    keyed = sorted({key_name(sm["keyed"]): sm["keyed"] for tasks in results.values() for sm in tasks.values()
                    if sm.get("keyed")}.items())
    for name, diff in keyed:
        console.print(f"written as summary@{name}.json beside the run's own summary.json" + _differs_note(diff),
                      markup=False, highlight=False)
    return results


def _differs_note(diff: dict[str, Any] | None) -> str:
    """`(settings other than the run's own: limit 8 -> 5, ...)`, or "" when none differ."""
    if not diff:
        return ""
    return " (settings other than the run's own: " + ", ".join(f"{k} {d['run']} -> {d['here']}"
                                                               for k, d in diff.items()) + ")"


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None
