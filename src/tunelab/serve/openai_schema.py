"""Requests and replies of the OpenAI API subset the server speaks, and its error shape.

Requests are validated strictly (types, ranges) and every problem becomes an `APIError` that the
server renders as OpenAI does:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature", "code": null}}

Fields this server does not implement but that have a harmless default (`user`, `metadata`,
`store`, ...) are ignored; fields whose non-default value would change the answer (`tools`,
`suffix`, `echo`, ...) are refused with 400 rather than silently ignored.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunelab.serve.engine import Delta, Sampling

MAX_N = 8  # answers per prompt
MAX_PROMPTS = 16  # prompts in one /v1/completions request
MAX_STOP = 4  # as the OpenAI API
MAX_TOP_LOGPROBS = 20
_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|[a-z-]+\[.*\]|function-.*|[A-Z]\w*)$")


class APIError(Exception):
    """An error answered to the client with `status` and the OpenAI error body."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def parse_json(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise APIError(400, "the request body is not valid UTF-8") from None
    except RecursionError:
        raise APIError(400, "the request body is nested too deeply") from None
    except json.JSONDecodeError as e:
        raise APIError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, not {type(body).__name__}")
    return body


# ---- requests ---------------------------------------------------------------------------------


class _Strict(BaseModel):
    # strict: "1" is not an int and true is not a number; unknown fields are ignored (clients
    # send many optional ones) except those listed as unsupported below.
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(_Strict):
    include_usage: bool = False


class _Common(_Strict):
    model: str = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1, le=MAX_N)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None

    unsupported: ClassVar[tuple[str, ...]] = ()  # refused when given a non-empty value

    def stops(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP:
            raise APIError(400, f"at most {MAX_STOP} stop sequences are allowed, got {len(stops)}", param="stop")
        return tuple(s for s in stops if s)

    def bias(self, vocab_size: int) -> dict[int, float]:
        out: dict[int, float] = {}
        for key, value in (self.logit_bias or {}).items():
            if not key.isdigit() or int(key) >= vocab_size:
                raise APIError(400, f"logit_bias key '{key[:40]}' is not a token id below {vocab_size}",
                               param="logit_bias")
            if not -100.0 <= value <= 100.0:
                raise APIError(400, "logit_bias values must be between -100 and 100", param="logit_bias")
            out[int(key)] = value
        return out


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    unsupported = ("tools", "functions", "tool_choice", "function_call", "audio", "prediction")


class CompletionRequest(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    echo: bool | None = False
    best_of: int | None = Field(None, ge=1, le=MAX_N)
    suffix: str | None = None



def validate(cls: type[_Common], body: dict[str, Any]) -> Any:
    """`cls` from a JSON object; a 400 naming the first bad field otherwise."""
    for name in cls.unsupported:
        if body.get(name) not in (None, [], "none"):
            raise APIError(400, f"'{name}' is not supported by this server", param=name)
    try:
        req = cls.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        # Union members appear in `loc` as type tags ("str", "list[int]", "TextPart"): drop them.
        loc = [str(x) for x in err["loc"] if not _TYPE_TAG.match(str(x))]
        param = ".".join(loc) or None
        raise APIError(400, f"invalid value for '{param}': {err['msg']}" if param else err["msg"], param=param) from None
    if isinstance(req, CompletionRequest):
        if req.echo:
            raise APIError(400, "'echo' is not supported by this server", param="echo")
        if req.suffix:
            raise APIError(400, "'suffix' is not supported by this server", param="suffix")
        if req.best_of not in (None, req.n or 1):
            raise APIError(400, "'best_of' other than n is not supported by this server", param="best_of")
    if isinstance(req, ChatRequest) and req.top_logprobs and not req.logprobs:
        raise APIError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
    if req.stream_options is not None and not req.stream:
        raise APIError(400, "stream_options is only allowed with stream: true", param="stream_options")
    return req


def sampling(req: _Common, max_tokens: int, vocab_size: int, extra_stops: list[str]) -> Sampling:
    """Engine settings for a validated request (OpenAI defaults: temperature 1, top_p 1)."""
    if isinstance(req, ChatRequest):
        want, top = bool(req.logprobs), req.top_logprobs or 0
    else:
        want, top = req.logprobs is not None, req.logprobs or 0
    return Sampling(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        stop=req.stops() + tuple(extra_stops),
        seed=req.seed,
        logprobs=want,
        top_logprobs=top,
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        logit_bias=req.bias(vocab_size),
    )


# ---- replies ----------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def chat_logprobs(delta: Delta) -> dict[str, Any]:
    """`choices[i].logprobs` of a chat completion for the tokens of `delta`."""
    def entry(text: str, lp: float) -> dict[str, Any]:
        return {"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}
    return {"content": [entry(t.text, t.logprob) | {"top_logprobs": [entry(a, b) for a, b in t.top]}
                        for t in delta.tokens]}


def text_logprobs(delta: Delta, offset: int) -> dict[str, Any]:
    """`choices[i].logprobs` of a text completion (legacy shape); `offset`: text length before."""
    offsets, pos = [], offset
    for t in delta.tokens:
        offsets.append(pos)
        pos += len(t.text)
    return {"tokens": [t.text for t in delta.tokens], "token_logprobs": [t.logprob for t in delta.tokens],
            "top_logprobs": [dict(t.top) for t in delta.tokens], "text_offset": offsets}


def merge_logprobs(parts: list[dict[str, Any]], chat: bool) -> dict[str, Any] | None:
    """Concatenate per-delta logprob objects into the one of a whole answer."""
    if not parts:
        return None
    if chat:
        return {"content": [c for p in parts for c in p["content"]]}
    return {k: [x for p in parts for x in p[k]] for k in ("tokens", "token_logprobs", "top_logprobs", "text_offset")}


def completion_object(kind: str, rid: str, model: str, choices: list[dict[str, Any]],
                      usage: dict[str, int] | None) -> dict[str, Any]:
    """A (non-streamed) `chat.completion` or `text_completion` object."""
    obj: dict[str, Any] = {"id": rid, "object": kind, "created": int(time.time()), "model": model,
                           "choices": choices, "system_fingerprint": None}
    if usage is not None:
        obj["usage"] = usage
    return obj


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def model_card(name: str, owned_by: str, created: int, parent: str | None,
               extra: dict[str, Any]) -> dict[str, Any]:
    """An entry of /v1/models (vLLM also names an adapter's base as `parent`)."""
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by, "root": name,
            "parent": parent, **extra}
