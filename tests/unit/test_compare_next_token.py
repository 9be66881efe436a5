"""Next-token view: divergences by hand and against scipy, prompts templated exactly as in
training, training-split lookup, and the distributions of a real tiny model."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tunelab.compare.next_token import (PromptCase, divergences, entropy_bits, next_token_logprobs, prompt_cases,
                                        top_k, training_overlap)
from tunelab.data.types import ChatExample


def logp(probs):
    return torch.log(torch.tensor(probs, dtype=torch.float64))


def test_divergences_by_hand_and_against_scipy():
    d = divergences(logp([0.5, 0.5]), logp([0.25, 0.75]))
    assert d["kl_ref_to_variant"] == pytest.approx(0.5 * 1 + 0.5 * math.log2(0.5 / 0.75))
    assert d["kl_variant_to_ref"] == pytest.approx(0.25 * math.log2(0.5) + 0.75 * math.log2(1.5))
    distance = pytest.importorskip("scipy.spatial.distance")
    rng = np.random.default_rng(0)
    for _ in range(5):
        p, q = rng.dirichlet(np.ones(50)), rng.dirichlet(np.ones(50))
        js = divergences(logp(p), logp(q))["js"]
        assert js == pytest.approx(distance.jensenshannon(p, q, base=2) ** 2, rel=1e-9)
    same = divergences(logp([0.2, 0.8]), logp([0.2, 0.8]))
    assert same == pytest.approx({"kl_ref_to_variant": 0.0, "kl_variant_to_ref": 0.0, "js": 0.0}, abs=1e-12)
    disjoint = divergences(logp([1.0, 0.0]), logp([0.0, 1.0]))
    assert disjoint["js"] == pytest.approx(1.0) and math.isinf(disjoint["kl_ref_to_variant"])
    # padded vocabularies: compared over the shared prefix, renormalised
    assert divergences(logp([0.5, 0.5]), logp([0.5, 0.5, 0.0]))["js"] == pytest.approx(0.0, abs=1e-12)


def test_entropy_and_top_k():
    assert entropy_bits(logp([1 / 8] * 8)) == pytest.approx(3.0)
    assert entropy_bits(logp([1.0, 0.0])) == pytest.approx(0.0)
    tok = SimpleNamespace(decode=lambda ids: f"<{ids[0]}>")
    top = top_k(logp([0.1, 0.6, 0.3]), tok, 2)
    assert [(t["id"], t["token"]) for t in top] == [(1, "<1>"), (2, "<2>")]
    assert top[0]["prob"] == pytest.approx(0.6)


def chat(user: str, reply: str = "ok", system: str | None = None) -> ChatExample:
    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return ChatExample(msgs, "src", f"f:{abs(hash(user)) % 1000}")


def test_training_overlap_exact_near_and_no():
    train = [chat("Write a function that returns the minimum of a list."), chat("Reverse a string in place.")]
    cases = [PromptCase("a", chat("write a function that returns   the minimum of a list.").messages[:1]),
             PromptCase("b", chat("Write a function that returns the maximum of a list.").messages[:1]),
             PromptCase("c", chat("Explain recursion with an example about trees.").messages[:1])]
    out = training_overlap(cases, train, threshold=0.7)
    assert [o["status"] for o in out] == ["exact", "near", "no"]
    assert out[0]["origin"] == train[0].origin and out[1]["similarity"] < 1.0


def test_prompt_cases_from_config_and_from_the_test_split():
    exp = SimpleNamespace(compare=SimpleNamespace(prompts=["Hi there"], prompt_ids=[], n_prompts=2),
                          data=SimpleNamespace(sources=[SimpleNamespace(system_prompt="Be brief.")]))
    (case,) = prompt_cases(exp, None)
    assert case.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    exp.compare.prompts = []
    splits = SimpleNamespace(train=[chat("t")], val=[], test=[chat("q1", "a1"), chat("q2", "a2"), chat("q3", "a3")])
    cases = prompt_cases(exp, splits)
    assert [c.reference for c in cases] == ["a1", "a2"] and cases[0].messages[-1]["role"] == "user"
    assert cases[0].meta["split"] == "test"


def test_prompt_ids_name_examples_of_the_run_with_their_replies():
    """A study config names one training prompt and one unseen by id (ts-instruct's, as its card
    says); each case brings its reference reply, and the training lookup tells them apart."""
    from tunelab.config import Experiment
    from tunelab.data.mixing import build_splits
    from tunelab.errors import ConfigError

    exp = Experiment.model_validate({
        "model": {"name": "builtin:tiny-code"},
        "data": {"sources": [{"builtin": "ts-instruct"}], "val": [{"builtin": "ts-instruct", "split": "val"}],
                 "test": [{"builtin": "ts-instruct", "split": "test"}]},
        "compare": {"prompts": ["Say hi."], "prompt_ids": ["ts-instruct/train/1", "ts-instruct/test/3"]},
    })
    splits = build_splits(exp.data, exp.seed)
    cases = prompt_cases(exp, splits)
    assert [c.id for c in cases] == ["prompt-0", "ts-instruct/train/1", "ts-instruct/test/3"]
    assert cases[0].reference is None and [c.meta["split"] for c in cases[1:]] == ["train", "test"]
    assert cases[1].reference.startswith("function task(list: number[]): number {")
    assert cases[2].messages[-1]["content"].startswith("Write a TypeScript function myFunc(list)")
    assert [o["status"] for o in training_overlap(cases[1:], splits.train, 0.8)] == ["exact", "no"]
    # A row without an id (a hub or file row) is named by its origin, as the data layer gives it.
    exp.compare.prompt_ids = [next(e.origin for e in splits.test if e.id == "ts-instruct/test/3")]
    assert prompt_cases(exp, splits)[1].reference == cases[2].reference
    exp.compare.prompt_ids = ["ts-instruct/tset/3"]
    with pytest.raises(ConfigError, match=r"compare\.prompt_ids: no example of this run's splits has id "
                                          r"'ts-instruct/tset/3' \(did you mean 'ts-instruct/test/3'\?\)"):
        prompt_cases(exp, splits)


def test_prompts_are_templated_exactly_as_in_training(data_tokenizer):
    """The rendered prompt's tokens are the training tokens before the reply, and the first
    token after them is the first one training puts loss on."""
    from tunelab.data.tokenize import IGNORE, label_example, resolve_chat_template
    from tunelab.evaluation.generation import TransformersGenerator
    from tunelab.evaluation.task import Prompt

    resolve_chat_template(data_tokenizer, "auto")
    ex = chat("Write a Python function that reverses a string.", "def rev(s):\n    return s[::-1]", system="Be exact.")
    ids, labels = label_example(ex, data_tokenizer)
    rendered = TransformersGenerator(None, data_tokenizer).render(Prompt(messages=ex.messages[:-1]))
    prompt_ids = data_tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    assert all(x == IGNORE for x in labels[: len(prompt_ids)]) and labels[len(prompt_ids)] != IGNORE


def test_next_token_logprobs_of_a_tiny_model():
    from tunelab.config import ModelConfig
    from tunelab.models.loading import load_base

    model, tok = load_base(ModelConfig(name="builtin:tiny-random-qwen2", dtype="float32"))
    model.eval()
    texts = ["def add(a, b):", "Hello"]
    lp = next_token_logprobs(model, tok, texts)
    assert lp.shape[0] == 2 and lp.dtype == torch.float64
    assert lp.exp().sum(dim=-1).tolist() == pytest.approx([1.0, 1.0])
    with torch.no_grad():
        ids = tok(texts[0], add_special_tokens=False, return_tensors="pt")["input_ids"]
        manual = torch.log_softmax(model(input_ids=ids).logits[0, -1].double(), -1)
    assert torch.allclose(lp[0], manual, atol=1e-6)


def test_reply_token_probs_match_step_by_step_next_token_distributions():
    """Teacher-forced scoring of a reply equals asking for the next token after each prefix."""
    from tunelab.compare.next_token import reply_token_probs, reply_view
    from tunelab.config import ModelConfig
    from tunelab.models.loading import load_base

    model, tok = load_base(ModelConfig(name="builtin:tiny-random-qwen2", dtype="float32"))
    model.eval()
    prompt, reply = "def add(a, b):", "\n    return a + b"
    r = reply_token_probs(model, tok, prompt, reply, max_tokens=4)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert r["ids"] == tok(reply, add_special_tokens=False)["input_ids"][:4] and len(r["prob"]) == 4
    for j, t in enumerate(r["ids"]):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([p_ids + r["ids"][:j]])).logits[0, -1].double()
        lp = torch.log_softmax(logits, -1)
        assert r["prob"][j] == pytest.approx(float(lp[t].exp()), rel=1e-4)
        assert r["top1"][j] == int(lp.argmax())

    # The view: per-variant mean NLL in bits, top-1 agreement, largest moves against the reference.
    sure = {"ids": r["ids"], "prob": [1.0, 0.5, 1.0, 0.25], "top1": r["ids"]}
    unsure = {"ids": r["ids"], "prob": [0.5, 0.5, 0.5, 0.5], "top1": [0, r["ids"][1], 0, 0]}
    view = reply_view(tok, "reference reply", {"base": unsure, "final": sure}, "base")
    assert view["tokens"] == [tok.decode([i]) for i in r["ids"]]
    assert view["mean_nll_bits"] == pytest.approx({"base": 1.0, "final": 0.75})
    assert view["top1_agreement"] == {"base": 0.25, "final": 1.0}
    moves = view["largest_changes"]["final"]
    assert [m["position"] for m in moves[:2]] == [0, 2] and moves[0]["prob_reference"] == 0.5
    other = {"ids": r["ids"][:3], "prob": [0.5] * 3, "top1": [0] * 3}
    assert "skipped" in reply_view(tok, "x", {"base": unsure, "final": other}, "base")


NT = {"reference": "base", "top_k": 2, "prompts": [{
    "id": "test-0", "in_train": {"status": "no"},
    "top": {"base": [{"id": 1, "token": " [x]", "prob": 0.4}, {"id": 2, "token": "\n", "prob": 0.2}],
            "final": [{"id": 3, "token": "def", "prob": 0.7}, {"id": 4, "token": "y" * 60, "prob": 0.0004}]},
    "entropy_bits": {"base": 5.1, "final": 2.2},
    "divergence": {"final": {"kl_ref_to_variant": 1.5, "kl_variant_to_ref": 1.25, "js": 0.3}}}]}


def test_the_console_table_puts_each_variants_top_tokens_side_by_side():
    import io

    from rich.console import Console

    from tunelab.compare.next_token import print_next_token

    buf = io.StringIO()
    print_next_token(NT, Console(file=buf, force_terminal=False, width=120))
    out = buf.getvalue()
    lines = out.splitlines()
    assert "next token: test-0 (in training: no)" in lines[0]
    row1 = next(line for line in lines if line.strip().startswith("1 "))
    row2 = next(line for line in lines if line.strip().startswith("2 "))
    # rank, base token and p, final token and p, in that order on one line; markup-like text kept
    assert row1.split() == ["1", "␣[x]", "0.400", "def", "0.700"]
    assert row2.split() == ["2", "\\n", "0.200", "y" * 23 + "…", "4.0e-04"]
    assert "KL(base‖final) 1.500, KL(final‖base) 1.250, JS 0.300" in out and "entropy final 2.200" in out
    assert not any(c in out for c in "─│━")  # plain text when not a terminal

    buf = io.StringIO()
    print_next_token(NT, Console(file=buf, force_terminal=True, width=120))
    assert "─" in buf.getvalue()
