"""Reasoning models: scoring strips the `<think>` block in one place for every task (samples.jsonl
keeps the raw text), and `eval.enable_thinking` switches Qwen3's thinking the same way for
evaluation and training, checked with the real Qwen3 tokenizer and chat template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tunelab.config import EvalConfig, validate_config
from tunelab.data.tokenize import IGNORE, label_example
from tunelab.data.types import ChatExample
from tunelab.errors import TrainingError
from tunelab.evaluation.engine import evaluate_run
from tunelab.generation import GenerationSettings, OpenAIGenerator, Prompt, strip_reasoning
from tunelab.generation.transformers_backend import TransformersGenerator
from tunelab.runs import check_resume_config, read_json, read_jsonl

EXP = validate_config({"model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"builtin": "math-word"}]}})
EMPTY_THINK = "<think>\n\n</think>\n\n"
HI = [{"role": "user", "content": "What is 2 + 3?"}]


def test_the_reasoning_block_is_stripped_before_the_answer_is_read():
    assert strip_reasoning("<think>\nMaybe 4? No: 5.\n</think>\n\n#### 5") == "#### 5"
    assert strip_reasoning("  \n<think>a</think>answer") == "answer"
    assert strip_reasoning("<think>\nstill thinking when the tokens ran out, #### 4") == ""  # no answer yet
    assert strip_reasoning("the template opened the block\n</think>\n\n#### 5") == "#### 5"
    plain = "def f():\n    return '<think>'\n"
    assert strip_reasoning(plain) == plain and strip_reasoning("#### 5") == "#### 5"


def make_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    return run


def answer_of(prompt: Prompt) -> str:
    from tunelab.evaluation.registry import get_task

    answers = {s.data["question"]: s.data["final"] for s in get_task("math-word").load("test")}
    return next(a for q, a in answers.items() if q in prompt.messages[-1]["content"])


class ThinkingSession:
    """Thinks before it answers (right in its answer, wrong in its thoughts); every third reply
    is cut off while still thinking."""

    def __init__(self, ref, log):
        self.ref, self.backend, self.identity, self.log = ref, "fake", f"fake:{ref}", log

    def generator(self):
        return self

    def generate(self, prompts, settings):
        out = []
        for i, p in enumerate(prompts, len(self.log) + 1):
            want = answer_of(p)
            out.append([f"<think>\nIt could be #### {int(want) + 1}\n</think>\n\nSo #### {want}"
                        if i % 3 else f"<think>\nSurely #### {want}, let me check"])
        self.log.extend(prompts)
        return out

    def render(self, prompt):
        return "<|im_start|>user\n" + prompt.messages[-1]["content"] + "<|im_end|>\n<|im_start|>assistant\n"

    def close(self):
        pass


def test_every_task_is_scored_on_the_answer_and_the_raw_reply_is_kept(tmp_path):
    run, log = make_run(tmp_path), []
    cfg = EvalConfig(tasks=["math-word"], models=["base"], limit=6)
    summary = evaluate_run(run, EXP, cfg, session_factory=lambda ref: ThinkingSession(ref, log))["base"]["math-word"]
    records = read_jsonl(run / "eval" / "base" / "math-word" / "samples.jsonl")
    cut = [r for r in records if "</think>" not in r["generations"][0]]
    assert len(cut) == 2 and all(r["generations"][0].startswith("<think>") for r in records)  # raw text kept
    # Finished thoughts: the answer after them counts, not the number inside; cut-off ones have no answer.
    assert all(r["scores"][0]["verdict"] == ("no_answer" if r in cut else "correct") for r in records)
    assert summary["metrics"]["accuracy_strict"]["value"] == pytest.approx(4 / 6)
    assert summary["failure_categories"] == {"correct": 4, "no_answer": 2}
    # The first item's prompt as the model got it, for the report.
    assert summary["rendered_prompt"]["id"] == records[0]["id"]
    assert summary["rendered_prompt"]["text"].startswith("<|im_start|>user\n")


def test_the_thinking_switch_is_part_of_the_cache_key_and_the_summary(tmp_path):
    run, log = make_run(tmp_path), []
    cfg = EvalConfig(tasks=["math-word"], models=["base"], limit=3)
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: ThinkingSession(ref, log))
    assert len(log) == 3
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: ThinkingSession(ref, log))
    assert len(log) == 3  # cached
    off = cfg.model_copy(update={"enable_thinking": False})
    evaluate_run(run, EXP, off, session_factory=lambda ref: ThinkingSession(ref, log))
    assert len(log) == 6  # asked again: the template renders another prompt
    assert read_json(run / "eval" / "base" / "math-word" / "summary.json")["enable_thinking"] is False


def test_training_cannot_resume_with_another_thinking_switch():
    exp = EXP
    changed = exp.model_copy(update={"eval": exp.eval.model_copy(update={"enable_thinking": False})})
    with pytest.raises(TrainingError, match=r"eval.enable_thinking: None \(run\) -> False"):
        check_resume_config(exp.model_dump(mode="json"), changed)
    other = exp.model_copy(update={"eval": exp.eval.model_copy(update={"limit": 3})})
    with pytest.warns(UserWarning):
        check_resume_config(exp.model_dump(mode="json"), other)  # other eval keys stay safe to change


# ---- the real Qwen3 template -----------------------------------------------------------------------


def test_qwen3_renders_the_empty_think_block_only_with_thinking_off(qwen3_tokenizer):
    prompt = Prompt(messages=HI)
    off = TransformersGenerator(None, qwen3_tokenizer, enable_thinking=False).render(prompt)
    on = TransformersGenerator(None, qwen3_tokenizer, enable_thinking=True).render(prompt)
    default = TransformersGenerator(None, qwen3_tokenizer).render(prompt)
    head = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    assert off == head + EMPTY_THINK
    assert on == default == head  # on is the template's default: the model opens its own block
    ids = qwen3_tokenizer(off, add_special_tokens=False)["input_ids"]
    think, done = qwen3_tokenizer.convert_tokens_to_ids(["<think>", "</think>"])
    (newlines,) = qwen3_tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    assert ids[-4:] == [think, newlines, done, newlines]  # the block is its own tokens, as Qwen3 has it
    assert qwen3_tokenizer.convert_tokens_to_ids("<think>") == 151667  # Qwen3's own ids


def test_training_masks_the_empty_think_block_as_evaluation_asks(qwen3_tokenizer):
    ex = ChatExample(messages=[*HI, {"role": "assistant", "content": "#### 5"}], source="t", origin="t:1")

    def trained_text(enable_thinking):
        ids, labels = label_example(ex, qwen3_tokenizer, enable_thinking=enable_thinking)
        return qwen3_tokenizer.decode([i for i, lab in zip(ids, labels) if lab != IGNORE])

    # Off: the block is part of the prompt evaluation sends, so it carries no loss.
    assert trained_text(False) == "#### 5<|im_end|>"
    # On (the template's default): the model writes the block itself, so it learns to.
    assert trained_text(True) == trained_text(None) == EMPTY_THINK + "#### 5<|im_end|>"


def test_the_data_stage_renders_with_the_eval_thinking_switch(qwen3_tokenizer, data_write_jsonl):
    from tunelab.data.pipeline import prepare

    rows = [{"instruction": f"What is {i} + 1?", "output": f"#### {i + 1}"} for i in range(10)]
    raw = {"model": {"name": "Qwen/Qwen3-0.6B"}, "data": {"sources": [{"path": str(data_write_jsonl("d.jsonl", rows))}]},
           "eval": {"enable_thinking": False}}
    tok, think = qwen3_tokenizer, qwen3_tokenizer.convert_tokens_to_ids("<think>")
    off = prepare(validate_config(raw), tok)
    assert off.stats["enable_thinking"] is False and off.stats["chat_template"] == "tokenizer"
    ex = off.train_examples[0]
    assert ex.labels[ex.input_ids.index(think)] == IGNORE  # in the prompt: the generation prompt ends with it
    on = prepare(validate_config({**raw, "eval": {"enable_thinking": True}}), tok)
    ex = on.train_examples[0]
    assert ex.labels[ex.input_ids.index(think)] == think  # the model writes the block: it is learned


def test_an_endpoint_gets_the_switch_as_chat_template_kwargs():
    settings = GenerationSettings(max_new_tokens=8)
    off = OpenAIGenerator("http://127.0.0.1:9/v1", "m", None, enable_thinking=False)
    assert off._body(Prompt(messages=HI), settings, 1, 0)["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in off._body(Prompt(text="2 + 3 ="), settings, 1, 0)
    assert "chat_template_kwargs" not in OpenAIGenerator("http://127.0.0.1:9/v1", "m", None)._body(
        Prompt(messages=HI), settings, 1, 0)


@pytest.fixture(scope="module")
def qwen3_template_model(tiny_model_dir, tmp_path_factory, qwen3_chat_template) -> Path:
    """The tiny random Qwen3 model with the real Qwen3 chat template."""
    folder = tmp_path_factory.mktemp("tiny-qwen3-template") / "model"
    shutil.copytree(tiny_model_dir("qwen3"), folder)
    config = folder / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "chat_template": qwen3_chat_template}))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    return folder


def test_a_tiny_eval_records_the_rendered_prompt_and_the_report_shows_it(qwen3_template_model, tmp_path):
    from tunelab.report import write_report

    exp = validate_config({"model": {"name": str(qwen3_template_model)}, "data": {"sources": [{"builtin": "math-word"}]},
                           "eval": {"tasks": ["math-word"], "models": ["base"], "limit": 1, "max_new_tokens": 2,
                                    "enable_thinking": False}})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(exp.to_yaml())
    summary = evaluate_run(run, exp, exp.eval)["base"]["math-word"]
    rendered = summary["rendered_prompt"]["text"]
    assert rendered.startswith("<|im_start|>user\n") and rendered.endswith("<|im_start|>assistant\n" + EMPTY_THINK)
    record = read_jsonl(run / "eval" / "base" / "math-word" / "samples.jsonl")[0]
    assert record["rendered_prompt"] == rendered and isinstance(record["prompt"], list)
    html = write_report([run]).read_text()
    results = html.split('id="results"')[1].split("</section>")[0]
    assert "prompt of item math-word/test/0 as base got it: the exact text after the chat template" in results
    assert "<pre>&lt;|im_start|&gt;user\n" in results and "&lt;think&gt;\n\n&lt;/think&gt;" in results
    assert "<|im_start|>" not in html  # escaped, never markup


def test_the_loss_task_scores_the_tokens_training_labelled_under_the_thinking_switch(qwen3_tokenizer):
    # The loss task tokenizes as training does: with thinking off, the empty block is prompt (no loss).
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from tunelab.evaluation.registry import get_task
    from tunelab.evaluation.task import Sample

    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(qwen3_tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                         head_dim=8)).eval()
    sample = Sample(id="s1", data={"messages": HI, "reference": "#### 5"})
    ex = ChatExample(messages=[*HI, {"role": "assistant", "content": "#### 5"}], source="t", origin="t:1")
    task = get_task("loss")
    for switch in (False, True):
        (score,) = task.score_model([sample], model, qwen3_tokenizer, enable_thinking=switch)
        _, labels = label_example(ex, qwen3_tokenizer, enable_thinking=switch)
        assert score.extra["n_tokens"] == sum(lab != IGNORE for lab in labels)
    off, on = (task.score_model([sample], model, qwen3_tokenizer, enable_thinking=s)[0].extra["n_tokens"]
               for s in (False, True))
    assert on > off  # the block's tokens carry loss only when the model writes it itself
