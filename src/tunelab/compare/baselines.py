"""Prompting baselines: the base model with other prompts (few-shot, chain-of-thought, ...).

Fine-tuning is only worth its cost if it beats what prompting the base model gives. A baseline
is the variant `base+<prompt>`, evaluated by the evaluation engine like any other (same items,
same caching, same CIs) into run_dir/eval/base+<prompt>/<task>[@split]/, so the paired
comparison and the report treat it as one more variant. `compare.baselines` only chooses which
prompts to run on which tasks; `tunelab eval --models base,base+few-shot,final` does the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console


def run_baselines(run_dir: Path, exp: Any, prompts: list[str], console: Console | None = None) -> list[str]:
    """Evaluate `base+<prompt>` for each prompt on every eval task that offers that prompt.

    A prompt the task does not offer (or not in the configured `eval.style`), or the one the plain
    `base` row already used, is skipped with a note. Returns the notes.
    """
    from tunelab.errors import EvalError
    from tunelab.evaluation.engine import evaluate_run, make_tasks, prompt_options

    cfg = exp.eval
    if not prompts:
        return []
    if not cfg.tasks:
        return ["prompting baselines need eval tasks (eval.tasks); none are set"]
    notes: list[str] = []
    by_tasks: dict[tuple[str, ...], list[str]] = {}  # the tasks a prompt runs on -> those prompts
    tasks = make_tasks(cfg, (run_dir, exp))
    for prompt in prompts:
        names = []
        for task in tasks:
            if prompt not in task.prompt_variants:
                notes.append(f"{task.name} has no {prompt} prompt (it has: {', '.join(task.prompt_variants)})")
            elif prompt == prompt_options(task, cfg).variant:
                notes.append(f"{task.name}: {prompt} is the prompt the base row already uses")
            else:
                try:  # e.g. chain-of-thought of a code task with eval.style: completion
                    prompt_options(task, cfg.model_copy(update={"prompt": prompt}))
                except EvalError as e:
                    notes.append(f"{task.name}: {e}")
                    continue
                names.append(task.name)
        if names:
            by_tasks.setdefault(tuple(names), []).append(prompt)
    for names, group in by_tasks.items():
        # One engine call per task set, so prompts that share their tasks share one base model load.
        only = {"tasks": list(names), "models": [f"base+{p}" for p in group],
                "task_options": {n: o for n, o in cfg.task_options.items() if n in names}}
        (console or Console(stderr=True)).print(f"baselines: {', '.join(only['models'])} on {', '.join(names)}")
        evaluate_run(Path(run_dir), exp, cfg.model_copy(update=only), console=console)
    return notes
