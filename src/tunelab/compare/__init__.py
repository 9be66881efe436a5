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
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.compare.generations import decoding_settings, generate_outputs, side_by_side
from tunelab.compare.next_token import print_next_token
from tunelab.compare.paired import baseline_table, eval_index, paired_comparisons
from tunelab.compare.token_classes import class_shares
from tunelab.evaluation.results import summary_records
from tunelab.progress import track
from tunelab.runs import fingerprint, read_json, write_json

__all__ = ["run_compare", "compare_command"]


def compare_command(run_dir: Path, overrides: list[str], console: Console | None = None) -> dict[str, str]:
    """`tunelab compare RUN_DIR`: the run's config with `compare.*` / `eval.*` overrides, then
    `run_compare`."""
    from tunelab.config import load_config, parse_override
    from tunelab.errors import ConfigError

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    for item in overrides:
        parse_override(item, ("compare", "eval"), "comparing an existing run")
    from tunelab.evaluation.registry import validate_eval_config

    exp = load_config(run_dir / "config.yaml", overrides)
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
    from it, every view is written as `<view>@KEY.json`, beside the run's own files.
    """
    console = console or Console(stderr=True)
    run_dir, cfg = Path(run_dir), exp.compare
    out, notes, written = run_dir / "compare", [], {}
    own, mine = compare_settings(run_exp or exp), compare_settings(exp)
    keyed = {k: {"run": own.get(k), "here": v} for k, v in mine.items() if own.get(k) != v}
    suffix = f"@{fingerprint({k: d['here'] for k, d in keyed.items()})}" if keyed else ""
    extra = {"keyed": keyed} if keyed else {}
    if cfg.baselines:
        from tunelab.compare.baselines import run_baselines

        notes += run_baselines(run_dir, exp, list(cfg.baselines), console)

    variants, missing = _available(run_dir, cfg.variants)
    notes += [f"variant {v} is not in this run; left out" for v in missing]
    if len(variants) >= 2:
        written.update(_model_views(run_dir, exp, variants, console, suffix, extra))
        print_next_token(read_json(written["next_token"]), console)
    else:
        notes.append(f"next-token and side-by-side views need two variants; this run has {variants or 'none'}")

    written["token_classes"] = _write(out / f"token_classes{suffix}.json",
                                      {**token_class_report(run_dir, out / f"generations{suffix}.json"), **extra})
    reference = variants[0] if variants else cfg.variants[0]
    tuned = variants[1] if len(variants) > 1 else None
    ev = exp.eval
    paired = paired_comparisons(run_dir, reference, tuned, alpha=cfg.alpha, power=cfg.power, confidence=ev.confidence,
                                n_resamples=ev.bootstrap_resamples, permutation_resamples=cfg.permutation_resamples,
                                seed=ev.seed)
    written["paired"] = _write(out / f"paired{suffix}.json", {**paired, "notes": notes, **extra})
    written["baselines"] = _write(out / f"baselines{suffix}.json", {"rows": baseline_table(run_dir), **extra})
    for n in notes:
        console.print(f"compare: {n}", markup=False, highlight=False)
    return written


def _available(run_dir: Path, refs: list[str]) -> tuple[list[str], list[str]]:
    from tunelab.models.adapters import list_variants

    have = list_variants(run_dir)
    ok = [r for r in refs if r in have or Path(r).is_dir()]
    return ok, [r for r in refs if r not in ok]


def _write(path: Path, obj: Any) -> str:
    write_json(path, obj)
    return str(path)


def _fingerprint(run_dir: Path, exp: Any, variants: list[str]) -> str:
    from tunelab.models.ref import ModelRef

    c = exp.compare
    key = {"views": 2, "prompts": c.prompts, "n_prompts": c.n_prompts, "top_k": c.top_k, "max_new_tokens": c.max_new_tokens,
           "near_duplicate": c.near_duplicate, "data": exp.data.model_dump(mode="json"), "seed": exp.seed,
           "eval_seed": exp.eval.seed, "variants": [ModelRef.parse(v, run_dir, base=exp.model).identity() for v in variants]}
    if exp.eval.enable_thinking is not None:  # the prompts render with the template's thinking switch
        key["enable_thinking"] = exp.eval.enable_thinking
    return fingerprint(key)


def _model_views(run_dir: Path, exp: Any, variants: list[str], console: Console, suffix: str = "",
                 extra: dict[str, Any] | None = None) -> dict[str, str]:
    """next_token.json and generations.json: each variant loaded once, one after the other."""
    import gc

    import torch

    from tunelab.compare.next_token import (divergences, entropy_bits, next_token_logprobs, prompt_cases,
                                            reply_token_probs, reply_view, top_k, training_overlap)
    from tunelab.data.mixing import build_splits
    from tunelab.generation import Prompt, TransformersGenerator
    from tunelab.models.ref import ModelRef

    cfg, out = exp.compare, run_dir / "compare"
    fp = _fingerprint(run_dir, exp, variants)
    files = {"next_token": out / f"next_token{suffix}.json", "generations": out / f"generations{suffix}.json"}
    if all(f.is_file() and read_json(f).get("fingerprint") == fp for f in files.values()):
        # The model outputs are current; the analysis of them (diffs, code checks) is cheap and
        # redone, so a fix there reaches old runs without regenerating.
        gens = read_json(files["generations"])
        outputs = {v: [it["outputs"][v]["text"] for it in gens["items"]] for v in gens["variants"]}
        rows = side_by_side(outputs, gens["reference"]) if gens["items"] else []
        for it, row in zip(gens["items"], rows):
            it["outputs"] = row
        write_json(files["generations"], gens)
        console.print("compare: next-token and generation views are up to date")
        return {k: str(v) for k, v in files.items()}

    splits = build_splits(exp.data, exp.seed)
    cases = prompt_cases(exp, splits)
    overlap = training_overlap(cases, splits.train, cfg.near_duplicate)
    prompts = [Prompt(messages=c.messages) for c in cases]
    logps, tops, outputs, rendered, timing, scored = {}, {}, {}, [], {}, {}
    # The reply each prompt is scored on: its reference when known, else the tuned variant's
    # greedy output, so the tuned variant goes first when some prompt has no reference.
    tuned = variants[1]
    order = variants if all(c.reference for c in cases) else [tuned] + [v for v in variants if v != tuned]
    replies = [(c.reference, "reference reply") if c.reference else (None, f"{tuned}'s output") for c in cases]
    for ref in track(order, "compare variants", console):
        t0 = time.perf_counter()
        console.print(f"compare: {ref} on {len(cases)} prompts")
        model, tok, _ = ModelRef.parse(ref, run_dir, base=exp.model).load()
        gen = TransformersGenerator(model, tok, exp.eval.batch_size, exp.data.chat_template,
                                    enable_thinking=exp.eval.enable_thinking)  # as trained and evaluated
        texts = [gen.render(p) for p in prompts]
        rendered = rendered or texts
        logps[ref] = next_token_logprobs(model, tok, texts)
        tops[ref] = [top_k(lp, tok, cfg.top_k) for lp in logps[ref]]
        outputs[ref] = generate_outputs(gen, prompts, cfg.max_new_tokens, exp.eval.seed)
        if ref == tuned:
            replies = [(text, src) if text is not None else (out, src) for (text, src), out in zip(replies, outputs[ref])]
        scored[ref] = [reply_token_probs(model, tok, t, r, cfg.max_new_tokens) for t, (r, _) in zip(texts, replies)]
        timing[ref] = round(time.perf_counter() - t0, 2)
        del model, gen
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    reference = variants[0]
    items = []
    for i, c in enumerate(cases):
        items.append({
            "id": c.id, "origin": c.origin, "messages": c.messages, "rendered": rendered[i], "reference": c.reference,
            "in_train": overlap[i],
            "top": {v: tops[v][i] for v in variants},
            "entropy_bits": {v: entropy_bits(logps[v][i]) for v in variants},
            "divergence": {v: divergences(logps[reference][i], logps[v][i]) for v in variants if v != reference},
            "reply": reply_view(tok, replies[i][1], {v: scored[v][i] for v in variants}, reference),
        })
    meta = {"fingerprint": fp, "variants": variants, "reference": reference, "seconds": timing,
            "chat_template": exp.data.chat_template, **(extra or {})}
    write_json(files["next_token"], {**meta, "top_k": cfg.top_k, "units": "bits", "prompts": items})
    rows = side_by_side(outputs, reference)
    gens = [{"id": c.id, "messages": c.messages, "reference": c.reference, "in_train": overlap[i]["status"],
             "outputs": rows[i]} for i, c in enumerate(cases)]
    write_json(files["generations"], {**meta, "settings": decoding_settings(cfg.max_new_tokens, exp.eval.seed),
                                      "items": gens})
    return {k: str(v) for k, v in files.items()}


def token_class_report(run_dir: Path, gens_file: Path | None = None) -> dict[str, Any]:
    """Token-class shares per variant over the compare generations (`gens_file`, default the
    run's compare/generations.json) and each eval task's generations."""
    by_variant: dict[str, dict[str, Any]] = {}
    gens_file = gens_file or run_dir / "compare" / "generations.json"
    if gens_file.is_file():
        items = read_json(gens_file).get("items", [])
        for v in (items[0]["outputs"] if items else {}):
            by_variant.setdefault(v, {})["compare"] = class_shares(it["outputs"][v]["text"] for it in items)
    for v, tasks in eval_index(run_dir).items():
        for task, folder in tasks.items():
            texts = [g for r in summary_records(folder) for g in (r.get("generations") or []) if g]
            if texts:
                by_variant.setdefault(v, {})[f"eval/{task}"] = class_shares(texts)
    return {"unit": "lexical tokens (words, numbers, operators, whitespace runs)", "by_variant": by_variant}
