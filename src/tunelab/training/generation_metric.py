"""Training-time generation metric: loss says how likely the references are, not what the model
writes. With `train.generation_metric.samples: N`, every evaluation also generates greedy
replies to the first N validation prompts and scores them against the references (mean
sentence chrF, or corpus BLEU, with sacrebleu as the `similarity` task does), logged in the
val row of train/metrics.jsonl as `chrf` / `bleu` with `generation_samples`. The generations
behind each value are kept in train/generations/step-N.jsonl (one line per prompt: id, prompt,
reference, generation, its sentence score), so a curve that moves can be read, not only trusted.

Prompts come from the same validation split training uses (`build_splits` with the run's seed)
and are rendered by the generation layer's generator (the one evaluation uses) with the training chat template. Only a
single process generates: under DDP/FSDP the metric is skipped (with a warning), since
generating on one rank while others hold shards would stall them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from tunelab.data.mixing import build_splits
from tunelab.generation import GenerationSettings, Prompt, TransformersGenerator, strip_reasoning, unfence
from tunelab.runs import RunPaths, atomic_write_text

log = logging.getLogger(__name__)


class GenerationMetric:
    """Callable `metric(model, step) -> {"chrf" | "bleu": value, "generation_samples": n}`.

    Args:
        exp: the experiment (its `train.generation_metric`, `data` and `seed`).
        tokenizer: the training tokenizer (its chat template already resolved by the data stage).
        prompts, references: override the validation sample (tests).
        run_dir: where train/generations/step-N.jsonl go (None: not saved).
    """

    def __init__(self, exp: Any, tokenizer: Any, prompts: list[Any] | None = None,
                 references: list[str] | None = None, run_dir: Path | None = None) -> None:
        self.cfg, self.exp, self.tok = exp.train.generation_metric, exp, tokenizer
        self.paths = RunPaths(Path(run_dir)) if run_dir is not None else None
        self.ids: list[str] = []
        if prompts is None:
            val = build_splits(exp.data, exp.seed).val[: self.cfg.samples]
            prompts, references = [], []
            for i, ex in enumerate(val):
                last = max(j for j, m in enumerate(ex.messages) if m["role"] == "assistant")
                prompts.append(Prompt(messages=ex.messages[:last]))
                references.append(ex.messages[last]["content"])
                self.ids.append(ex.id or f"val-{i}")
        self.prompts, self.references = prompts, references or []
        self.ids = self.ids or [f"val-{i}" for i in range(len(self.prompts))]

    @torch.no_grad()
    def __call__(self, model: Any, step: int | None = None) -> dict[str, Any]:
        if not self.prompts:
            return {}
        was_training = model.training
        model.eval()  # no dropout while generating; restored below
        cuda = [model.device] if model.device.type == "cuda" else []
        try:
            # The training run must not notice the metric: the RNG streams (dropout, data) are
            # restored afterwards, so losses are the same with and without it.
            with torch.random.fork_rng(devices=cuda):
                gen = TransformersGenerator(model, self.tok, batch_size=len(self.prompts),
                                            chat_template=self.exp.data.chat_template,
                                            enable_thinking=self.exp.eval.enable_thinking)
                settings = GenerationSettings(max_new_tokens=self.cfg.max_new_tokens, temperature=0.0,
                                              seed=self.exp.seed)
                outs = [g[0] for g in gen.generate(self.prompts, settings)]
        finally:
            model.train(was_training)
        hyps = [unfence(strip_reasoning(o), r) for o, r in zip(outs, self.references)]
        per = sentence_scores(self.cfg.metric, hyps, self.references)
        value = sum(per) / max(1, len(per)) if self.cfg.metric == "chrf" else score(self.cfg.metric, hyps, self.references)
        if self.paths is not None and step is not None:
            self._save(step, outs, per)
        return {self.cfg.metric: value, "generation_samples": len(hyps)}

    def _save(self, step: int, outs: list[str], per: list[float]) -> None:
        lines = []
        for pid, prompt, ref, out, s in zip(self.ids, self.prompts, self.references, outs, per):
            msgs = list(prompt.messages or [])
            user = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), prompt.text or "")
            lines.append(json.dumps({"step": step, "id": pid, "prompt": user, "messages": msgs, "reference": ref,
                                     "generation": out, "metric": self.cfg.metric, "score": s}))
        atomic_write_text(self.paths.generations(step), "".join(line + "\n" for line in lines))


def sentence_scores(metric: str, hyps: list[str], refs: list[str]) -> list[float]:
    """Each reply's own sentence chrF or BLEU, 0-100 (what a saved generation is marked with)."""
    from sacrebleu.metrics import BLEU, CHRF

    if metric == "chrf":
        scorer: Any = CHRF()
    elif metric == "bleu":
        scorer = BLEU(effective_order=True)  # short replies have no 4-grams
    else:
        raise ValueError(f"unknown generation metric {metric!r}")
    return [scorer.sentence_score(h, [r]).score for h, r in zip(hyps, refs)]


def score(metric: str, hyps: list[str], refs: list[str]) -> float:
    """Mean sentence chrF (as the similarity task's `chrf`) or corpus BLEU, 0-100."""
    from sacrebleu.metrics import BLEU

    if metric == "chrf":
        return sum(sentence_scores(metric, hyps, refs)) / max(1, len(hyps))
    if metric == "bleu":
        return BLEU().corpus_score(hyps, [refs]).score
    raise ValueError(f"unknown generation metric {metric!r}")


def make_generation_metric(exp: Any, tokenizer: Any, world_size: int,
                           run_dir: Path | None = None) -> GenerationMetric | None:
    """The metric if `train.generation_metric.samples` > 0 and a single process trains, else None;
    with `run_dir`, each evaluation's generations are saved under it."""
    if exp.train.generation_metric.samples <= 0:
        return None
    if world_size > 1:
        log.warning("train.generation_metric is skipped with %d processes (generation runs on one process only)",
                    world_size)
        return None
    return GenerationMetric(exp, tokenizer, run_dir=run_dir)
