"""Prompting baselines: the base model with other prompts (few-shot, chain-of-thought, ...).

Fine-tuning is only worth its cost if it beats what prompting the base model gives. Each
baseline runs through the evaluation runner (same items, same caching, same CIs) and is written
beside the other variants as run_dir/eval/base+<prompt>/<task>[@split]/, so the paired
comparison and the report treat it as one more variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console


def baseline_folder(prompt: str) -> str:
    """Folder name of a prompting baseline under run_dir/eval/."""
    return f"base+{prompt}"


def run_baselines(run_dir: Path, exp: Any, prompts: list[str], console: Console | None = None) -> list[str]:
    """Evaluate the base model with each prompt variant on every eval task that supports it.

    A prompt the task does not offer, or the one the plain `base` row already used, is skipped
    with a note. Returns the notes.
    """
    from tunelab.evaluation.generation import VariantSession, make_judge
    from tunelab.evaluation.runner import (check_code_execution, load_samples, make_tasks, prompt_options, run_task,
                                           task_label)
    from tunelab.evaluation.task import ScoringContext

    console = console or Console(stderr=True)
    cfg = exp.eval
    if not prompts:
        return []
    if not cfg.tasks:
        return ["prompting baselines need eval tasks (eval.tasks); none are set"]
    tasks = make_tasks(cfg)
    check_code_execution(tasks, cfg.allow_code_execution)
    notes, todo = [], []
    for prompt in prompts:
        for task in tasks:
            if prompt not in task.prompt_variants:
                notes.append(f"{task.name} has no {prompt} prompt (it has: {', '.join(task.prompt_variants)})")
            elif prompt == prompt_options(task, cfg).variant:
                notes.append(f"{task.name}: {prompt} is the prompt the base row already uses")
            else:
                todo.append((prompt, task))
    if not todo:
        return notes
    session = VariantSession("base", run_dir, exp, cfg)
    judge, judge_id = make_judge(cfg, run_dir, exp)
    sandbox = None
    if any(t.executes_code for _, t in todo):
        from tunelab.evaluation.sandbox import create_sandbox

        sandbox = create_sandbox(cfg)
    try:
        for prompt, task in todo:
            split = cfg.split or task.default_split
            samples = load_samples(task, split, cfg.limit)
            ctx = ScoringContext(sandbox=sandbox if task.executes_code else None, judge=judge)
            out = Path(run_dir) / "eval" / baseline_folder(prompt) / task_label(task, split)
            console.print(f"baseline: base with {prompt} prompts on {task.name} ({len(samples)} items)")
            run_task(task, samples, split, session, cfg.model_copy(update={"prompt": prompt}), out, ctx, judge_id)
    finally:
        session.close()
        if sandbox is not None and hasattr(sandbox, "close"):
            sandbox.close()
    return notes
