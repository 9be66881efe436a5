"""The evaluation engine: every chosen variant on every chosen task, same items, cached per sample.

    run_dir/eval/<variant>/<task>[@split]/samples.jsonl   one record per sample, appended as done
    run_dir/eval/<variant>/<task>[@split]/summary.json    metrics with CIs, settings, failures

A variant is a ModelRef (`base`, `final`, `step-N`, an adapter folder), optionally with a prompt
variant after `+`: `base+few-shot` and `base+chain-of-thought` (or `base+cot`) are the prompting
baselines, the base weights asked with other prompts, evaluated and filed like any variant.

Resuming: a record is reused when its `fingerprint` (task name, version, options, split, prompt
options, generation settings, the variant's weights, template and thinking switch, the few-shot
examples, the judge) matches and its item (id and
content) is unchanged; anything else is recomputed, so an interrupted eval redoes only the
samples in flight and a changed adapter, task version or data never reuses stale generations.
Records that another run computed with the same fingerprint and runtime come from the shared
cache (`evaluation.cache`) and are copied into this run's samples.jsonl, so the run directory
stays self-contained. Models are loaded only for variants that still have work. Code-executing
tasks refuse to start without the explicit opt-in. Sandbox, judge and sessions live in an
`EvalContext`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tunelab.config import EvalConfig, Experiment
from tunelab.errors import did_you_mean
from tunelab.evaluation import stats
from tunelab.evaluation.cache import SharedCache, judge_tokens, judge_usage
from tunelab.evaluation.context import EvalContext, SessionFactory
from tunelab.evaluation.results import differing_settings, summary_path
from tunelab.evaluation.task import (
    PROMPT_VARIANTS, EvalError, GenerationSettings, PromptOptions, Sample, SampleScore, ScoringContext, Task,
)
from tunelab.generation.types import answer_texts
from tunelab.runs import append_jsonl, atomic_write_text, fingerprint as hash_json, read_json, read_jsonl, write_json
from tunelab.progress import Progress
from tunelab.evaluation.variants import expand_models, split_prompting, variant_folder
# ---- choosing what to run ---------------------------------------------------------------------


def make_tasks(cfg: EvalConfig, run: tuple[Path, Experiment] | None = None) -> list[Task]:
    """Instantiate `cfg.tasks` with their `cfg.task_options`; fails on unknown names/options.
    `run` (run directory, experiment) is bound to each task (`Task.bind_run`)."""
    from tunelab.evaluation.registry import get_task

    if not cfg.tasks:
        from tunelab.evaluation.registry import list_tasks

        raise EvalError(f"no tasks to run: pass --tasks or set eval.tasks; available: {', '.join(list_tasks())}")
    for name in cfg.task_options:
        if name not in cfg.tasks:
            raise EvalError(f"eval.task_options names '{name}', which is not in eval.tasks{did_you_mean(name, cfg.tasks)}")
    tasks = [get_task(name, **cfg.task_options.get(name, {})) for name in cfg.tasks]
    return [t.bind_run(*run) for t in tasks] if run is not None else tasks


def check_code_execution(tasks: Sequence[Task], allowed: bool) -> None:
    """Refuse code-executing tasks unless the user opted in."""
    risky = [t.name for t in tasks if t.executes_code]
    if risky and not allowed:
        raise EvalError(
            f"task(s) {', '.join(risky)} execute model-written code. It runs in tunelab's sandbox "
            "(separate process group, limits, no network where possible), but only if you opt in: "
            "pass --allow-code-execution or set eval.allow_code_execution: true"
        )


def prompt_options(task: Task, cfg: EvalConfig) -> PromptOptions:
    """The user's prompt choices, checked against what the task supports."""
    variant = task.prompt_variants[0] if cfg.prompt == "default" else cfg.prompt
    if variant not in task.prompt_variants:
        raise EvalError(f"task '{task.name}' has no '{variant}' prompt; it has: {', '.join(task.prompt_variants)}")
    styles = task.styles_for(variant)
    style = styles[0] if cfg.style == "auto" else cfg.style
    if style not in task.styles:
        raise EvalError(f"task '{task.name}' has no '{style}' style; it has: {', '.join(task.styles)}")
    if style not in styles:
        raise EvalError(f"task '{task.name}' has the '{variant}' prompt only in the {', '.join(styles)} style; "
                        f"set eval.style to {' or '.join(styles)} (or auto)")
    assert variant in PROMPT_VARIANTS
    return PromptOptions(variant=variant, style=style, num_fewshot=cfg.num_fewshot)


def generation_settings(task: Task, opts: PromptOptions, cfg: EvalConfig) -> GenerationSettings:
    """The task's settings with the user's overrides (n, temperature, ...) applied."""
    base = task.generation_settings(opts)
    updates = {k: getattr(cfg, k) for k in ("max_new_tokens", "n", "temperature", "top_p") if getattr(cfg, k) is not None}
    return dataclasses.replace(base, seed=cfg.seed, **updates)


def task_label(task: Task, split: str) -> str:
    """Folder name of a task's results: its name, plus `@split` for a non-default split."""
    return task.name if split == task.default_split else f"{task.name}@{split}"


def load_samples(task: Task, split: str, limit: int | None) -> list[Sample]:
    """The task's items of `split` (the first `limit`); ids must be unique."""
    if split not in task.splits:
        raise EvalError(f"task '{task.name}' has no split '{split}'{did_you_mean(split, task.splits)}; "
                        f"its splits: {', '.join(task.splits)}")
    samples = task.load(split)[:limit] if limit else task.load(split)
    dup = [k for k, c in Counter(s.id for s in samples).items() if c > 1]
    if dup:
        raise EvalError(f"task '{task.name}' has duplicate sample ids (first: {dup[0]}); ids key the cache")
    return samples


def fewshot_examples(task: Task, opts: PromptOptions, split: str, samples: Sequence[Sample]) -> list[Sample]:
    """The task's few-shot examples for scoring `samples` of `split`; refuses shots that are
    scored items themselves (the model would be shown the answers it is graded on)."""
    if task.fewshot_split == split:
        raise EvalError(f"task '{task.name}' takes its few-shot examples from split '{task.fewshot_split}', "
                        f"which is the evaluated split '{split}': evaluate another split or another prompt")
    shots = task.fewshot(opts)
    scored = {s.id for s in samples}
    leaked = [s.id for s in shots if s.id in scored]
    if leaked:
        raise EvalError(f"task '{task.name}': few-shot example {leaked[0]!r} (from split '{task.fewshot_split}') "
                        f"is also an item of the evaluated split '{split}'; shots must not be scored items")
    return shots


# ---- one task on one variant ------------------------------------------------------------------


def fingerprint(task: Task, split: str, opts: PromptOptions, settings: GenerationSettings, variant_id: str,
                judge_id: str | None) -> str:
    """What a cached record depends on besides its item; any change invalidates it."""
    return hash_json({"task": task.name, "version": task.version, "options": task.options(), "split": split,
                      "prompt": dataclasses.asdict(opts), "generation": dataclasses.asdict(settings),
                      "variant": variant_id, "judge": judge_id if task.mode == "generate" else None})


def item_hashes(samples: Sequence[Sample]) -> dict[str, str]:
    """sample id -> hash of the item (id and content), so re-shipped data is never served from cache."""
    return {s.id: hash_json({"id": s.id, "data": s.data}) for s in samples}


def items_fingerprint(samples: Sequence[Sample]) -> str:
    """One hash of the items scored, in order (ids and content)."""
    return hash_json(list(item_hashes(samples).items()))


def load_cache(path: Path, fp: str, items: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Reusable records by sample id (`items`: id -> item hash). The file only grows: records of
    other items (a `--limit` run asks for fewer), settings or weights stay for the evaluation that
    wants them again; only a torn line (killed mid-write) is dropped, so appends stay clean."""
    rows = read_jsonl(path)
    keep = {r["id"]: r for r in rows
            if r.get("fingerprint") == fp and r.get("id") in items and r.get("item") == items[r["id"]]}
    if path.is_file() and len(rows) != sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()):
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return keep


def run_task(task: Task, samples: Sequence[Sample], split: str, session: Any, cfg: EvalConfig,
             out_dir: Path, ctx: ScoringContext, judge_id: str | None = None,
             progress: Callable[[int], None] | None = None, variant: str | None = None,
             keyed: dict[str, dict[str, Any]] | None = None, siblings: Sequence[Path] = (),
             cache: SharedCache | None = None, n_total: int | None = None) -> dict[str, Any]:
    """Evaluate one task on one variant, resuming from `out_dir/samples.jsonl`; returns the summary.

    Args:
        variant: the name the summary records (e.g. `base+cot`); default: the session's ref.
        keyed: the settings that differ from the run's own (`results.differing_settings`):
            non-empty -> the summary goes to `summary@KEY.json`; None: no own result to protect.
        siblings: result folders of other variants of this task. Their records with the same
            fingerprint (same weights identity and settings) are copied instead of generated
            again, and a current summary of theirs is shared: `final` and the last `step-N`
            are usually the same adapter.
        cache: the shared cache across runs (`evaluation.cache`): records still missing are
            served from it, and every record computed here is stored in it.
        n_total: how many items the split has (default: len(samples)); the summary records it
            beside `n` and `limit`, so a capped look says it is one ("first 5 of 60").
    """
    opts = prompt_options(task, cfg)
    settings = generation_settings(task, opts, cfg)
    # The chat template and the backend change what the model is asked and how it answers: two
    # variants with the same weights but another template (a run trained with chatml vs plain)
    # or a one-off vLLM eval must not share records.
    asked = f"{session.identity}|{getattr(session, 'chat_template', None)}|{getattr(session, 'backend', None)}"
    if cfg.enable_thinking is not None:  # a template's thinking switch changes the prompt
        asked += f"|thinking={cfg.enable_thinking}"
    shots = fewshot_examples(task, opts, split, samples) if opts.variant == "few-shot" else []
    if shots:  # the worked examples shown are part of what the model was asked
        asked += f"|shots={items_fingerprint(shots)}"
    fp = fingerprint(task, split, opts, settings, asked, judge_id)
    path = out_dir / "samples.jsonl"
    hashes = item_hashes(samples)
    done = load_cache(path, fp, hashes)
    if progress is not None and done:
        progress(len(done))
    ci = ci_settings(cfg)
    items = items_fingerprint(samples)
    n_total = len(samples) if n_total is None else n_total
    target = summary_path(out_dir, keyed, fp, len(samples), cfg.limit)
    pending = [s for s in samples if s.id not in done]
    for sib in siblings if pending else ():
        copied = load_cache(sib / "samples.jsonl", fp, {s.id: hashes[s.id] for s in pending})
        for s in pending:
            if s.id in copied:
                done[s.id] = {**copied[s.id], "copied_from": sib.parent.name}
                append_jsonl(path, done[s.id])
        if progress is not None and copied:
            progress(len(copied))
        pending = [s for s in pending if s.id not in done]
    if not pending:
        # Every record is cached: the summary (bootstrap CIs cost seconds per corpus metric) is
        # current if it was written for these records, items and CI settings; a sibling's
        # current one is shared under this variant's name.
        for source in [target, *(sib / target.name for sib in siblings)]:
            old = _current_summary(source, fp, items, ci, n_total)
            if old is not None and source == target:
                return old
            if old is not None:
                shared = {**old, "variant": variant or session.ref, "shared_with": source.parent.parent.name}
                write_json(target, shared)
                return shared
    entry = cache.entry(fp, task, session, ctx.sandbox, shots) if cache is not None and pending else None
    with entry.claim(f"{variant or session.ref} on {task.name}") if entry is not None else contextlib.nullcontext():
        if entry is not None:
            served = entry.load({s.id: hashes[s.id] for s in pending})
            for s in pending:
                if s.id in served:
                    done[s.id] = {**served[s.id], "shared_cache": entry.key}
                    append_jsonl(path, done[s.id])
            if progress is not None and served:
                progress(len(served))
            pending = [s for s in pending if s.id not in done]
        chunk = max(1, cfg.batch_size) * 2
        for start in range(0, len(pending), chunk):
            part = pending[start : start + chunk]
            t0 = time.perf_counter()
            if task.mode == "model":
                model, tok = session.model_and_tokenizer()
                prompts, gens = [None] * len(part), [[] for _ in part]
                scores = task.score_model(part, model, tok, cfg.enable_thinking)
                t_gen, before, after = 0.0, None, None
            else:
                gen = session.generator()
                prompts = [task.build_prompt(s, opts, shots) for s in part]
                gens = gen.generate(prompts, settings)
                t_gen = time.perf_counter() - t0
                before = judge_tokens(ctx.judge)
                scores = task.score_batch(part, answer_texts(gens), ctx)  # raw text kept in the record
                after = judge_tokens(ctx.judge)
            t_score = time.perf_counter() - t0 - t_gen
            for s, p, g, sc in zip(part, prompts, gens, scores, strict=True):
                rec = {"id": s.id, "item": hashes[s.id], "fingerprint": fp, "prompt": p.to_json() if p is not None else None,
                       "generations": g, "scores": sc.generations, "values": sc.values, "extra": sc.extra,
                       "timing": {"generate_s": t_gen / len(part), "score_s": t_score / len(part)}}
                if before is not None and after is not None and after != before:
                    rec["judge_tokens"] = {"prompt_tokens": (after[0] - before[0]) / len(part),
                                           "completion_tokens": (after[1] - before[1]) / len(part)}
                if s.id == samples[0].id and p is not None:  # the report shows one item as the model got it
                    rec["rendered_prompt"] = rendered_prompt(gen, p)
                append_jsonl(path, rec)
                if entry is not None:
                    entry.store(rec)
                done[s.id] = rec
            if progress is not None:
                progress(len(part))
    records = [done[s.id] for s in samples]
    summary = summarize(task, samples, records, cfg, sandbox=ctx.sandbox)
    summary.update(variant=variant or session.ref, split=split, prompt=dataclasses.asdict(opts),
                   generation=dataclasses.asdict(settings) if task.mode == "generate" else None,
                   backend=session.backend if task.mode == "generate" else "transformers",
                   fingerprint=fp, judge=judge_id if task.mode == "generate" else None, items=items,
                   item_ids=[s.id for s in samples], keyed=keyed or None, limit=cfg.limit, n_total=n_total,
                   shared_cache=sum(1 for r in records if r.get("shared_cache")), judge_usage=judge_usage(records),
                   enable_thinking=cfg.enable_thinking, fewshot_ids=[s.id for s in shots] or None,
                   rendered_prompt=_first_rendered(records))
    write_json(target, summary)
    return summary


def rendered_prompt(generator: Any, prompt: Any) -> str | None:
    """The exact text the model got (chat template and generation prompt applied, special tokens
    included), or None where the backend does not render here (an endpoint renders on its server)."""
    render = getattr(generator, "render", None)
    return render(prompt) if callable(render) else None


def _first_rendered(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The first item's rendered prompt for the summary (None: not rendered here, or cached
    before prompts were rendered)."""
    text = records[0].get("rendered_prompt") if records else None
    return {"id": records[0]["id"], "text": text} if isinstance(text, str) else None


def _current_summary(path: Path, fp: str, items: str, ci: dict[str, Any], n_total: int) -> dict[str, Any] | None:
    """The summary at `path` if it was written for these records, items, CI settings and split size."""
    if not path.is_file():
        return None
    try:
        old = read_json(path)
    except (OSError, ValueError):
        return None
    fresh = all("ci_method" in m for m in (old.get("metrics") or {}).values())  # else: older interval rules
    ok = (old.get("fingerprint") == fp and old.get("items") == items and old.get("ci") == ci and fresh
          and old.get("n_total") == n_total)
    return old if ok else None


def ci_settings(cfg: EvalConfig) -> dict[str, Any]:
    """The bootstrap settings a summary's CIs were computed with (stored as its "ci")."""
    return {"confidence": cfg.confidence, "n_resamples": cfg.bootstrap_resamples, "seed": cfg.seed}


def summarize(task: Task, samples: Sequence[Sample], records: Sequence[dict[str, Any]], cfg: EvalConfig,
              sandbox: Any = None) -> dict[str, Any]:
    """Metrics with bootstrap CIs, failure categories and the task's extra tables."""
    scores = [SampleScore(r["values"], r["scores"], r.get("extra") or {}) for r in records]
    gens = answer_texts([r.get("generations") or [] for r in records])  # corpus metrics score answers
    metrics: dict[str, Any] = {}
    ci = ci_settings(cfg)
    for m in task.metrics:
        if m.aggregation == "mean":
            vals = [sc.values.get(m.name) for sc in scores]
            vals = [float(v) for v in vals if v is not None]
            value = sum(vals) / len(vals) if vals else float("nan")
            lo, hi, method = stats.metric_ci(vals, max((len(g) for g in gens), default=1), **ci)
            n = len(vals)
        else:
            def corpus(idx, name=m.name):
                return task.corpus_score(name, [samples[i] for i in idx], [gens[i] for i in idx], [scores[i] for i in idx])
            value = corpus(range(len(samples))) if samples else float("nan")
            # Corpus BLEU/chrF are sums of per-item n-gram counts: resample the sums (same
            # draws, same values) instead of re-scoring text once per resample.
            summed = task.corpus_stats(m.name, samples, gens, scores) if samples else None
            if summed is not None:
                lo, hi = stats.bootstrap_ci_summed(summed, **ci)
            else:
                lo, hi = stats.bootstrap_ci(list(range(len(samples))), statistic=corpus, **ci)
            n, method = len(samples), "bootstrap"
        metrics[m.name] = {"value": value, "ci_low": lo, "ci_high": hi, "ci_method": method, "n": n,
                           "higher_is_better": m.higher_is_better, "aggregation": m.aggregation}
    verdicts = Counter(str(g.get("verdict", "unknown")) for r in records for g in r["scores"])
    extra = task.report(records)
    return {
        "task": task.name, "version": task.version, "options": task.options(), "data": task.data_info(),
        "n": len(samples), "metrics": metrics, "ci": ci, "failure_categories": dict(verdicts.most_common()),
        "sandbox": getattr(sandbox, "isolation", None) if task.executes_code else None,
        "timing": {k: sum(r["timing"][k] for r in records) for k in ("generate_s", "score_s")},
        "report": extra, "warning": extra.get("warning") if isinstance(extra, dict) else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---- a run's variants x tasks -----------------------------------------------------------------


def evaluate_run(run_dir: Path, exp: Experiment, cfg: EvalConfig, session_factory: SessionFactory | None = None,
                 split: str | None = None, console: Console | None = None,
                 run_eval: EvalConfig | None = None, tasks: Sequence[Task] | None = None,
                 ectx: EvalContext | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate `cfg.models` x `cfg.tasks` of a run; returns {variant: {task label: summary}}.

    `run_eval` is the run's own `eval` section (default: read from run_dir/config.yaml): a task
    it evaluates with other result-relevant settings than `cfg`'s is written beside that
    task's summary.json, keyed (see `results`), never over it. Variants with the same weights
    identity are generated and scored once (see `run_task`'s `siblings`), variants on the same
    weights (`base`, `base+cot`) share one loaded model, and records another run or trial
    computed already come from the shared cache (`evaluation.cache`, unless `eval.shared_cache`
    is off); the console says how many. `tasks`: task objects to run instead of `cfg.tasks`
    (checkpoint selection's task with a carved val split). `ectx`: an open `EvalContext` of the
    same eval settings to work in (and leave open) instead of opening one: successive evaluations
    (the test split, then checkpoint selection's val split) then share one sandbox, and the model
    the context still holds is evaluated first, so it is not loaded and merged again.
    """
    from tunelab.models.adapters import list_variants

    console = console or Console(stderr=True)
    tasks = list(tasks) if tasks is not None else make_tasks(cfg, (run_dir, exp))
    check_code_execution(tasks, cfg.allow_code_execution)  # before anything slow is loaded
    split = split or cfg.split
    own = run_eval if run_eval is not None else run_eval_config(run_dir)
    plan = []  # (variant name, weights ref, its eval settings, the run's own for it)
    for ref in expand_models(cfg.models, list_variants(run_dir)):
        weights, prompt = split_prompting(ref)
        vcfg = cfg if prompt is None else cfg.model_copy(update={"prompt": prompt})
        vown = own if prompt is None or own is None else own.model_copy(update={"prompt": prompt})
        for task in tasks:
            try:
                prompt_options(task, vcfg)  # a prompt a task lacks fails here, before any model loads
            except EvalError as e:
                raise EvalError(f"{ref}: {e}" if prompt else str(e)) from None
        folder = variant_folder(ref, run_dir, exp)
        if any(folder == p[0] for p in plan):
            raise EvalError(f"'{ref}' and another model in eval.models would both be filed as eval/{folder}/; "
                            "give them distinct names (e.g. evaluate them from separate runs)")
        plan.append((folder, weights, vcfg, vown))
    every = {t.name: load_samples(t, split or t.default_split, None) for t in tasks}
    items = {name: got[: cfg.limit] if cfg.limit else got for name, got in every.items()}
    results: dict[str, dict[str, Any]] = {ref: {} for ref, *_ in plan}  # in the order asked for
    eval_dir = run_dir / "eval"
    shared = SharedCache.open(cfg)
    # Variants on the same weights run one after another, so `base,final,base+cot` loads the
    # base once (the context holds one session at a time).
    first = {w: i for i, (_, w, _, _) in reversed(list(enumerate(plan)))}
    held = ectx.held if ectx is not None else None
    plan.sort(key=lambda p: (p[1] != held, first[p[1]]))
    opened = contextlib.nullcontext(ectx) if ectx is not None else EvalContext(cfg, tasks, run_dir, exp, session_factory)
    with opened as ectx, _progress(console) as bar:
        for ref, weights, vcfg, vown in plan:
            session = ectx.session(weights)  # base and base+cot share one loaded model
            for task in tasks:
                s = split or task.default_split
                label = task_label(task, s)
                tid = bar.add_task(f"{ref} / {label}", total=len(items[task.name]))
                siblings = sorted(d / label for d in eval_dir.iterdir() if d.is_dir() and d.name != ref
                                  and (d / label).is_dir()) if eval_dir.is_dir() else []
                results[ref][label] = run_task(task, items[task.name], s, session, vcfg, eval_dir / ref / label,
                                               ectx.scoring(task), ectx.judge_id,
                                               progress=lambda k, tid=tid: bar.advance(tid, k), variant=ref,
                                               keyed=differing_settings(vcfg, vown, task.name), siblings=siblings,
                                               cache=shared, n_total=len(every[task.name]))
                served = shared.take_hits() if shared is not None else 0
                if served:
                    console.print(f"{ref} on {label}: {served} of {len(items[task.name])} items from the shared cache",
                                  markup=False, highlight=False)
    return results


def run_eval_config(run_dir: Path) -> EvalConfig | None:
    """The `eval` section of the run's own config.yaml (what `tunelab run` evaluates), or None."""
    from tunelab.config import load_config

    path = Path(run_dir) / "config.yaml"
    return load_config(path).eval if path.is_file() else None


def _progress(console: Console) -> Progress:
    return Progress(console, transient=True)  # counts and ETA; plain lines when not a terminal
