"""Chat-template resolution, prompt masking on any template, truncation and its statistics."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from tunelab.config import DataConfig
from tunelab.data.tokenize import (
    CHATML_TEMPLATE,
    IGNORE,
    PLAIN_TEMPLATE,
    end_of_turn,
    label_example,
    mask_segments,
    resolve_chat_template,
    tokenize_all,
)
from tunelab.data.types import ChatExample, TokenizedExample
from tunelab.errors import DataError

MULTI = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Add 2 and 3"},
    {"role": "assistant", "content": "def f():\n    return 5"},
    {"role": "user", "content": "again"},
    {"role": "assistant", "content": "ok"},
]


def chat(messages, origin="t.jsonl:1") -> ChatExample:
    return ChatExample(messages=messages, source="t", origin=origin)


def trained_text(tokenizer, messages, train_on_prompt=False) -> list[str]:
    """The decoded runs of tokens that carry loss."""
    ids, labels = label_example(chat(messages), tokenizer, train_on_prompt)
    return [text for text, on in mask_segments(TokenizedExample(ids, labels, "t"), tokenizer) if on]


@pytest.fixture
def base_tokenizer():
    """A tiny byte-level BPE tokenizer with no chat template and no ChatML tokens (a 'base model')."""
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tk.train_from_iterator(["hello world", "### User:", "### Assistant:", "def f(): return 5"] * 5, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="</s>")


def test_labels_on_a_hand_checked_example(data_tokenizer):
    ids, labels = label_example(chat([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]),
                                data_tokenizer)
    # <|im_start|> user \n hi <|im_end|> \n <|im_start|> ass ist ant \n | ok <|im_end|> | \n
    assert ids == [1, 1888, 202, 4760, 2, 202, 1, 350, 813, 1384, 202, 1270, 2, 202]
    assert labels == [IGNORE] * 11 + [1270, 2] + [IGNORE]


def test_every_assistant_turn_and_its_end_token_carry_loss(data_tokenizer):
    assert trained_text(data_tokenizer, MULTI) == ["def f():\n    return 5<|im_end|>", "ok<|im_end|>"]
    # Same tokens as the template's own {% generation %} mask.
    ids, labels = label_example(chat(MULTI), data_tokenizer)
    ref = data_tokenizer.apply_chat_template(MULTI, return_assistant_tokens_mask=True, return_dict=True)
    assert ids == ref["input_ids"]
    assert [int(x != IGNORE) for x in labels] == ref["assistant_masks"]


def test_template_without_generation_markers(data_tokenizer):
    with_markers = label_example(chat(MULTI), data_tokenizer)
    data_tokenizer.chat_template = CHATML_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    assert "{% generation %}" not in data_tokenizer.chat_template
    assert label_example(chat(MULTI), data_tokenizer) == with_markers


def test_llama_style_template(data_tokenizer):
    # Text markers (not special tokens), a bos written by the template, content trimmed.
    data_tokenizer.chat_template = (
        "{{ '<|begin|>' }}{% for m in messages %}{{ '<|hdr|>' + m['role'] + '<|/hdr|>\n\n' + m['content'] | trim }}"
        "{{ '<|eot|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|hdr|>assistant<|/hdr|>\n\n' }}{% endif %}"
    )
    assert end_of_turn(data_tokenizer) == "<|eot|>"
    # BPE merges "><" across "<|eot|><|hdr|>": a token overlapping the reply span carries loss,
    # so the model still learns to write the whole end marker.
    assert trained_text(data_tokenizer, MULTI) == ["def f():\n    return 5<|eot|><", "ok<|eot|>"]


def test_template_whose_prefixes_render_differently(data_tokenizer):
    # Marks the last message, so rendering messages[:i] is not a prefix of the full rendering:
    # the fallback locates each reply and its end-of-turn marker instead.
    data_tokenizer.chat_template = (
        "{% for m in messages %}{% if loop.last %}LAST {% endif %}<|im_start|>{{ m['role'] }}\n"
        "{{ m['content'] }}<|im_end|>\n{% endfor %}"
    )
    assert trained_text(data_tokenizer, MULTI) == ["def f():\n    return 5<|im_end|>", "ok<|im_end|>"]


def test_train_on_prompt_labels_every_token(data_tokenizer):
    ids, labels = label_example(chat(MULTI), data_tokenizer, train_on_prompt=True)
    assert labels == ids


def test_slow_tokenizer_path_gives_the_same_labels(data_tokenizer):
    class Slow:  # a tokenizer without offsets: labels come from tokenizing pieces separately
        is_fast = False

        def __init__(self, tok):
            self._tok = tok

        def __getattr__(self, name):
            return getattr(self._tok, name)

        def __call__(self, text, **kw):
            assert "return_offsets_mapping" not in kw
            return self._tok(text, **kw)

    assert label_example(chat(MULTI), Slow(data_tokenizer)) == label_example(chat(MULTI), data_tokenizer)


def test_resolve_chat_template(data_tokenizer, base_tokenizer):
    assert resolve_chat_template(data_tokenizer, "auto") == "tokenizer"
    data_tokenizer.chat_template = None
    assert resolve_chat_template(data_tokenizer, "auto") == "chatml"
    assert data_tokenizer.chat_template == CHATML_TEMPLATE
    assert resolve_chat_template(base_tokenizer, "auto") == "plain"
    assert base_tokenizer.chat_template == PLAIN_TEMPLATE
    assert resolve_chat_template(data_tokenizer, "plain") == "plain"
    assert data_tokenizer.chat_template == PLAIN_TEMPLATE


def test_plain_template_ends_replies_with_eos(base_tokenizer):
    resolve_chat_template(base_tokenizer, "auto")
    text = base_tokenizer.apply_chat_template(MULTI[1:3], tokenize=False)
    assert text == "### User:\nAdd 2 and 3\n\n### Assistant:\ndef f():\n    return 5</s>\n\n"
    assert end_of_turn(base_tokenizer) == "</s>"
    assert trained_text(base_tokenizer, MULTI) == ["def f():\n    return 5</s>", "ok</s>"]


def test_template_error_names_the_row(data_tokenizer):
    data_tokenizer.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(DataError, match=r"^t.jsonl:9: the chat template cannot render this example: .*alternate"):
        label_example(chat(MULTI, origin="t.jsonl:9"), data_tokenizer)


def _examples():
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]  # 14 tokens
    long_reply = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * 30}]  # 44
    long_prompt = [{"role": "user", "content": "hi " * 30}, {"role": "assistant", "content": "ok"}]  # 44
    return [chat(short, "a:1"), chat(long_reply, "a:2"), chat(long_prompt, "a:3")]


def test_truncate_right(data_tokenizer):
    full_ids, _ = label_example(_examples()[1], data_tokenizer)
    out, stats = tokenize_all(_examples(), data_tokenizer, DataConfig(sources=[{"path": "x"}], max_seq_len=20))
    assert [len(t) for t in out] == [14, 20] and [t.truncated for t in out] == [False, True]
    assert out[1].input_ids == full_ids[:20]
    # The long prompt leaves no reply token in its first 20: removed and counted.
    assert stats == {
        "n_examples": 3, "n_kept": 2, "n_truncated": 1, "n_dropped": 0, "n_no_label": 1,
        "tokens_total": 34, "label_tokens_total": 2 + 9, "length_mean": 17.0,
        "length_p50": 14, "length_p95": 20, "length_max": 20,
    }


def test_truncate_left_keeps_the_end(data_tokenizer):
    full_ids, full_labels = label_example(_examples()[1], data_tokenizer)
    cfg = DataConfig(sources=[{"path": "x"}], max_seq_len=20, truncation="left")
    out, stats = tokenize_all(_examples(), data_tokenizer, cfg)
    assert out[1].input_ids == full_ids[-20:] and out[1].labels == full_labels[-20:]
    assert out[1].input_ids[-2:] == [2, 202]  # still ends with <|im_end|> \n
    assert (stats["n_kept"], stats["n_truncated"], stats["n_no_label"]) == (3, 2, 0)
    assert stats["label_tokens_total"] == 2 + 18 + 2


def test_truncate_drop(data_tokenizer):
    cfg = DataConfig(sources=[{"path": "x"}], max_seq_len=20, truncation="drop")
    out, stats = tokenize_all(_examples(), data_tokenizer, cfg)
    assert [len(t) for t in out] == [14]
    assert (stats["n_kept"], stats["n_dropped"], stats["n_truncated"]) == (1, 2, 0)
