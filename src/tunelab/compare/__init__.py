"""The compare stage: what fine-tuning changed, written as JSON under run_dir/compare/.

    compare/next_token.json    per prompt: top-k first tokens per variant, entropy, KL / JS to
                               the reference variant, whether the prompt occurs in training, and
                               one reply scored token by token by every variant
    compare/generations.json   the same prompts answered by every variant (greedy, same
                               settings), diffs against the reference, whether the code parses
    compare/token_classes.json token shares by class per variant (compare outputs, eval outputs)
    compare/paired.json        paired tests on every task two variants share (from eval files)
    compare/baselines.json     base vs tuned vs prompting baselines, one row per metric

`run_compare(run_dir, exp)` loads each variant once (next tokens and generations together);
the model views are reused while their fingerprint (settings, data, the variants' weights)
is unchanged, so a re-run after a crash or a new eval only redoes the cheap file-based parts.
The plain names belong to the run's own settings (its config.yaml), which the report reads; a
compare with other prompts or settings (`tunelab compare RUN --set compare.prompts=[...]`) writes
`compare/<view>@KEY.json` beside them, with what differs under "keyed", never over them.

`compare.variants` may name variants of other runs (`../deep:final`): each is loaded and
prompted with its own run's chat template, labelled `deep:final` in every file, and its eval
results are read where they are (`variants.result_index`). A sweep compares its trials through
the same `compare_variants`, into SWEEP_DIR/compare/ (`tunelab.sweep.compare`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.compare.next_token import print_next_token
from tunelab.compare.paired import baseline_table, eval_index, paired_comparisons
from tunelab.compare.token_classes import class_shares
from tunelab.compare.variants import Variant, result_index, run_variants
from tunelab.compare.views import model_views
from tunelab.evaluation.results import summary_records
from tunelab.runs import fingerprint, read_json, write_json

__all__ = ["run_compare", "compare_command", "compare_variants", "token_class_report", "Variant"]


def compare_command(run_dir: Path, overrides: list[str], console: Console | None = None,
                    limit: int | None = None) -> dict[str, str]:
    """`tunelab compare RUN_DIR`: the run's config with `compare.*` / `eval.*` overrides, capped
    at the first `limit` prompts and items (`config.capped`), then `run_compare`."""
    from tunelab.config import capped, load_config, parse_override
    from tunelab.errors import ConfigError

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    for item in overrides:
        parse_override(item, ("compare", "eval"), "comparing an existing run")
    from tunelab.evaluation.registry import validate_eval_config

    exp = load_config(run_dir / "config.yaml", overrides)
    if limit is not None:
        exp = capped(exp, limit)
        (console or Console(stderr=True)).print(
            f"compare: capped at the first {limit} prompts and {exp.eval.limit} items per task (--limit): a quick "
            "look, written beside the run's own files (compare/<view>@KEY.json, summary@KEY.json)",
            markup=False, highlight=False)
    validate_eval_config(exp.eval, runs_tasks=bool(exp.compare.baselines))
    return run_compare(run_dir, exp, console, run_exp=load_config(run_dir / "config.yaml"))


def compare_settings(exp: Any) -> dict[str, Any]:
    """What the compare views depend on besides the weights: compare.* and the eval seed and CI settings."""
    ev = exp.eval
    return {**exp.compare.model_dump(mode="json"), "eval_seed": ev.seed, "confidence": ev.confidence,
            "bootstrap_resamples": ev.bootstrap_resamples}


def run_compare(run_dir: Path, exp: Any, console: Console | None = None, run_exp: Any = None) -> dict[str, Any]:
    """Run every compare view for `exp.compare.variants` of a run; returns {view: file written}.

    `run_exp` is the run's own experiment (default: `exp`): when `exp`'s compare settings differ
    from it, every view is written as `<view>@KEY.json`, beside the run's own files. Variants of
    other runs (`OTHER_RUN:final`) take part in every view under readable labels (`variants`).
    """
    console = console or Console(stderr=True)
    run_dir, cfg = Path(run_dir), exp.compare
    notes: list[str] = []
    own, mine = compare_settings(run_exp or exp), compare_settings(exp)
    keyed = {k: {"run": own.get(k), "here": v} for k, v in mine.items() if own.get(k) != v}
    suffix = f"@{fingerprint({k: d['here'] for k, d in keyed.items()})}" if keyed else ""
    extra = {"keyed": keyed} if keyed else {}
    variants, missing = run_variants(run_dir, exp, list(cfg.variants))  # before baselines: a bad ref fails fast
    if cfg.baselines:
        from tunelab.compare.baselines import run_baselines

        notes += run_baselines(run_dir, exp, list(cfg.baselines), console)
    notes += missing
    index, found = result_index(run_dir, variants)
    return compare_variants(run_dir / "compare", exp, variants, index, console, notes=notes + found, suffix=suffix,
                            extra=extra, reference=cfg.variants[0])


def compare_variants(out: Path, exp: Any, variants: list[Variant], index: dict[str, dict[str, Path]],
                     console: Console, *, notes: list[str] | None = None, suffix: str = "",
                     extra: dict[str, Any] | None = None, reference: str | None = None,
                     all_pairs: bool = False) -> dict[str, str]:
    """Every compare view of `variants` (the first is the reference) into `out`; returns {view: file}.

    The one path behind a run's compare and a sweep's comparison of its trials.

    Args:
        index: {label: {task label: result folder}}: the eval results the paired tests, the
            token classes and the baselines table read (`variants.result_index`).
        reference: the reference's label when no variant resolved (the paired tests still run).
        all_pairs: pair every two variants, not only each against the reference.
    """
    notes, extra = list(notes or []), dict(extra or {})
    written: dict[str, str] = {}
    labels = [v.label for v in variants]
    if len(variants) >= 2:
        written.update(model_views(out, exp, variants, console, suffix, extra))
        print_next_token(read_json(written["next_token"]), console)
    else:
        notes.append(f"next-token and side-by-side views need two variants; there are {labels or 'none'}")

    written["token_classes"] = _write(out / f"token_classes{suffix}.json",
                                      {**token_class_report(None, out / f"generations{suffix}.json", index), **extra})
    ref_label = labels[0] if labels else (reference or "base")
    tuned = labels[1] if len(labels) > 1 else None
    ev, cfg = exp.eval, exp.compare
    paired = paired_comparisons(None, ref_label, tuned, alpha=cfg.alpha, power=cfg.power, confidence=ev.confidence,
                                n_resamples=ev.bootstrap_resamples, permutation_resamples=cfg.permutation_resamples,
                                seed=ev.seed, index=index, among=labels if all_pairs else None)
    # Where each label's results are, relative to the folder compare/ sits in: the report reads
    # the results of variants of other runs from there.
    root = out.parent
    folders = {v: {t: os.path.relpath(f, root) for t, f in tasks.items()} for v, tasks in index.items()}
    written["paired"] = _write(out / f"paired{suffix}.json", {**paired, "folders": folders, "notes": notes, **extra})
    written["baselines"] = _write(out / f"baselines{suffix}.json", {"rows": baseline_table(None, index), **extra})
    for n in notes:
        console.print(f"compare: {n}", markup=False, highlight=False)
    return written


def _write(path: Path, obj: Any) -> str:
    write_json(path, obj)
    return str(path)


def token_class_report(run_dir: Path | None, gens_file: Path | None = None,
                       index: dict[str, dict[str, Path]] | None = None) -> dict[str, Any]:
    """Token-class shares per variant over the compare generations (`gens_file`, default the
    run's compare/generations.json) and each eval task's generations (those of `index`, default
    the run's eval results)."""
    by_variant: dict[str, dict[str, Any]] = {}
    gens_file = gens_file or Path(run_dir) / "compare" / "generations.json"
    if gens_file.is_file():
        items = read_json(gens_file).get("items", [])
        for v in (items[0]["outputs"] if items else {}):
            by_variant.setdefault(v, {})["compare"] = class_shares(it["outputs"][v]["text"] for it in items)
    for v, tasks in (eval_index(run_dir) if index is None else index).items():
        for task, folder in tasks.items():
            texts = [g for r in summary_records(folder) for g in (r.get("generations") or []) if g]
            if texts:
                by_variant.setdefault(v, {})[f"eval/{task}"] = class_shares(texts)
    return {"unit": "lexical tokens (words, numbers, operators, whitespace runs)", "by_variant": by_variant}
