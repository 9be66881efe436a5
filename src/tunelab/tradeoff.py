"""The trade-off table over run directories, and its Pareto front: one definition of each.

A row is what one run cost and gave, read from the files its stages wrote (`train/summary.json`,
`train/metrics.jsonl`, `eval/<variant>/<task>/summary.json`, `pipeline.json`, `trial.json`,
`config.yaml`): parameters, time, memory, throughput, losses, the tuned variant's task scores
with CIs, per-source validation and test loss, device-hours and cost; and for the report's
views over runs: every variant's scores (`variant_scores`: base, base+cot, step-N, final, ...),
the judges the scores came from (`judges`), what `base` is (`base_model`), the checkpoint
selection (`selection`, from `eval/selection.json`) and the train, validation and test loss
curves (`train_curve`, `val_curve`, `test_curve`: (step, loss) pairs).

Costs that machine load does not decide sit beside the wall time: `device_seconds` (GPU seconds
of training on a GPU, else the training process's CPU seconds; the default cost axis of a
sweep), `cpu_seconds` and `train_tokens`, each summed over the sessions of a resumed run and
multiplied by its processes. `cost` is money: device-hours x `report.price_per_device_hour`
plus the tokens an endpoint judge was paid for (`judge_tokens`: the records this run computed,
not those it took from a sibling variant or the shared eval cache) x
`eval.judge.price_per_million_tokens` / 1e6; None when neither price is set. The sweep writes its rows
and front into `sweep.json`; the report renders them from there, and calls `tradeoff_rows` only
for run directories given together (no sweep). Sits below both, so neither imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tunelab.runs import RunPaths, read_json, read_jsonl


def _json(path: Path) -> Any:
    """A JSON file's content; None when missing or unreadable (the report lists those)."""
    try:
        return read_json(path) if path.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _config(path: Path) -> dict[str, Any]:
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _evals(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> task label -> eval summary, for every readable `eval/*/*/summary.json`."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    variants = sorted(p for p in (root / "eval").iterdir() if p.is_dir()) if (root / "eval").is_dir() else []
    for vdir in variants:  # in name order, as the report lists them: the first score is the default metric
        for tdir in sorted(p for p in vdir.iterdir() if p.is_dir()):
            s = _json(tdir / "summary.json")
            if isinstance(s, dict):
                out.setdefault(vdir.name, {})[tdir.name] = s
    return out


def tradeoff_rows(run_dirs: Sequence[Path], price_per_device_hour: float | None = None) -> list[dict[str, Any]]:
    """One row per run directory, from its files (see the module docstring).

    Args:
        run_dirs: run directories (a sweep's `trials/<name>/`, or any runs); missing files
            leave their columns None.
        price_per_device_hour: turns device-hours into `cost` (None: no cost).

    Returns:
        The rows, in the order of `run_dirs`.
    """
    rows = []
    for d in run_dirs:
        root = Path(d)
        paths = RunPaths(root)
        sm, trial = _json(paths.summary) or {}, _json(root / "trial.json") or {}
        metrics, evals = read_jsonl(paths.metrics), _evals(root)
        config = _config(paths.config)
        tuned = _tuned_variant(config, evals)
        per_source = {}  # "val: source" -> loss at the last evaluation of each split
        for split in ("val", "test"):
            last = next((r for r in reversed(metrics) if r.get("split") == split and r.get("per_source")), {})
            per_source.update({f"{split}: {s}": v.get("loss") for s, v in (last.get("per_source") or {}).items()})
        pipeline = _json(root / "pipeline.json") or {}
        stages = pipeline.get("stages") or {}
        other = sum(st.get("seconds_total") or 0.0 for k, st in stages.items() if k != "train")
        other += (pipeline.get("startup") or {}).get("seconds_total") or 0.0
        wall = sm.get("wall_time_s")
        total = (wall or 0.0) + other if (wall is not None or other) else None
        devices = int(sm.get("world_size") or 1)
        cpu = sm.get("cpu_time_s") * devices if sm.get("cpu_time_s") is not None else None
        gpu = sm.get("device_time_s") * devices if sm.get("device_time_s") is not None else None
        judge = judge_spend(root)
        judge_price = (((config.get("eval") or {}).get("judge") or {}).get("price_per_million_tokens"))
        rows.append({
            "name": trial.get("name") or root.name, "dir": str(root),
            "status": trial.get("status") or ("done" if sm else "not trained"), "error": trial.get("error"),
            "values": trial.get("values") or {}, "variant": tuned,
            **{k: sm.get(k) for k in ("trainable_params", "total_params", "wall_time_s", "train_time_s", "peak_memory_mb",
                                      "tokens_per_s", "best_val_loss", "best_step", "stop_reason", "steps")},
            "cpu_seconds": cpu, "device_seconds": gpu if gpu is not None else cpu,
            "device_kind": "gpu" if gpu is not None else ("cpu" if cpu is not None else None),
            "train_tokens": sm.get("tokens_seen"),
            "pipeline_s": total, "devices": devices,
            "device_hours": total / 3600 * devices if total is not None else None,
            "judge_tokens": judge,
            "judge_cost": judge["total"] * judge_price / 1e6 if judge is not None and judge_price is not None else None,
            "scores": _scores(evals.get(tuned)), "base_scores": _scores(evals.get("base")),
            "variant_scores": {v: _scores(by_task) for v, by_task in evals.items()},
            "judges": sorted({str(s["judge"]) for by_task in evals.values() for s in by_task.values() if s.get("judge")}),
            "base_model": _base_model(config),
            "selection": _selection(root),
            "per_source_loss": per_source,
            **{f"{split}_curve": [(r["step"], r["loss"]) for r in metrics
                                  if r.get("split") == split and r.get("loss") is not None]
               for split in ("train", "val", "test")},
        })
    return priced(rows, price_per_device_hour)


def priced(rows: Sequence[dict[str, Any]], price_per_device_hour: float | None) -> list[dict[str, Any]]:
    """The rows with `device_cost` = device-hours x price and `cost` = that plus the row's
    `judge_cost` (each None without its price; `cost` None when both are)."""
    p, out = price_per_device_hour, []
    for r in rows:
        device = r["device_hours"] * p if r.get("device_hours") is not None and p is not None else None
        parts = [c for c in (device, r.get("judge_cost")) if c is not None]
        out.append({**r, "device_cost": device, "cost": sum(parts) if parts else None})
    return out


def judge_spend(root: Path) -> dict[str, float] | None:
    """Tokens an endpoint judge was paid for by this run (its `tunelab run` and stand-alone
    `tunelab eval`s): summed over the records of every `eval/*/*/samples.jsonl` the run computed
    itself (records copied from a sibling variant or served by the shared cache cost nothing
    here). None when no evaluation of the run counted judge tokens (no endpoint judge)."""
    judged = [d for d in sorted((Path(root) / "eval").glob("*/*")) if d.is_dir()
              and any((_json(f) or {}).get("judge_usage") is not None for f in d.glob("summary*.json"))]
    if not judged:
        return None
    prompt = completion = 0.0
    for d in judged:
        for r in read_jsonl(d / "samples.jsonl"):
            t = r.get("judge_tokens")
            if isinstance(t, dict) and not r.get("copied_from") and not r.get("shared_cache"):
                prompt += float(t.get("prompt_tokens") or 0.0)
                completion += float(t.get("completion_tokens") or 0.0)
    return {"prompt": round(prompt), "completion": round(completion), "total": round(prompt + completion)}


def _scores(by_task: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{"task/metric": value, CI, direction, n} of one variant's eval summaries."""
    out = {}
    for task, s in (by_task or {}).items():
        for m, v in s.get("metrics", {}).items():
            out[f"{task}/{m}"] = {k: v.get(k) for k in ("value", "ci_low", "ci_high", "higher_is_better", "n")}
    return out


def _base_model(config: dict[str, Any]) -> str | None:
    """What a run's `base` is: model name, revision and chat template of its config (runs that
    agree on it evaluate the same base)."""
    model = config.get("model") or {}
    if not model.get("name"):
        return None
    template = (config.get("data") or {}).get("chat_template") or "auto"
    return f"{model['name']}@{model.get('revision') or 'default'} (template {template})"


def _selection(root: Path) -> dict[str, Any] | None:
    """The run's own checkpoint selection (`eval/selection.json`), the fields a table shows."""
    sel = _json(root / "eval" / "selection.json")
    if not isinstance(sel, dict):
        return None
    keys = ("task", "metric", "higher_is_better", "selection_split", "report_split", "decision", "best", "top",
            "resolved", "resolved_because", "candidates", "report", "difference_vs_base")
    return {**{k: sel.get(k) for k in keys}, "carved": bool(sel.get("carved"))}


def _tuned_variant(config: dict[str, Any], evals: dict[str, Any]) -> str:
    """The variant a row reports: the compared one (`compare.variants[1:]`), else final or best."""
    wanted = ((config.get("compare") or {}).get("variants") or ["base", "final"])[1:]
    for v in [*wanted, "final", "best"]:
        if v in evals:
            return v
    return next((v for v in evals if v != "base"), "final")


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool) -> list[bool]:
    """For (cost, score) points: True where no other point is at least as cheap and as good and
    strictly better in one of the two."""
    sign = 1.0 if higher_is_better else -1.0
    out = []
    for i, (c, s) in enumerate(points):
        dominated = any(
            c2 <= c and sign * s2 >= sign * s and (c2 < c or sign * s2 > sign * s)
            for j, (c2, s2) in enumerate(points) if j != i)
        out.append(not dominated)
    return out


def objective_value(row: dict[str, Any], metric: str) -> float | None:
    """An objective's value in a trade-off row: a TASK/METRIC score, else the column of that name."""
    score = (row.get("scores") or {}).get(metric)
    value = score.get("value") if score else row.get(metric)
    return None if value is None else float(value)


def pareto_over(rows: Sequence[dict[str, Any]], objectives: Sequence[tuple[str, str]]) -> dict[str, bool]:
    """Row name -> whether it is on the Pareto front of `objectives` ((metric, "maximize" |
    "minimize") each): no other row is at least as good in every objective and better in one.
    Rows missing an objective's value are left out (not on the front)."""
    signed = {}
    for r in rows:
        vals = [objective_value(r, m) for m, _ in objectives]
        if all(v is not None for v in vals):
            signed[r["name"]] = [v if d == "maximize" else -v for v, (_, d) in zip(vals, objectives)]
    return {name: not any(all(b >= a for a, b in zip(mine, other)) and any(b > a for a, b in zip(mine, other))
                          for o, other in signed.items() if o != name)
            for name, mine in signed.items()}


def pareto_points(rows: Sequence[dict[str, Any]], metric: str | None, cost: str,
                  objectives: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The Pareto plot's data: the chosen score (task/metric, else best val loss) against `cost`.

    Args:
        rows: trade-off rows (`tradeoff_rows`).
        metric: "task/metric" to plot; None = the first score of the rows.
        cost: the row key on the cost axis (`device_seconds`, `wall_time_s`, `peak_memory_mb`, ...).

        objectives: with two or more ((metric, direction), an Optuna search's), the front is the
            one over all of them (`pareto_over`), not over the two plotted axes alone.

    Returns:
        {"metric", "cost", "higher_is_better", "points": [{name, cost, score, CI, front}]}; runs
        written before tunelab recorded `cost` (no row has it) are plotted against wall time,
        and "cost_asked" says so; "objectives" when the front is over the search's objectives.
    """
    asked = cost
    if rows and all(r.get(cost) is None for r in rows) and any(r.get("wall_time_s") is not None for r in rows):
        cost = "wall_time_s"
    keys = [k for r in rows for k in r["scores"]]
    metric = metric or (keys[0] if keys else None)
    pts = []
    for r in rows:
        if metric and metric in r["scores"]:
            sc = r["scores"][metric]
            hib = bool(sc.get("higher_is_better", True))
            score, lo, hi = sc.get("value"), sc.get("ci_low"), sc.get("ci_high")
        else:
            hib, score, lo, hi = False, r.get("best_val_loss"), None, None
        if score is not None and r.get(cost) is not None:
            pts.append({"name": r["name"], "cost": float(r[cost]), "score": float(score), "ci_low": lo, "ci_high": hi,
                        "higher_is_better": hib})
    name = metric if metric and any(metric in r["scores"] for r in rows) else "best_val_loss"
    hib = pts[0]["higher_is_better"] if pts else True
    for p, front in zip(pts, pareto_front([(p["cost"], p["score"]) for p in pts], hib)):
        p["front"] = front
    extra: dict[str, Any] = {"cost_asked": asked} if asked != cost else {}
    if len(objectives) >= 2:
        over = pareto_over(rows, objectives)
        for p in pts:
            p["front"] = over.get(p["name"], False)
        extra["objectives"] = [{"metric": m, "direction": d} for m, d in objectives]
    return {"metric": name, "cost": cost, "higher_is_better": hib, "points": pts, **extra}
