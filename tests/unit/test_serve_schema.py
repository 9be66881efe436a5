"""serve.openai_schema and the pure parts of serve.engine: validation, error shape, stop handling."""

from __future__ import annotations

import pytest

from tunelab.serve import openai_schema as oa
from tunelab.serve.engine import Delta, TokenInfo, _find_stop, _held_back


def _chat(**kw):
    return {"model": "base", "messages": [{"role": "user", "content": "hi"}], **kw}


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"[1, 2]", b'"text"', b"", b"[" * 100_000 + b"]" * 100_000])
def test_bad_bodies_are_400_with_the_openai_error_shape(raw):
    with pytest.raises(oa.APIError) as e:
        oa.parse_json(raw)
    assert e.value.status == 400
    err = e.value.body()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["type"] == "invalid_request_error"


@pytest.mark.parametrize(("body", "param"), [
    (_chat(temperature=2.5), "temperature"),
    (_chat(temperature="hot"), "temperature"),
    (_chat(top_p=0), "top_p"),
    (_chat(n=0), "n"),
    (_chat(n=oa.MAX_N + 1), "n"),
    (_chat(max_tokens=0), "max_tokens"),
    (_chat(max_tokens="12"), "max_tokens"),  # strict: a string is not a number
    (_chat(top_logprobs=oa.MAX_TOP_LOGPROBS + 1, logprobs=True), "top_logprobs"),
    (_chat(top_logprobs=2), "top_logprobs"),  # needs logprobs: true
    (_chat(stream="yes"), "stream"),
    (_chat(stream_options={"include_usage": True}), "stream_options"),  # only with stream
    (_chat(tools=[{"type": "function"}]), "tools"),
    (_chat(presence_penalty=3), "presence_penalty"),
    ({"model": "base", "messages": []}, "messages"),
    ({"model": "base", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"model": "base", "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
])
def test_chat_requests_out_of_range_name_the_parameter(body, param):
    with pytest.raises(oa.APIError) as e:
        oa.validate(oa.ChatRequest, body)
    assert e.value.status == 400 and e.value.param == param, e.value.message


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "prompt": "x", "logprobs": 21}, "logprobs"),
    ({"model": "m", "prompt": "x", "echo": True}, "echo"),
    ({"model": "m", "prompt": "x", "suffix": "y"}, "suffix"),
    ({"model": "m", "prompt": "x", "best_of": 3}, "best_of"),
    ({"model": "m", "prompt": {"a": 1}}, "prompt"),
    ({"model": "m", "prompt": [1.5]}, "prompt"),
])
def test_completion_requests_refuse_what_the_server_cannot_honour(body, param):
    with pytest.raises(oa.APIError) as e:
        oa.validate(oa.CompletionRequest, body)
    assert e.value.status == 400 and e.value.param == param, e.value.message


def test_a_valid_request_becomes_engine_settings_with_openai_defaults():
    req = oa.validate(oa.ChatRequest, _chat(stop=["\n\n", "END"], seed=3, logprobs=True, top_logprobs=2,
                                            logit_bias={"7": -100}, user="ignored", metadata={"a": "b"}))
    s = oa.sampling(req, max_tokens=10, vocab_size=100, extra_stops=["</s>"])
    assert (s.temperature, s.top_p, s.seed, s.max_tokens) == (1.0, 1.0, 3, 10)
    assert s.stop == ("\n\n", "END", "</s>") and s.logprobs and s.top_logprobs == 2 and s.logit_bias == {7: -100}
    content = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    req = oa.validate(oa.ChatRequest, {"model": "m", "messages": [{"role": "user", "content": content}]})
    assert req.messages[0].text() == "ab"
    with pytest.raises(oa.APIError, match="at most 4 stop"):
        oa.sampling(oa.validate(oa.ChatRequest, _chat(stop=list("abcde"))), 5, 100, [])
    with pytest.raises(oa.APIError, match="token id below 100"):
        oa.sampling(oa.validate(oa.ChatRequest, _chat(logit_bias={"100": 1})), 5, 100, [])
    req = oa.validate(oa.CompletionRequest, {"model": "m", "prompt": [[1, 2], [3]], "logprobs": 0})
    s = oa.sampling(req, 5, 100, [])
    assert s.logprobs and s.top_logprobs == 0  # logprobs: 0 = the chosen token's logprob only


def test_stop_strings_are_held_back_until_decided():
    assert _held_back("abc<|im", ["<|im_end|>"]) == 4
    assert _held_back("abc", ["<|im_end|>"]) == 0
    assert _held_back("x\n", ["\n\n", "STOP"]) == 1
    assert _find_stop("one\n\ntwo", ["\n\n"], 0) == 3
    assert _find_stop("one two", ["\n\n"], 0) == -1
    assert _find_stop("abSTOPcd", ["STOP", "cd"], 2) == 2  # the earliest of several


def test_logprob_objects_have_the_openai_shapes():
    d = Delta("ab", [TokenInfo(1, "a", -0.5, [("a", -0.5), ("x", -1.0)]), TokenInfo(2, "b", -0.1, [])])
    chat = oa.chat_logprobs(d)["content"]
    assert chat[0] == {"token": "a", "logprob": -0.5, "bytes": [97],
                       "top_logprobs": [{"token": "a", "logprob": -0.5, "bytes": [97]},
                                        {"token": "x", "logprob": -1.0, "bytes": [120]}]}
    text = oa.text_logprobs(d, offset=3)
    assert text == {"tokens": ["a", "b"], "token_logprobs": [-0.5, -0.1], "top_logprobs": [{"a": -0.5, "x": -1.0}, {}],
                    "text_offset": [3, 4]}
    merged = oa.merge_logprobs([text, oa.text_logprobs(Delta("c", [TokenInfo(3, "c", -2.0, [])]), 5)], chat=False)
    assert merged["tokens"] == ["a", "b", "c"] and merged["text_offset"] == [3, 4, 5]
