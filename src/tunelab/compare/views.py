"""The compare views that load models: next_token.json and generations.json, every variant
loaded once (one after the other) and asked the same prompts, each through its own run's chat
template (`ModelRef.load`), so a variant of another run is prompted exactly as it was trained.

The files carry a fingerprint of everything they depend on (the compare settings, the data the
prompts come from, every variant's weights and, for variants of other runs, their labels and
templates); while it holds, the models are not loaded again and only the cheap analysis of the
stored outputs (diffs, code checks) is redone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.compare.generations import decoding_settings, generate_outputs, side_by_side
from tunelab.compare.variants import Variant
from tunelab.progress import track
from tunelab.runs import fingerprint, read_json, write_json


def views_fingerprint(exp: Any, variants: list[Variant]) -> str:
    """The key of the model views (a run's own variants are keyed as before other runs could be
    compared, so existing views stay current)."""
    c = exp.compare
    key = {"views": 2, "prompts": c.prompts, "n_prompts": c.n_prompts, "top_k": c.top_k, "max_new_tokens": c.max_new_tokens,
           "near_duplicate": c.near_duplicate, "data": exp.data.model_dump(mode="json"), "seed": exp.seed,
           "eval_seed": exp.eval.seed, "variants": [v.cache_key() for v in variants],
           **({"prompt_ids": c.prompt_ids} if c.prompt_ids else {})}  # absent when unset: older views stay current
    if exp.eval.enable_thinking is not None:  # the prompts render with the template's thinking switch
        key["enable_thinking"] = exp.eval.enable_thinking
    return fingerprint(key)


def model_views(out: Path, exp: Any, variants: list[Variant], console: Console, suffix: str = "",
                extra: dict[str, Any] | None = None) -> dict[str, str]:
    """Write `out/next_token{suffix}.json` and `out/generations{suffix}.json` for `variants` (the
    first is the reference, the second the tuned one); returns {view: file}.

    Prompts and the in-training check come from `exp` (`compare.prompts`, else its test split).
    """
    import gc

    import torch

    from tunelab.compare.next_token import (divergences, entropy_bits, next_token_logprobs, prompt_cases,
                                            reply_token_probs, reply_view, top_k, training_overlap)
    from tunelab.data.mixing import build_splits
    from tunelab.generation import Prompt, TransformersGenerator

    cfg = exp.compare
    labels = [v.label for v in variants]
    fp = views_fingerprint(exp, variants)
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
    logps, tops, outputs, rendered, timing, scored, templates, toks = {}, {}, {}, {}, {}, {}, {}, {}
    # The reply each prompt is scored on: its reference when known, else the tuned variant's
    # greedy output, so the tuned variant goes first when some prompt has no reference.
    tuned = variants[1]
    order = variants if all(c.reference for c in cases) else [tuned] + [v for v in variants if v != tuned]
    replies = [(c.reference, "reference reply") if c.reference else (None, f"{tuned.label}'s output") for c in cases]
    for v in track(order, "compare variants", console):
        t0 = time.perf_counter()
        console.print(f"compare: {v.label} on {len(cases)} prompts", markup=False, highlight=False)
        model, tok, template = v.ref.load()  # its own run's chat template
        gen = TransformersGenerator(model, tok, exp.eval.batch_size, template,
                                    enable_thinking=exp.eval.enable_thinking)  # as trained and evaluated
        texts = [gen.render(p) for p in prompts]
        rendered[v.label], templates[v.label], toks[v.label] = texts, template, tok
        logps[v.label] = next_token_logprobs(model, tok, texts)
        tops[v.label] = [top_k(lp, tok, cfg.top_k) for lp in logps[v.label]]
        outputs[v.label] = generate_outputs(gen, prompts, cfg.max_new_tokens, exp.eval.seed)
        if v is tuned:
            replies = [(text, src) if text is not None else (o, src) for (text, src), o in zip(replies, outputs[v.label])]
        scored[v.label] = [reply_token_probs(model, tok, t, r, cfg.max_new_tokens) for t, (r, _) in zip(texts, replies)]
        timing[v.label] = round(time.perf_counter() - t0, 2)
        del model, gen
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    reference = labels[0]
    differ = len({tuple(r) for r in rendered.values()}) > 1
    items = []
    for i, c in enumerate(cases):
        item = {
            "id": c.id, "origin": c.origin, "messages": c.messages, "rendered": rendered[reference][i],
            "reference": c.reference, "in_train": overlap[i],
            "top": {v: tops[v][i] for v in labels},
            "entropy_bits": {v: entropy_bits(logps[v][i]) for v in labels},
            "divergence": {v: divergences(logps[reference][i], logps[v][i]) for v in labels if v != reference},
            "reply": reply_view(toks[reference], replies[i][1], {v: scored[v][i] for v in labels}, reference),
        }
        if differ:  # variants of runs trained with other templates see other text
            item["rendered_by"] = {v: rendered[v][i] for v in labels}
        items.append(item)
    meta = {"fingerprint": fp, "variants": labels, "reference": reference, "seconds": timing,
            "chat_template": templates[reference], "chat_templates": {v: templates[v] for v in labels},
            **(extra or {})}
    write_json(files["next_token"], {**meta, "top_k": cfg.top_k, "units": "bits", "prompts": items})
    rows = side_by_side(outputs, reference)
    gens = [{"id": c.id, "messages": c.messages, "reference": c.reference, "in_train": overlap[i]["status"],
             "outputs": {v: rows[i][v] for v in labels}} for i, c in enumerate(cases)]
    write_json(files["generations"], {**meta, "settings": decoding_settings(cfg.max_new_tokens, exp.eval.seed),
                                      "items": gens})
    return {k: str(v) for k, v in files.items()}
