"""Loss, perplexity and token accuracy of the reference answers, on any dataset.

No generation: each example is tokenized exactly as training tokenizes it (the data layer's
chat template with the run's thinking switch, `eval.enable_thinking`, and assistant-only labels,
`tokenize_with_origins`) and scored by the one loss
definition, `training.metrics.token_stats` (through `TokenLossModel`). Aggregates are token
weighted (total loss / total label tokens), like the training loop's validation loss, so the
numbers are comparable with `train/metrics.jsonl`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tunelab.evaluation.task import EvalError, Metric, Sample, SampleScore, Task
from tunelab.evaluation.tasks.similarity import load_chat_samples


@dataclass
class LossTask(Task):
    """Token-weighted loss / perplexity / token accuracy of reference answers (no generation)."""

    name = "loss"
    version = "2"  # 2: chats rendered with the run's thinking switch
    description = "Loss, perplexity and token accuracy of the reference answers, tokenized as in training."
    data_source = "any dataset with references (default builtin:stdlib-instruct)"
    mode = "model"
    metrics = (
        Metric("loss", False, "corpus", description="total loss / total label tokens"),
        Metric("perplexity", False, "corpus", description="exp(loss)"),
        Metric("token_accuracy", True, "corpus", description="share of label tokens predicted by argmax"),
    )
    splits = ("train", "val", "test")
    default_split = "test"

    dataset: str = "stdlib-instruct"
    max_seq_len: int = 512

    def load(self, split: str | None = None) -> list[Sample]:
        return load_chat_samples(self.dataset, split or self.default_split)

    @torch.no_grad()
    def score_model(self, samples: Sequence[Sample], model: Any, tokenizer: Any,
                    enable_thinking: bool | None = None) -> list[SampleScore]:
        from tunelab.config import DataConfig, SourceConfig
        from tunelab.data.tokenize import tokenize_with_origins
        from tunelab.data.types import ChatExample
        from tunelab.training.metrics import TokenLossModel, loss_positions, verify_fast_path

        # Only the tokenization fields are read; the source is a placeholder DataConfig requires.
        cfg = DataConfig(sources=[SourceConfig(path=self.dataset)], max_seq_len=self.max_seq_len, truncation="right")
        loss_model = TokenLossModel(model).eval()
        checked = False
        device = next(model.parameters()).device
        out = []
        for s in samples:
            ex = ChatExample(messages=[*s.data["messages"], {"role": "assistant", "content": s.data["reference"]}],
                             source=self.dataset, origin=s.id, id=s.id)
            kept, _, _ = tokenize_with_origins([ex], tokenizer, cfg, enable_thinking)
            if not kept:  # the reply was truncated away entirely
                out.append(SampleScore(values={}, generations=[{"verdict": "no_label_tokens"}],
                                       extra={"loss_sum": 0.0, "n_tokens": 0, "n_correct": 0}))
                continue
            t = kept[0]
            # One example per forward: per-sample sums (for CIs) without padding.
            ids = torch.tensor([t.input_ids], device=device)
            labels = torch.tensor([t.labels])
            index, targets = loss_positions(labels)
            if not checked:  # labelled-positions-only logits must equal full logits for this model
                verify_fast_path(loss_model, {"input_ids": ids, "labels": labels.to(device), "loss_index": index.to(device),
                                              "targets": targets.to(device), "attention_mask": torch.ones_like(ids)})
                checked = True
            loss_sum, n_correct, n_tokens = loss_model(ids, labels.to(device), index.to(device), targets.to(device),
                                                       attention_mask=torch.ones_like(ids), accuracy=True)
            out.append(SampleScore(
                values={}, generations=[{"verdict": "truncated" if t.truncated else "ok"}],
                extra={"loss_sum": float(loss_sum), "n_tokens": int(n_tokens), "n_correct": int(n_correct)},
            ))
        return out

    def corpus_score(self, metric: str, samples: Sequence[Sample], generations: Sequence[list[str]],
                     scores: Sequence[SampleScore]) -> float:
        tokens = sum(s.extra["n_tokens"] for s in scores)
        if tokens == 0:
            return float("nan")
        loss = sum(s.extra["loss_sum"] for s in scores) / tokens
        if metric == "loss":
            return loss
        if metric == "perplexity":
            return math.exp(min(loss, 700.0))  # exp overflows floats past ~709
        if metric == "token_accuracy":
            return sum(s.extra["n_correct"] for s in scores) / tokens
        raise EvalError(f"task '{self.name}' has no metric '{metric}'")


TASKS = (LossTask,)
