"""compose: tunelab's generated function problems (HumanEval form), scored like HumanEval.

The test split holds out pairs of parts that training never saw together (see the dataset's
CARD.md); val uses training compositions and is the split checkpoints are selected on. The chat
prompt is `compose_instruction`, the instruction of the training rows, so a model fine-tuned on
`builtin: compose` is asked the way it was taught; the completion style continues the typed
signature and docstring. Chain-of-thought appends `prompts.COT_FUNCTION`; few-shot shots are the
first problems of the train split (training compositions, so no held-out pair is shown),
answered as the training rows answer (plain signature and body).
"""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.evaluation.task import GenerationSettings, PromptOptions, Sample
from tunelab.evaluation.tasks.humaneval import HumanEvalTask
from tunelab.evaluation.tasks.prompts import COT, COT_FUNCTION, with_cot

_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test", "description", "signature",
           "composition", "split")


@dataclass
class ComposeTask(HumanEvalTask):
    """Built-in compose problems; the test split (120 problems, held-out part pairs) by default."""

    name = "compose"
    version = "1"
    description = ("tunelab's generated function problems (held-out compositions of list/string steps): "
                   "write the function, pass its tests (sandbox).")
    data_source = "builtin:compose (val 100, test 120; train 2000 for fine-tuning)"
    styles = ("chat", "completion")
    splits = ("val", "test")
    default_split = "test"
    fewshot_split = "train"  # the fine-tuning problems: never evaluated

    def load(self, split: str | None = None) -> list[Sample]:
        from tunelab.data.builtin import compose_instruction, load_problems

        return [Sample(p["task_id"], {**{k: p[k] for k in _FIELDS}, "instruction": compose_instruction(p)})
                for p in load_problems("compose", split or self.default_split)]

    def chat_instruction(self, sample: Sample, opts: PromptOptions = PromptOptions()) -> str:
        return with_cot(sample.data["instruction"], opts, COT_FUNCTION)

    def shot_answer(self, sample: Sample) -> str:
        return f"{sample.data['signature']}\n{sample.data['canonical_solution']}"  # as the training rows answer

    def generation_settings(self, opts: PromptOptions) -> GenerationSettings:
        if opts.style == "completion":
            return self.generation
        if opts.variant == COT:
            return GenerationSettings(max_new_tokens=512)  # the explanation, then the function
        return GenerationSettings(max_new_tokens=128)  # one short function; nothing else is asked


TASKS = (ComposeTask,)
