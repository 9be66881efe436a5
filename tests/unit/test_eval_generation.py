"""The in-process transformers backend: batching, left padding, stops, seeds, n samples."""

import pytest
import torch

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


def test_length_sorted_batches_return_outputs_in_prompt_order(model_tok, monkeypatch):
    model, tok = model_tok
    settings = GenerationSettings(max_new_tokens=6)
    gen = TransformersGenerator(model, tok, batch_size=2)
    widths = []
    real = gen._generate_batch

    def spy(ids, *args):
        widths.append([len(x) for x in ids])
        return real(ids, *args)

    monkeypatch.setattr(gen, "_generate_batch", spy)
    out = gen.generate(PROMPTS, settings)
    # Batches are formed longest first (less padding), whatever the prompt order ...
    flat = [w for batch in widths for w in batch]
    assert flat == sorted(flat, reverse=True) and flat != [len(gen._encode(p)) for p in PROMPTS]
    # ... and each output is the one of its own prompt.
    alone = TransformersGenerator(model, tok, batch_size=1)
    assert out == [alone.generate([p], settings)[0] for p in PROMPTS]


@pytest.fixture(scope="module")
def adapter_folder(tmp_path_factory):
    """A LoRA adapter on the tiny random model with non-zero weights (B != 0: it changes outputs)."""
    from peft import LoraConfig, get_peft_model

    from tunelab.config import ModelConfig
    from tunelab.models.loading import load_base

    model, _ = load_base(ModelConfig(name="builtin:tiny-random-qwen2", dtype="float32", device="cpu"))
    torch.manual_seed(0)
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
                     init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    return out


def _session(adapter_folder, tmp_path):
    from tunelab.config import EvalConfig, validate_config
    from tunelab.evaluation.generation import VariantSession

    exp = validate_config({"model": {"name": "builtin:tiny-random-qwen2", "dtype": "float32", "device": "cpu"},
                           "data": {"sources": [{"builtin": "math-word"}]}})
    return VariantSession(str(adapter_folder), tmp_path, exp, EvalConfig(batch_size=2))


def test_a_session_generates_on_a_merged_copy_with_the_adapters_greedy_outputs(adapter_folder, tmp_path, model_tok):
    settings = GenerationSettings(max_new_tokens=12)
    session = _session(adapter_folder, tmp_path)
    gen = session.generator()
    assert not hasattr(gen.model, "peft_config")  # merged: plain transformers layers, no LoRA
    merged_out = gen.generate(PROMPTS, settings)
    adapter, tok, _ = session.model_ref.load()  # the same ref loaded again: base + LoRA layers
    assert hasattr(adapter, "peft_config")
    assert merged_out == TransformersGenerator(adapter, tok, batch_size=2).generate(PROMPTS, settings)
    base, base_tok = model_tok
    assert merged_out != TransformersGenerator(base, base_tok, batch_size=2).generate(PROMPTS, settings)


def test_a_merged_copy_that_fails_the_parity_check_falls_back_to_the_adapter(adapter_folder, tmp_path, monkeypatch,
                                                                            caplog):
    from tunelab.evaluation import generation

    monkeypatch.setattr(generation, "MERGE_RTOL", -1.0)  # no merged copy can match: the check must fail
    with caplog.at_level("WARNING", logger="tunelab.evaluation.generation"):
        gen = _session(adapter_folder, tmp_path).generator()
    assert hasattr(gen.model, "peft_config")
    assert "evaluating on the adapter" in caplog.text and "max |logit difference|" in caplog.text


def test_the_parity_check_catches_a_merged_copy_that_answers_otherwise(adapter_folder, tmp_path, monkeypatch):
    import copy

    from tunelab.evaluation import generation

    adapter, tok, _ = _session(adapter_folder, tmp_path).model_ref.load()
    good = copy.deepcopy(adapter).merge_and_unload().eval()
    assert generation.merge_mismatch(adapter, good, tok) is None
    bad = copy.deepcopy(adapter).merge_and_unload().eval()
    with torch.no_grad():
        bad.lm_head.weight.neg_()  # other tokens, whatever the logit tolerance
    monkeypatch.setattr(generation, "MERGE_RTOL", 1e9)  # only the greedy check can catch it
    assert "generates other greedy tokens on the probe" in generation.merge_mismatch(adapter, bad, tok)
