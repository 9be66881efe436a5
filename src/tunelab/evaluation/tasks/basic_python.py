"""basic-python: tunelab's 125 built-in function problems (HumanEval format), scored like HumanEval.

The chat prompt is the instruction the built-in training rows use (the problem's one-line
description plus the signature), so a model fine-tuned on `basic-python` train is asked the
way it was taught; the completion style gives the signature and docstring to continue.
Chain-of-thought appends `prompts.COT_FUNCTION`; few-shot shots are the first train problems of
distinct topics, answered as the training rows answer (the whole function, unfenced).
"""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.evaluation.task import PromptOptions, Sample
from tunelab.evaluation.tasks.humaneval import HumanEvalTask
from tunelab.evaluation.tasks.prompts import COT_FUNCTION, with_cot

_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test", "description", "topic", "split")


@dataclass
class BasicPythonTask(HumanEvalTask):
    """Built-in basic-python problems; the test split (51 problems) by default."""

    name = "basic-python"
    version = "1"
    description = "tunelab's built-in small Python problems: write the function, pass its tests (sandbox)."
    data_source = "builtin:basic-python (125 problems: train 74, test 51)"
    styles = ("chat", "completion")
    splits = ("train", "test")
    default_split = "test"
    fewshot_split = "train"

    def load(self, split: str | None = None) -> list[Sample]:
        from tunelab.data.builtin import load_builtin

        samples = []
        for row in load_builtin("basic-python", split or self.default_split):
            samples.append(Sample(row["task_id"], {**{k: row[k] for k in _FIELDS},
                                                   "instruction": row["instruction"]}))
        return samples

    def chat_instruction(self, sample: Sample, opts: PromptOptions = PromptOptions()) -> str:
        return with_cot(sample.data["instruction"], opts, COT_FUNCTION)

    def shot_answer(self, sample: Sample) -> str:
        return self.solution(sample)  # the training rows' answer: the function, unfenced


TASKS = (BasicPythonTask,)
