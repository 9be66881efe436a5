"""Rubric judging of debugging hints: HCorrect, HInformative, HConceal, HComprehensible, HGood.

The evaluated model writes a hint for a buggy program (built-in `repair-hint`: basic-python
solutions with one AST mutation). A judge (any model variant or an OpenAI-compatible endpoint,
passed as `ctx.judge`) sees the buggy program, the fixed one and the hint, and answers four
yes/no questions; HGood is yes when all four are. The judge prompt is versioned
(`JUDGE_PROMPT_VERSION`, part of the task version) so cached judgements are never mixed across
prompt changes. `parse_judgement` accepts the answer formats judges actually produce (bold
names, "1. Yes", "true/false", missing colons) and reports None for an answer it cannot read,
which is counted as `judge_unparsed`, never as a "no". The summary's `report` records the share
of replies that could be read (`judge_parsed_share`); below `MIN_PARSED_SHARE` it carries a
`warning` (shown at the top of the task in the report and on the console), since the scores
then stand on a few items while looking like a result. Offline, `eval.judge.model: rules` is a
rule-based stand-in (`judge_rules`); its replies are marked, and the summary's `warning` and
`report.stand_in_judge` say so.

The judge sees the hint, not the model's reasoning: a reply with a line starting "Hint:" (the
chain-of-thought prompt, `prompts.COT_HINT`, asks for one after a few sentences of reasoning)
is judged on the text after the last such marker (`hint_text`); any other reply as a whole.
Few-shot shots are one mutant each of the first train problems, answered with its reference
hint.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tunelab.evaluation.task import (
    EvalError, GenerationSettings, Metric, Prompt, PromptOptions, Sample, SampleScore, ScoringContext, Task,
)
from tunelab.evaluation.tasks.prompts import COT, COT_HINT, VARIANTS, chat_prompt, distinct_shots, shots_for, with_cot
from tunelab.generation.types import strip_reasoning

JUDGE_PROMPT_VERSION = "1"
CRITERIA = ("HCorrect", "HInformative", "HConceal", "HComprehensible")
RUBRIC = ("HGood", *CRITERIA)

JUDGE_PROMPT = """You are grading a hint written for a student whose Python function has a bug.

Buggy program:
```python
{buggy}
```

Correct program (for you only; the student does not see it):
```python
{fixed}
```

Hint given to the student:
\"\"\"{hint}\"\"\"

Answer each question with yes or no:
HCorrect: does the hint describe the actual bug correctly (nothing false or misleading)?
HInformative: would the hint help the student find the bug?
HConceal: does the hint avoid giving away the fix (no corrected code, no exact replacement)?
HComprehensible: is the hint clear, short and understandable for a beginner?

Reply with exactly four lines in this format:
HCorrect: yes
HInformative: no
HConceal: yes
HComprehensible: yes"""

# The first line of every reply of the rule-based stand-in judge (`judge_rules`, eval.judge.model:
# rules): the summary of a task judged so carries a warning, and the reports say it.
RULE_JUDGE_MARK = "[rule-based stand-in judge, not a model]"
RULE_JUDGE_WARNING = (
    "These hint scores come from tunelab's RULE-BASED STAND-IN JUDGE (eval.judge.model: rules), not from a "
    "model judge: fixed rules on the hint text and the diff of the buggy and fixed programs (see "
    "tunelab.evaluation.tasks.judge_rules). They exercise the study offline; they are no measure of hint quality. "
    "Judge with a model (eval.judge.model) or an endpoint (eval.judge.base_url) for real scores.")
MIN_PARSED_SHARE = 0.5  # fewer readable judge replies than this: the summary carries a warning
JUDGE_SETTINGS = GenerationSettings(max_new_tokens=64)  # greedy: the same judgement every time

_YES = {"yes", "y", "true", "1", "pass", "correct"}
_NO = {"no", "n", "false", "0", "fail", "incorrect"}
_ANSWER = r"(yes|no|true|false|y|n)\b"
# "Hint:", "**Hint:**", "## Hint -" at the start of a line: where a reasoned reply's hint begins.
_HINT_MARKER = re.compile(r"^[ \t>#*_-]*hint[ \t*_]*[:\-][ \t*_]*", re.IGNORECASE | re.MULTILINE)


def hint_text(reply: str) -> str:
    """The hint in a reply: the text after the last line-leading "Hint:" marker, else the
    whole reply (stripped)."""
    found = list(_HINT_MARKER.finditer(reply))
    return reply[found[-1].end():].strip() if found else reply.strip()


def judge_prompt(buggy: str, fixed: str, hint: str) -> Prompt:
    """The versioned judge prompt as a one-message chat."""
    return Prompt(messages=[{"role": "user", "content": JUDGE_PROMPT.format(
        buggy=buggy.rstrip(), fixed=fixed.rstrip(), hint=hint.strip())}])


def parse_judgement(text: str) -> dict[str, bool] | None:
    """The four yes/no answers of a judge reply, or None when they cannot all be read.

    Named answers win ("**HCorrect**: Yes", "correct - no", "HConceal = true"); otherwise
    exactly four bare answers in order ("1. yes 2. no 3. yes 4. yes") are taken positionally.
    """
    clean = text.replace("*", "").replace("`", "")
    found: dict[str, bool] = {}
    for name in CRITERIA:
        # "HCorrect" or "Correct", then any of ':', '=', '-', spaces, then the answer.
        m = re.search(rf"\bH?{name[1:]}\b\s*[:=\-]?\s*{_ANSWER}", clean, flags=re.IGNORECASE)
        if m:
            found[name] = m.group(1).lower() in _YES
    if len(found) == len(CRITERIA):
        return found
    if not found:
        bare = re.findall(rf"\b{_ANSWER}", clean, flags=re.IGNORECASE)
        if len(bare) == len(CRITERIA):
            return {name: ans.lower() in _YES for name, ans in zip(CRITERIA, bare, strict=True)}
    return None


@dataclass
class HintJudgeTask(Task):
    """Hints for buggy programs, judged on a four-question rubric by a judge model."""

    name = "hint-judge"
    version = f"2-judge{JUDGE_PROMPT_VERSION}"  # 2: the judge sees `hint_text` of the reply
    description = "Hints for buggy programs judged yes/no on HCorrect, HInformative, HConceal, HComprehensible; HGood = all four."
    data_source = "builtin:repair-hint"
    metrics = tuple(Metric(name, True, description=f"share of hints judged {name}") for name in RUBRIC)
    prompt_variants = VARIANTS
    styles = ("chat",)
    splits = ("train", "test")
    default_split = "test"
    fewshot_split = "train"
    generation = GenerationSettings(max_new_tokens=96)

    def load(self, split: str | None = None) -> list[Sample]:
        from tunelab.data.builtin import load_builtin

        rows = load_builtin("repair-hint", split or self.default_split)
        return [Sample(r["mutant_id"], {"instruction": r["instruction"], "buggy_code": r["buggy_code"],
                                        "fixed_code": r["fixed_code"], "problem": r["task_id"],
                                        "reference_hint": r["hint"]}) for r in rows]

    def fewshot(self, opts: PromptOptions) -> list[Sample]:
        """One mutant of each of the first `num_fewshot` problems of the train split."""
        return distinct_shots(self.load(self.fewshot_split), opts.num_fewshot, lambda s: s.data["problem"])

    def build_prompt(self, sample: Sample, opts: PromptOptions, shots: Sequence[Sample] = ()) -> Prompt:
        return chat_prompt(with_cot(sample.data["instruction"], opts, COT_HINT), shots_for(opts, shots),
                           lambda s: s.data["instruction"], lambda s: s.data["reference_hint"])

    def generation_settings(self, opts: PromptOptions) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=320) if opts.variant == COT else self.generation

    def score(self, sample: Sample, generations: list[str], ctx: ScoringContext) -> SampleScore:
        return self.score_batch([sample], [generations], ctx)[0]

    def score_batch(self, samples: Sequence[Sample], generations: Sequence[list[str]],
                    ctx: ScoringContext) -> list[SampleScore]:
        if ctx.judge is None:
            raise EvalError(f"task '{self.name}' needs a judge: set eval.judge.model (a model ref such as "
                            "base or final) or eval.judge.base_url (an OpenAI-compatible endpoint)")
        # One batched judge call for every hint of every sample.
        pairs = [(i, hint_text(g)) for i, gens in enumerate(generations) for g in gens]
        prompts = [judge_prompt(samples[i].data["buggy_code"], samples[i].data["fixed_code"], g) for i, g in pairs]
        replies = [r[0] for r in ctx.judge.generate(prompts, JUDGE_SETTINGS)] if prompts else []
        per_sample: list[list[dict[str, Any]]] = [[] for _ in samples]
        for (i, hint), reply in zip(pairs, replies, strict=True):
            verdicts = parse_judgement(strip_reasoning(reply))  # a thinking judge's reasoning is not its answer
            if verdicts is None:
                per_sample[i].append({"verdict": "judge_unparsed", "judge_reply": reply, "hint": hint})
                continue
            good = all(verdicts.values())
            failed = [k for k in CRITERIA if not verdicts[k]]
            per_sample[i].append({"verdict": "good" if good else "not_" + failed[0][1:].lower(),
                                  "passed": good, **verdicts, "HGood": good, "judge_reply": reply, "hint": hint})
        return [SampleScore(values=_means(gens), generations=gens,
                            extra={"problem": s.data["problem"], "program": s.id})
                for s, gens in zip(samples, per_sample, strict=True)]

    def report(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Tables per problem x program with per-problem and overall averages."""
        rows = [{"problem": r["extra"]["problem"], "program": r["extra"]["program"],
                 **{k: r["values"].get(k) for k in RUBRIC}} for r in records]
        by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_problem[row["problem"]].append(row)
        problems = [{"problem": p, "programs": len(rs), **_avg(rs)} for p, rs in sorted(by_problem.items())]
        replies = [g for r in records for g in r.get("scores") or []]
        parsed = sum(g.get("verdict") != "judge_unparsed" for g in replies)
        share = parsed / len(replies) if replies else None
        out = {"judge_prompt_version": JUDGE_PROMPT_VERSION, "judge_parsed": parsed, "judge_replies": len(replies),
               "judge_parsed_share": share, "per_program": rows, "per_problem": problems, "overall": _avg(rows)}
        warnings = []
        if any(str(g.get("judge_reply", "")).startswith(RULE_JUDGE_MARK) for g in replies):
            out["stand_in_judge"] = "rules"
            warnings.append(RULE_JUDGE_WARNING)
        if share is not None and share < MIN_PARSED_SHARE:
            warnings.append(f"the judge's reply could be read for only {parsed} of {len(replies)} hints "
                              f"({share:.0%}): the scores stand on those alone. Check the judge's raw replies "
                              "(failure examples, verdict judge_unparsed) and use a judge that follows the format.")
        if warnings:
            out["warning"] = " ".join(warnings)
        return out


def _means(gens: list[dict[str, Any]]) -> dict[str, float | None]:
    judged = [g for g in gens if g["verdict"] != "judge_unparsed"]
    if not judged:
        return {k: None for k in RUBRIC}
    return {k: sum(bool(g[k]) for g in judged) / len(judged) for k in RUBRIC}


def _avg(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in RUBRIC:
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = sum(vals) / len(vals) if vals else None
    return out


TASKS = (HintJudgeTask,)
