"""The in-process transformers backend: batching, left padding, stops, seeds, n samples."""

import pytest

from tunelab.generation import GenerationSettings, Prompt, TransformersGenerator, cut_at_stop

PROMPTS = [
    Prompt(messages=[{"role": "user", "content": "Write a function that adds two numbers."}]),
    Prompt(messages=[{"role": "user", "content": "Hi"}]),
    Prompt(text="def fibonacci(n):\n    "),
    Prompt(messages=[{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Sort a list of integers in place, then return its median value."}]),
]


@pytest.fixture(scope="module")
def model_tok():
    from tunelab.config import ModelConfig
    from tunelab.models.loading import load_base

    model, tok = load_base(ModelConfig(name="builtin:tiny-random-qwen2", dtype="float32", device="cpu"))
    return model.eval(), tok


def test_batched_greedy_equals_one_by_one(model_tok):
    model, tok = model_tok
    settings = GenerationSettings(max_new_tokens=12)
    batched = TransformersGenerator(model, tok, batch_size=4).generate(PROMPTS, settings)
    single = TransformersGenerator(model, tok, batch_size=1).generate(PROMPTS, settings)
    assert batched == single
    assert all(len(g) == 1 and g[0] for g in batched)


def test_prompts_are_left_padded_and_rendered_with_the_chat_template(model_tok):
    model, tok = model_tok
    gen = TransformersGenerator(model, tok)
    text = gen.render(PROMPTS[1])
    assert text.startswith("<|im_start|>user\nHi<|im_end|>") and text.endswith("<|im_start|>assistant\n")
    assert gen.render(PROMPTS[2]) == "def fibonacci(n):\n    "
    # The chat end-of-turn marker stops chat generation even where it is not the eos token.
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    assert eot in gen._eos_ids(chat=True)


def test_generation_is_cut_before_a_stop_sequence(model_tok):
    model, tok = model_tok
    gen = TransformersGenerator(model, tok, batch_size=2)
    free = gen.generate(PROMPTS[:2], GenerationSettings(max_new_tokens=16))
    text = free[0][0]
    assert len(text) > 6
    stop = text[3:6]  # a stop string taken from the middle of the free continuation
    cut = gen.generate(PROMPTS[:2], GenerationSettings(max_new_tokens=16, stop=(stop,)))
    assert cut[0][0] == text[: text.find(stop)]
    assert cut_at_stop("abc\ndef x\nclass", ["\nclass", "\ndef"]) == "abc"
    # A chat end-of-turn marker that is not one token stops chat replies as text.
    gen.end_of_turn = stop
    assert gen._single_token(stop) is None
    assert gen.generate(PROMPTS[:1], GenerationSettings(max_new_tokens=16))[0][0] == text[: text.find(stop)]


def test_sampling_is_seeded_and_returns_n_per_prompt(model_tok):
    model, tok = model_tok
    gen = TransformersGenerator(model, tok, batch_size=4)
    settings = GenerationSettings(max_new_tokens=8, n=3, temperature=1.0, seed=7)
    a = gen.generate(PROMPTS[:2], settings)
    b = gen.generate(PROMPTS[:2], settings)
    assert a == b and all(len(g) == 3 for g in a)
    assert len(set(a[0])) > 1  # a random model at temperature 1 gives different samples
    greedy = gen.generate(PROMPTS[:1], GenerationSettings(max_new_tokens=8, n=2))
    assert len(greedy[0]) == 2 and greedy[0][0] == greedy[0][1]


def test_vllm_backend_reports_a_missing_install_clearly(monkeypatch):
    import sys

    from tunelab.errors import EvalError
    from tunelab.generation import VLLMGenerator

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(EvalError, match="pip install vllm"):
        VLLMGenerator("some/model")
