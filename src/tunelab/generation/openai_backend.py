"""Generation through any OpenAI-compatible HTTP endpoint (vLLM serve, llama.cpp, TGI, OpenAI).

Chat prompts go to `POST {base_url}/chat/completions`, text prompts to `POST {base_url}/completions`.
Only the standard library is used (urllib + a thread pool), so no client package is needed.
Requests run with bounded concurrency; connection errors, 408, 429 and 5xx are retried with
exponential backoff (honouring `Retry-After`); other 4xx fail at once with the server's message.
Stop sequences are sent to the server and applied again client-side, since servers differ in
whether they cut before or after the stop text.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tunelab.errors import EvalError
from tunelab.generation.types import GenerationSettings, Prompt, cut_at_stop

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIGenerator:
    """A generator (`evaluation.task.Generator`) backed by an OpenAI-compatible server.

    Args:
        base_url: e.g. "http://127.0.0.1:8000/v1" (the part before /chat/completions).
        model: the model name the server knows (for vLLM with LoRA: the adapter's name).
        api_key_env: environment variable holding the API key; unset or empty = no auth header.
        max_concurrency: requests in flight at once.
        max_retries: retries per request after the first attempt.
        backoff_s: first retry delay; doubles each retry.
        timeout_s: per-request socket timeout.
        enable_thinking: sent to chat requests as `chat_template_kwargs` (what vLLM's and
            SGLang's servers pass to the chat template) when not None; the server renders the
            template, so this is the only way to reach its thinking switch.
    """

    def __init__(self, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY",
                 max_concurrency: int = 4, max_retries: int = 3, backoff_s: float = 0.5,
                 timeout_s: float = 120.0, enable_thinking: bool | None = None) -> None:
        self.enable_thinking = enable_thinking
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.max_concurrency = max(1, max_concurrency)
        self.max_retries, self.backoff_s, self.timeout_s = max_retries, backoff_s, timeout_s
        # Token counts as the server reports them (`usage`; 0 where it does not): what a paid
        # endpoint bills, e.g. an API judge (`eval.judge.price_per_million_tokens`).
        self.stats = {"requests": 0, "retries": 0, "new_tokens": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._lock = threading.Lock()  # requests run on a thread pool

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[list[str]]:
        """`settings.n` continuations per prompt, in prompt order."""
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(lambda p: self._one(p, settings), prompts))

    def _one(self, prompt: Prompt, settings: GenerationSettings) -> list[str]:
        out: list[str] = []
        # Some servers ignore n > 1 or cap it: ask again for what is missing.
        while len(out) < settings.n:
            body = self._body(prompt, settings, settings.n - len(out), seed=settings.seed + len(out))
            reply = self._post("/chat/completions" if prompt.is_chat else "/completions", body)
            choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
            if not choices:
                raise EvalError(f"{self.base_url}: reply without choices: {json.dumps(reply)[:300]}")
            usage = reply.get("usage") or {}
            with self._lock:
                self.stats["new_tokens"] += int(usage.get("completion_tokens") or 0)
                self.stats["completion_tokens"] += int(usage.get("completion_tokens") or 0)
                self.stats["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
            for c in choices:
                text = (c.get("message") or {}).get("content") if prompt.is_chat else c.get("text")
                out.append(cut_at_stop(text or "", settings.stop))
        return out[: settings.n]

    def _body(self, prompt: Prompt, settings: GenerationSettings, n: int, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "n": n,
            "seed": seed,
        }
        if not settings.greedy:
            body["top_p"] = settings.top_p
        if settings.stop:
            body["stop"] = list(settings.stop)[:4]  # the OpenAI API accepts at most 4
        if prompt.is_chat:
            body["messages"] = list(prompt.messages or ())
            if self.enable_thinking is not None:
                body["chat_template_kwargs"] = {"enable_thinking": self.enable_thinking}
        else:
            body["prompt"] = prompt.text
        return body

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
            with self._lock:
                self.stats["requests"] += 1
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")[:300]
                if e.code not in RETRY_STATUS or attempt == self.max_retries:
                    raise EvalError(f"{self.base_url}{path}: HTTP {e.code}: {detail}") from None
                wait = _retry_after(e.headers.get("Retry-After"), delay)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.max_retries:
                    raise EvalError(f"{self.base_url}{path}: no answer after {attempt + 1} tries: {e}") from None
                wait = delay
            with self._lock:
                self.stats["retries"] += 1
            time.sleep(wait)
            delay *= 2
        raise AssertionError("unreachable")


def _retry_after(header: str | None, default: float) -> float:
    """Seconds from a Retry-After header (capped at 60), else the backoff delay."""
    try:
        return min(60.0, max(0.0, float(header))) if header else default
    except ValueError:
        return default
