"""Reference similarity over any dataset with references: chrF, BLEU, exact match.

Rows are read through the data layer (built-in, local file or hub; alpaca, messages or
prompt/completion), so any dataset that trains also evaluates: the prompt is every message
before the last assistant message, the reference is that message.

chrF is reported per sample (sentence chrF, averaged: what a per-sample CI and a paired test
need) and over the corpus (sacrebleu's corpus chrF, the number papers quote); BLEU is corpus
BLEU; exact match compares after stripping surrounding whitespace. A generation wrapped in a
markdown code fence is unwrapped when the reference is not, so chat models are not penalised
for formatting.

Both corpus metrics are sacrebleu's, computed from each sample's n-gram statistics (extracted
once per generation and reference, `corpus_stats.py`), so bootstrap resamples sum rows instead of
re-reading every sentence; the values are sacrebleu's `corpus_score` to the last digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunelab.evaluation.stats import SummedStatistic
from tunelab.evaluation.task import (
    EvalError, GenerationSettings, Metric, Prompt, PromptOptions, Sample, SampleScore, ScoringContext, Task,
)
from tunelab.generation.types import unfence

RUN_DATA = "run"  # `dataset: run`: the run's own val/test rows, as its data config split them
_CORPUS_METRICS = {"chrf_corpus": "chrf", "bleu": "bleu"}  # metric name -> corpus_stats kind


def load_chat_samples(dataset: str, split: str) -> list[Sample]:
    """Samples of a dataset read by the data layer: `data = {"messages": [...], "reference": str}`.

    Args:
        dataset: a built-in dataset name (`stdlib-instruct`), `builtin:NAME`, or a local file path.
        split: the split of a built-in dataset (ignored for files).
    """
    from tunelab.config import SourceConfig
    from tunelab.data.builtin import list_builtin
    from tunelab.data.mixing import load_source

    name = dataset.removeprefix("builtin:")
    if dataset.startswith("builtin:") or name in list_builtin():
        src = SourceConfig(builtin=name, split=split)  # an unknown name: the data layer suggests one
    else:
        src = SourceConfig(path=dataset)
    return chat_samples(load_source(src))


def chat_samples(examples: Sequence[Any]) -> list[Sample]:
    """Samples from `ChatExample`s: the prompt is every message before the last reply, which is
    the reference."""
    samples, seen = [], set()
    for ex in examples:
        last = max(i for i, m in enumerate(ex.messages) if m["role"] == "assistant")
        sid = ex.id or ex.origin
        if sid in seen:  # ids must be unique: they key the cache and pair variants
            sid = ex.origin
        seen.add(sid)
        samples.append(Sample(sid, {"messages": ex.messages[:last], "reference": ex.messages[last]["content"]}))
    return samples


@dataclass
class SimilarityTask(Task):
    """chrF / BLEU / exact match of the generation against the dataset's reference answer."""

    name = "similarity"
    version = "1"
    description = "chrF (per sample and corpus), corpus BLEU and exact match against reference answers."
    data_source = "any dataset with references (default builtin:stdlib-instruct), or `run`: the run's own held-out rows"
    metrics = (
        Metric("chrf", True, description="mean sentence chrF (0-100)"),
        Metric("chrf_corpus", True, "corpus", description="corpus chrF (0-100)"),
        Metric("bleu", True, "corpus", description="corpus BLEU (0-100)"),
        Metric("exact_match", True, description="generation equals the reference (whitespace-stripped)"),
    )
    styles = ("chat",)
    splits = ("train", "val", "test")
    default_split = "test"
    generation = GenerationSettings(max_new_tokens=256)

    dataset: str = "stdlib-instruct"  # or "run": the evaluated run's own held-out rows (RUN_DATA)
    max_new_tokens: int = 256

    def load(self, split: str | None = None) -> list[Sample]:
        if self.dataset == RUN_DATA:
            return self._run_samples(split or self.default_split)
        return load_chat_samples(self.dataset, split or self.default_split)

    def _run_samples(self, split: str) -> list[Sample]:
        """The run's own `split` rows, rebuilt from its data config and seed exactly as training
        split them, so a hub dataset the run trained on is scored on its held-out part."""
        run = getattr(self, "_run", None)
        if run is None:
            raise EvalError("similarity: dataset 'run' means the held-out rows of the run being evaluated; "
                            "it needs a run (tunelab run CONFIG, tunelab eval RUN_DIR), not a samples file")
        from tunelab.data.mixing import build_splits

        exp = run[1]
        rows = getattr(build_splits(exp.data, exp.seed), split)
        if not rows:
            sizes = f"val {exp.data.split.val}, test {exp.data.split.test}"
            raise EvalError(f"similarity: the run's '{split}' split is empty (data.split: {sizes}, and no data.{split} "
                            f"sources); give it rows or evaluate another split")
        return chat_samples(rows)

    def build_prompt(self, sample: Sample, opts: PromptOptions, shots: Sequence[Sample] = ()) -> Prompt:
        return Prompt(messages=sample.data["messages"])

    def generation_settings(self, opts: PromptOptions) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=self.max_new_tokens)

    def score(self, sample: Sample, generations: list[str], ctx: ScoringContext) -> SampleScore:
        from sacrebleu.metrics import CHRF

        ref = sample.data["reference"]
        chrf = CHRF()
        per_gen = []
        for g in generations:
            hyp = unfence(g, ref)
            exact = hyp.strip() == ref.strip()
            per_gen.append({"passed": exact, "verdict": "exact" if exact else ("empty" if not hyp.strip() else "inexact"),
                            "chrf": chrf.sentence_score(hyp, [ref]).score})
        n = max(1, len(per_gen))
        return SampleScore(values={"chrf": sum(g["chrf"] for g in per_gen) / n,
                                   "exact_match": sum(g["passed"] for g in per_gen) / n},
                           generations=per_gen)

    def corpus_score(self, metric: str, samples: Sequence[Sample], generations: Sequence[list[str]],
                     scores: Sequence[SampleScore]) -> float:
        return self._summed(metric, samples, generations).value()

    def corpus_stats(self, metric: str, samples: Sequence[Sample], generations: Sequence[list[str]],
                     scores: Sequence[SampleScore]) -> SummedStatistic:
        """sacrebleu's statistics of each sample's first generation against its reference, and
        the corpus chrF / BLEU of their sum."""
        return self._summed(metric, samples, generations)

    def _summed(self, metric: str, samples: Sequence[Sample], generations: Sequence[list[str]]) -> SummedStatistic:
        from tunelab.evaluation.corpus_stats import FROM_STATS

        kind = _CORPUS_METRICS.get(metric)
        if kind is None:
            raise EvalError(f"task '{self.name}' has no corpus metric '{metric}'")
        pairs = [(g[0] if g else "", s.data["reference"]) for s, g in zip(samples, generations, strict=True)]
        return SummedStatistic(self._item_rows(kind, pairs), FROM_STATS[kind])

    def _item_rows(self, kind: str, pairs: list[tuple[str, str]]) -> np.ndarray:
        """[n, d] statistics of (generation, reference) pairs, each pair extracted once per task
        object: the eval runner calls `corpus_score` on every bootstrap resample."""
        from tunelab.evaluation.corpus_stats import WIDTH, item_stats

        # Kept outside the dataclass fields: those are the task's options (summaries, cache keys).
        memo: dict[tuple[str, str, str], np.ndarray] = self.__dict__.setdefault("_corpus_rows", {})
        todo = list(dict.fromkeys(p for p in pairs if (kind, *p) not in memo))
        if todo:
            hyps = [unfence(g, r) for g, r in todo]
            for p, row in zip(todo, item_stats(kind, hyps, [r for _, r in todo]), strict=True):
                memo[(kind, *p)] = row
        return np.array([memo[(kind, *p)] for p in pairs], dtype=np.int64).reshape(len(pairs), WIDTH[kind])


TASKS = (SimilarityTask,)
