"""Where an evaluation's results go, keyed by everything that changes them.

A run's own configuration (the `eval` section of its config.yaml: what `tunelab run` scores)
owns the plain names the report reads: `eval/<variant>/<task>/summary.json` and
`eval/selection.json`. An evaluation whose result-relevant settings differ from the run's (task
options or data path, limit, prompt, style, n / temperature / max_new_tokens, seed, judge,
backend, CI settings, thinking) is written beside them under a key, never over them:

    summary@limit-5.json      only the item limit differs
    summary@3f09c2d1a7b4e655.json   anything else: a hash of the differing settings,
                              which the file records under "keyed" (run value vs this one)

A task the run's own configuration does not evaluate has no own result to protect: a one-off
evaluation of it writes the plain name. This module is light on purpose: the report and
compare read `summary_records` without loading the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.runs import fingerprint, read_json, read_jsonl

# EvalConfig fields that change a task's results (the split is in the folder name instead;
# batch size, models and allow_code_execution change which work runs, not what it yields).
RESULT_FIELDS = ("limit", "prompt", "style", "num_fewshot", "max_new_tokens", "n", "temperature", "top_p", "seed",
                 "backend", "bootstrap_resamples", "confidence", "enable_thinking")


def result_settings(cfg: Any, task: str) -> dict[str, Any]:
    """The settings of EvalConfig `cfg` that change the results of `task`, as JSON values."""
    out = {k: getattr(cfg, k) for k in RESULT_FIELDS}
    out["options"] = dict(cfg.task_options.get(task) or {})
    out["judge"] = cfg.judge.model_dump(mode="json", exclude={"price_per_million_tokens"})  # a price is no result
    if cfg.backend != "transformers":
        out["endpoint"] = cfg.endpoint.model_dump(mode="json")
    return out


def differing_settings(cfg: Any, own: Any, task: str) -> dict[str, dict[str, Any]] | None:
    """{setting: {"run": own value, "here": cfg's value}} where `cfg` differs from the run's own
    `own` for `task`; {} when they agree; None when `own` does not evaluate `task` (no own
    result to protect)."""
    if own is None or task not in own.tasks:
        return None
    mine, theirs = result_settings(cfg, task), result_settings(own, task)
    return {k: {"run": theirs.get(k), "here": v} for k, v in mine.items() if theirs.get(k) != v}


def key_name(diff: dict[str, dict[str, Any]]) -> str:
    """The short key of a set of differing settings: `limit-N` when only the limit differs."""
    if set(diff) == {"limit"} and diff["limit"]["here"] is not None:
        return f"limit-{diff['limit']['here']}"
    return fingerprint({k: d["here"] for k, d in diff.items()})


def summary_path(out_dir: Path, diff: dict[str, dict[str, Any]] | None, fp: str, n: int, limit: int | None) -> Path:
    """Where a task's summary goes: keyed (`summary@KEY.json`) when the settings differ from
    the run's own (`diff` non-empty); else summary.json, unless this is a capped look
    (`--limit`) at fewer items than summary.json already covers with the same settings, which
    goes beside it as summary@limit-N.json so the fuller one stays."""
    if diff:
        return out_dir / f"summary@{key_name(diff)}.json"
    path = out_dir / "summary.json"
    if diff is not None or limit is None or not path.is_file():
        return path  # diff == {}: these are the run's own settings, summary.json is theirs
    try:
        old = read_json(path)
    except (OSError, ValueError):
        return path
    if old.get("fingerprint") == fp and int(old.get("n") or 0) > n:
        return out_dir / f"summary@limit-{limit}.json"
    return path


def cap_text(summary: dict[str, Any]) -> str | None:
    """"first 5 of 60 items" when the summary covers fewer items than its split has (a `--limit`
    / `eval.limit` look), else None. Summaries written before the split size was recorded
    (no `n_total`) say only that a limit capped them."""
    n, total = summary.get("n"), summary.get("n_total")
    if isinstance(n, int) and isinstance(total, int):
        return f"first {n} of {total} items" if n < total else None
    limit = summary.get("limit") or ((summary.get("keyed") or {}).get("limit") or {}).get("here")
    return f"first {n} items (limit {limit})" if limit and isinstance(n, int) and n >= limit else None


def mixed_caps(summaries: dict[str, dict[str, Any]]) -> str | None:
    """One sentence when variants' summaries of one task were capped differently (some capped,
    some not, or other caps), so their numbers must not be read as a comparison; else None."""
    caps = {v: cap_text(s) or f"all {s.get('n')} items" for v, s in summaries.items()}
    if len(set(caps.values())) < 2 or not any(cap_text(s) for s in summaries.values()):
        return None
    return ("scored on different items (" + "; ".join(f"{v}: {c}" for v, c in caps.items())
            + "): not a like-for-like comparison")


def summary_records(result_dir: Path, summary: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The records of `result_dir/samples.jsonl` that `summary` (default: the folder's
    summary.json) was computed from: the cache also holds records of other settings, weights or
    items (it only grows), which must not leak into paired tests or examples."""
    if summary is None:
        path = Path(result_dir) / "summary.json"
        try:
            summary = read_json(path) if path.is_file() else {}
        except (OSError, ValueError):
            summary = {}
    fp, ids = summary.get("fingerprint"), summary.get("item_ids")
    rows = [r for r in read_jsonl(Path(result_dir) / "samples.jsonl") if fp is None or r.get("fingerprint") == fp]
    if ids is None:
        return rows
    by_id = {str(r.get("id")): r for r in rows}  # the latest record of an id wins, as in the engine
    return [by_id[i] for i in map(str, ids) if i in by_id]
