"""Scoring of the math, similarity, loss and hint-judge tasks on hand-written generations."""

import math

import pytest
import torch

from tunelab.evaluation.registry import get_task
from tunelab.evaluation.task import EvalError, PromptOptions, Sample, ScoringContext
from tunelab.evaluation.tasks.judge import parse_judgement
from tunelab.data.builtin import load_builtin
from tunelab.evaluation.tasks.math import ANSWER_FORMAT, extract_flexible, extract_strict, normalize_number

CTX = ScoringContext()


# ---- math ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,want", [
    ("#### 53", "53"), ("so #### $1,200.", "1200"), ("#### -7.50", "-7.5"), ("####12", "12"),
    ("#### 3\nthen #### 4", "4"), ("The answer is 53.", None), ("#### many", None),
])
def test_strict_extraction(text, want):
    assert extract_strict(text) == want


@pytest.mark.parametrize("text,want", [
    ("She pays $1,234.50 in total.", "1234.5"), ("3 apples and 5 pears, so 8.", "8"),
    ("#### 53", "53"), ("no numbers", None), ("costs 12.0 dollars", "12"),
])
def test_flexible_extraction_takes_the_last_number(text, want):
    assert extract_flexible(text) == want


def test_number_normalisation():
    assert normalize_number("$1,000.00.") == "1000"
    assert normalize_number("-0") == "0" and normalize_number("abc") is None


def test_math_scoring_of_correct_and_wrong_answers():
    task = get_task("math-word")
    s = Sample("q", {"question": "?", "answer": "#### 53", "final": "53"})
    sc = task.score(s, ["3+50 = 53\n#### 53", "It is 53.", "#### 54", "I do not know"], CTX)
    assert [g["verdict"] for g in sc.generations] == ["correct", "flexible_only", "wrong_answer", "no_answer"]
    assert sc.values == {"accuracy_strict": 0.25, "accuracy_flexible": 0.5}


def test_math_prompt_variants_and_styles():
    task = get_task("math-word")
    s = task.load("test")[0]
    shots = task.fewshot(PromptOptions(variant="few-shot", num_fewshot=2))
    chat = task.build_prompt(s, PromptOptions(variant="few-shot", style="chat"), shots)
    assert len(chat.messages) == 5 and chat.messages[1]["content"].endswith(shots[0].data["answer"][-6:])
    cot = task.build_prompt(s, PromptOptions(variant="chain-of-thought"))
    assert "step by step" in cot.messages[-1]["content"]
    comp = task.build_prompt(s, PromptOptions(variant="few-shot", style="completion"), shots)
    assert comp.text.count("Question:") == 3 and comp.text.endswith("Answer:")
    assert "\n\nQuestion:" in task.generation_settings(PromptOptions(style="completion")).stop


def test_math_benchmark_prompt_format_adds_the_answer_line():
    s = get_task("math-word").load("test")[0]
    bench = get_task("math-word", prompt_format="benchmark").build_prompt(s, PromptOptions())
    assert bench.messages[-1]["content"] == f"{s.data['question']}\n\n{ANSWER_FORMAT}"
    with pytest.raises(EvalError, match="did you mean 'benchmark'"):
        get_task("math-word", prompt_format="benchmrk")
    assert get_task("math-word").version != "1"  # v1 cached samples had the answer line


@pytest.mark.parametrize("task,dataset", [
    ("math-word", "math-word"), ("basic-python", "basic-python"), ("stdio", "basic-python-stdio"),
    ("repair", "repair"), ("hint-judge", "repair-hint"), ("compose", "compose"),
])
def test_default_prompt_equals_the_training_instruction(task, dataset):
    # A model tuned on a built-in dataset is scored on the prompt it was tuned on.
    t = get_task(task)
    rows = {r["id"]: r for r in load_builtin(dataset, "test")}
    for s in t.load("test")[:10]:
        messages = t.build_prompt(s, PromptOptions(style=t.styles[0])).messages
        assert messages[-1] == {"role": "user", "content": rows[s.id]["instruction"]}


def test_math_reads_a_gsm8k_file(tmp_path):
    f = tmp_path / "gsm.jsonl"
    f.write_text('{"question": "1+1?", "answer": "1+1=2\\n#### 2"}\n{"question": "x", "answer": "no final"}\n')
    with pytest.raises(EvalError, match="no final answer"):
        get_task("math-word", path=str(f)).load()


# ---- similarity ---------------------------------------------------------------------------------


def test_similarity_matches_sacrebleu_per_sample_and_corpus():
    from sacrebleu.metrics import BLEU, CHRF

    task = get_task("similarity")
    samples = [Sample("a", {"messages": [], "reference": "def f(x):\n    return x + 1"}),
               Sample("b", {"messages": [], "reference": "print('hello world')"})]
    gens = [["```python\ndef f(x):\n    return x + 1\n```"], ["print('hello')"]]
    scores = task.score_batch(samples, gens, CTX)
    assert scores[0].values == {"chrf": 100.0, "exact_match": 1.0}  # the fence is unwrapped
    assert scores[1].values["exact_match"] == 0.0
    assert scores[1].values["chrf"] == pytest.approx(CHRF().sentence_score("print('hello')", ["print('hello world')"]).score)
    hyps, refs = ["def f(x):\n    return x + 1\n", "print('hello')"], [s.data["reference"] for s in samples]
    assert task.corpus_score("chrf_corpus", samples, gens, scores) == pytest.approx(CHRF().corpus_score(hyps, [refs]).score)
    assert task.corpus_score("bleu", samples, gens, scores) == pytest.approx(BLEU().corpus_score(hyps, [refs]).score)


def test_similarity_reads_any_dataset_through_the_data_layer(tmp_path):
    f = tmp_path / "d.jsonl"
    # Any format the data layer reads: alpaca, prompt/completion, messages (reference = last reply).
    f.write_text('{"instruction": "Say hi", "output": "hi"}\n{"prompt": "Say yo", "completion": "yo"}\n'
                 '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, '
                 '{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}\n')
    samples = get_task("similarity", dataset=str(f)).load()
    assert [s.data["reference"] for s in samples] == ["hi", "yo", "d"]
    assert samples[0].data["messages"] == [{"role": "user", "content": "Say hi"}]
    assert [m["content"] for m in samples[2].data["messages"]] == ["a", "b", "c"]
    assert len(get_task("similarity").load("val")) > 0


# ---- loss ---------------------------------------------------------------------------------------


def test_loss_task_uses_the_training_tokenization_and_loss(data_tokenizer):
    from tunelab.config import DataConfig, ModelConfig, SourceConfig
    from tunelab.data.tokenize import resolve_chat_template, tokenize_all
    from tunelab.data.types import ChatExample
    from tunelab.models.loading import load_model
    from tunelab.training.metrics import token_stats

    model = load_model(ModelConfig(name="builtin:tiny-random-qwen2", dtype="float32"), "cpu").eval()
    resolve_chat_template(data_tokenizer, "auto")
    task = get_task("loss")
    samples = task.load("test")[:3]
    scores = task.score_model(samples, model, data_tokenizer)
    # By hand: full logits over the same tokenized examples, one token_stats over all of them.
    exs = [ChatExample([*s.data["messages"], {"role": "assistant", "content": s.data["reference"]}], "x", "x")
           for s in samples]
    toks, _ = tokenize_all(exs, data_tokenizer, DataConfig(sources=[SourceConfig(builtin="x")], max_seq_len=512))
    total = n = 0
    with torch.no_grad():
        for t in toks:
            logits = model(torch.tensor([t.input_ids])).logits
            loss_sum, _, n_tok = token_stats(logits, torch.tensor([t.labels]))
            total, n = total + float(loss_sum), n + int(n_tok)
    assert task.corpus_score("loss", samples, [], scores) == pytest.approx(total / n, rel=1e-4)
    assert task.corpus_score("perplexity", samples, [], scores) == pytest.approx(math.exp(total / n), rel=1e-4)
    assert 0 <= task.corpus_score("token_accuracy", samples, [], scores) <= 1


# ---- hint judge ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reply,want", [
    ("HCorrect: yes\nHInformative: no\nHConceal: yes\nHComprehensible: yes", (True, False, True, True)),
    ("**HCorrect**: Yes.\n**HInformative**: Yes\n**HConceal**: No\n**HComprehensible**: yes", (True, True, False, True)),
    ("Correct - true\nInformative = false\nConceal: TRUE\nComprehensible: no", (True, False, True, False)),
    ("1. Yes\n2. Yes\n3. Yes\n4. No", (True, True, True, False)),
    ("HCorrect: does the hint describe it? yes\nHInformative: yes", None),
    ("I think this hint is fine.", None),
])
def test_judge_answers_are_parsed_robustly(reply, want):
    got = parse_judgement(reply)
    assert (None if got is None else tuple(got.values())) == want


class ScriptedJudge:
    def __init__(self, replies):
        self.replies, self.prompts = list(replies), []

    def generate(self, prompts, settings):
        self.prompts += prompts
        return [[self.replies.pop(0)] for _ in prompts]


def test_hint_judge_scores_tables_and_needs_a_judge():
    task = get_task("hint-judge")
    samples = task.load("test")[:2]
    yes = "HCorrect: yes\nHInformative: yes\nHConceal: yes\nHComprehensible: yes"
    judge = ScriptedJudge([yes, yes.replace("HConceal: yes", "HConceal: no"), "unclear"])
    scores = task.score_batch(samples, [["hint a", "hint b"], ["hint c"]], ScoringContext(judge=judge))
    assert len(judge.prompts) == 3 and "hint a" in judge.prompts[0].messages[0]["content"]
    assert samples[0].data["fixed_code"].strip()[:20] in judge.prompts[0].messages[0]["content"]
    assert scores[0].values["HGood"] == 0.5 and scores[0].values["HConceal"] == 0.5
    assert scores[0].values["HCorrect"] == 1.0
    assert [g["verdict"] for g in scores[0].generations] == ["good", "not_conceal"]
    assert scores[1].values["HGood"] is None and scores[1].generations[0]["verdict"] == "judge_unparsed"
    records = [{"values": sc.values, "extra": sc.extra} for sc in scores]
    table = task.report(records)
    assert table["per_program"][0]["program"] == samples[0].id
    assert table["overall"]["HGood"] == 0.5  # the unparsed sample is left out, not counted as "no"
    with pytest.raises(EvalError, match="needs a judge"):
        task.score_batch(samples, [["x"], ["y"]], ScoringContext())


def test_a_judge_that_cannot_be_read_makes_a_loud_warning_not_a_result():
    import io

    from rich.console import Console

    from tunelab.config import EvalConfig
    from tunelab.evaluation.console import print_results
    from tunelab.evaluation.engine import summarize

    task = get_task("hint-judge")
    samples = task.load("test")[:4]
    yes = "HCorrect: yes\nHInformative: yes\nHConceal: yes\nHComprehensible: yes"
    judge = ScriptedJudge([yes] + ["I cannot grade this."] * 3)
    scores = task.score_batch(samples, [["hint"]] * 4, ScoringContext(judge=judge))
    records = [{"id": s.id, "values": sc.values, "scores": sc.generations, "extra": sc.extra, "generations": ["hint"],
                "timing": {"generate_s": 0.0, "score_s": 0.0}} for s, sc in zip(samples, scores)]
    summary = summarize(task, samples, records, EvalConfig())
    assert summary["report"]["judge_parsed_share"] == 0.25 and summary["report"]["judge_parsed"] == 1
    assert "1 of 4" in summary["warning"] and "judge_unparsed" in summary["warning"]
    out = io.StringIO()
    print_results({"final": {"hint-judge": summary}}, Console(file=out, width=300))
    assert "WARNING final / hint-judge" in out.getvalue()
    judge = ScriptedJudge([yes] * 4)
    scores = task.score_batch(samples, [["hint"]] * 4, ScoringContext(judge=judge))
    fine = task.report([{"values": sc.values, "scores": sc.generations, "extra": sc.extra} for sc in scores])
    assert fine["judge_parsed_share"] == 1.0 and "warning" not in fine
