"""An OpenAI-compatible HTTP server over a base model and its adapters (`tunelab serve`).

    GET  /v1/models, /v1/models/{name}   the base and every adapter, each its own model name
    POST /v1/chat/completions            chat in the training chat template; SSE with stream: true
    POST /v1/completions                 raw text (or token id) prompts
    GET  /health                         liveness and queue counters (no API key needed)

Requests are parsed and validated on the event loop; generation runs in one worker thread
(`worker.Worker`) fed by a bounded queue, so the event loop never blocks on the model and a
request over the limit gets 429 at once instead of a hang. Requests that wait together are
decoded together (grouped per adapter, up to `max_batch_size` rows per forward pass). Every
error is an OpenAI-shaped JSON body with a 4xx status (500 only for a bug). A client that hangs
up cancels its request at the next token. On SIGINT/SIGTERM uvicorn stops accepting
connections and lets the requests it holds (running and queued) finish for up to
`graceful_timeout_s`; then it cancels what is left, and the worker stops.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.util
import json
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.errors import TunelabError
from tunelab.serve import openai_schema as oa
from tunelab.serve.engine import Seq, decode_batch, make_generator
from tunelab.serve.worker import Answers, Job, Overloaded, Worker
from tunelab.serve.registry import ModelRegistry, ServedModel

log = logging.getLogger(__name__)


@dataclass
class ServeSettings:
    """How the server listens and how much work it accepts."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # required as `Authorization: Bearer KEY` when set
    max_queue: int = 16  # requests waiting while a batch generates; more get 429
    max_batch_size: int = 16  # sequences decoded together in one forward pass; 1 = one request at a time
    max_batch_wait_ms: float = 5.0  # how long a batch's first request waits for others to join
    queue_timeout_s: float = 120.0  # a request that waited longer gets 503 instead of running
    request_timeout_s: float = 600.0  # longest wait for the next token before answering 503
    default_max_tokens: int = 256  # when the request gives none (capped by the context)
    max_body_bytes: int = 1 << 20
    graceful_timeout_s: float = 30.0


class App:
    """The request handlers over one registry and one worker."""

    def __init__(self, registry: ModelRegistry, settings: ServeSettings) -> None:
        self.registry, self.settings = registry, settings
        self.worker: Worker | None = None
        self.created = int(time.time())

    # ---- plumbing ---------------------------------------------------------------------------

    def _authorize(self, request: Any) -> None:
        key = self.settings.api_key
        if not key:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            raise oa.APIError(401, "Incorrect or missing API key: send 'Authorization: Bearer KEY'",
                              code="invalid_api_key")

    async def _read_body(self, request: Any) -> bytes:
        limit = self.settings.max_body_bytes
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > limit:
            raise oa.APIError(413, f"the request body is over {limit} bytes")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise oa.APIError(413, f"the request body is over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _model(self, name: str) -> ServedModel:
        served = self.registry.get(name)
        if served is None:
            raise oa.APIError(404, f"The model '{name}' does not exist; this server has: "
                              f"{', '.join(self.registry.names())}", param="model", code="model_not_found")
        return served

    # ---- endpoints --------------------------------------------------------------------------

    async def health(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        w = self.worker
        return JSONResponse({"status": "ok", "queued": w.queued if w else 0, **(w.stats if w else {})})

    async def list_models(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        self._authorize(request)
        return JSONResponse({"object": "list", "data": [self._card(m) for m in self.registry.models.values()]})

    async def get_model(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        self._authorize(request)
        return JSONResponse(self._card(self._model(request.path_params["name"])))

    def _card(self, m: ServedModel) -> dict[str, Any]:
        extra = {"tunelab": {"source": m.source, "adapter": m.adapter is not None, "effect": m.effect,
                             "noop": m.is_noop, "max_model_len": self.registry.max_len}}
        return oa.model_card(m.name, "tunelab", self.created, "base" if m.adapter else None, extra)

    async def chat_completions(self, request: Any) -> Any:
        return await self._complete(request, chat=True)

    async def completions(self, request: Any) -> Any:
        return await self._complete(request, chat=False)

    async def _complete(self, request: Any, chat: bool) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        self._authorize(request)
        body = oa.parse_json(await self._read_body(request))
        req = oa.validate(oa.ChatRequest if chat else oa.CompletionRequest, body)
        if chat and body.get("response_format") not in (None, {"type": "text"}):
            raise oa.APIError(400, "only response_format {'type': 'text'} is supported", param="response_format")
        served = self._model(req.model)
        prompts = self._encode(req, chat)
        max_tokens = self._max_tokens(req, max(len(p) for p in prompts))
        sampling = oa.sampling(req, max_tokens, self.registry.vocab_size, self.registry.stop_strings(chat))
        n = req.n or 1
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any, Any]] = asyncio.Queue()
        job = Job(answers=self._answers(served, prompts, n, sampling, chat),
                  emit=lambda ev: loop.call_soon_threadsafe(events.put_nowait, ev))
        assert self.worker is not None
        try:
            self.worker.submit(job)
        except Overloaded as e:
            raise oa.APIError(e.status, str(e), type_="server_error" if e.status == 503 else "rate_limit_error",
                              code="overloaded", headers={"Retry-After": "1"}) from None
        meta = {"chat": chat, "model": req.model, "k": len(prompts) * n,
                "prompt_tokens": sum(len(p) for p in prompts)}
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(self._sse(job, events, meta, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return JSONResponse(await self._gather(job, events, meta, request))

    def _encode(self, req: Any, chat: bool) -> list[list[int]]:
        """Token ids of each prompt; a 400 for prompts the template or tokenizer cannot take."""
        reg = self.registry
        if chat:
            messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                        for m in req.messages]
            try:
                return [reg.encode_chat(messages)]
            except Exception as e:  # noqa: BLE001 - a Jinja template may raise anything on odd chats
                raise oa.APIError(400, f"the chat template rejected these messages: {e}", param="messages") from None
        p = req.prompt
        items = [p] if isinstance(p, str) or (p and isinstance(p[0], int)) else list(p)
        if not items or len(items) > oa.MAX_PROMPTS:
            raise oa.APIError(400, f"give 1 to {oa.MAX_PROMPTS} prompts", param="prompt")
        out = []
        for item in items:
            ids = reg.encode_text(item) if isinstance(item, str) else list(item)
            if any(not 0 <= t < reg.vocab_size for t in ids):
                raise oa.APIError(400, f"prompt token ids must be in [0, {reg.vocab_size})", param="prompt")
            # An empty prompt starts from the bos (or eos) token, as OpenAI's models do.
            start = reg.tok.bos_token_id if reg.tok.bos_token_id is not None else reg.tok.eos_token_id
            out.append(ids or [start])
        return out

    def _max_tokens(self, req: Any, prompt_len: int) -> int:
        """The request's token budget, checked against the context (OpenAI's context_length_exceeded)."""
        limit = self.registry.max_len
        asked = req.max_completion_tokens or req.max_tokens
        room = limit - prompt_len
        if room < 1 or (asked is not None and asked > room):
            want = f" + max_tokens {asked}" if asked is not None else ""
            raise oa.APIError(400, f"This model's maximum context length is {limit} tokens; the prompt has "
                              f"{prompt_len}{want}. Shorten the prompt or lower max_tokens.",
                              param="messages" if hasattr(req, "messages") else "prompt",
                              code="context_length_exceeded")
        return asked if asked is not None else min(self.settings.default_max_tokens, room)

    def _answers(self, served: ServedModel, prompts: list[list[int]], n: int, sampling: Any, chat: bool) -> Answers:
        """The job's sequences: n answers per prompt, decoded with `served`'s adapter active.

        Greedy answers are all the first one, so each prompt is decoded once for its n choices.
        Sampled answer j of a prompt draws from seed + j (when the client gave a seed), so the
        answers do not depend on which other requests share the batch.
        """
        reg = self.registry
        stop_ids = reg.stop_ids(chat)
        seqs, choices = [], []
        for p, ids in enumerate(prompts):
            if sampling.temperature == 0:
                seqs.append(Seq(ids, sampling, stop_ids))
                choices.append([p * n + j for j in range(n)])
                continue
            for j in range(n):
                seed = None if sampling.seed is None else sampling.seed + j
                seqs.append(Seq(ids, sampling, stop_ids, make_generator(seed, reg.model.device)))
                choices.append([p * n + j])

        def decode(batch: list[Seq]) -> Iterator[tuple[int, Any]]:  # runs in the worker thread
            with reg.activate(served) as lm:
                yield from decode_batch(lm, reg.tok, batch)

        return Answers(served.adapter, seqs, choices, decode)

    # ---- answers ----------------------------------------------------------------------------

    async def _next(self, events: asyncio.Queue, job: Job) -> tuple[str, Any, Any]:
        try:
            return await asyncio.wait_for(events.get(), self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            job.cancel.set()
            raise oa.APIError(503, "generation timed out", type_="server_error", code="timeout") from None

    async def _gather(self, job: Job, events: asyncio.Queue, meta: dict[str, Any], request: Any) -> dict[str, Any]:
        """Collect a whole answer; cancel it if the client hangs up first."""
        k, chat = meta["k"], meta["chat"]
        texts, parts = [""] * k, [[] for _ in range(k)]
        finish: list[str | None] = [None] * k
        ctoks = [0] * k
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            while True:
                nxt = asyncio.ensure_future(self._next(events, job))
                done, _ = await asyncio.wait({nxt, gone}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:  # the client hung up: stop generating for nobody
                    nxt.cancel()
                    job.cancel.set()
                    raise oa.APIError(499, "client closed the request")
                kind, i, d = nxt.result()
                if kind == "error":
                    raise oa.APIError(i, d, type_="server_error")
                if kind == "end":
                    break
                offset = len(texts[i])
                texts[i] += d.text
                if d.tokens:
                    parts[i].append(oa.chat_logprobs(d) if chat else oa.text_logprobs(d, offset))
                if d.finish_reason:
                    finish[i], ctoks[i] = d.finish_reason, d.completion_tokens
        finally:
            gone.cancel()
            job.cancel.set()  # a no-op once finished; stops the job if we leave early
        want_lp = any(parts)
        if chat:
            choices = [{"index": i, "message": {"role": "assistant", "content": texts[i]},
                        "logprobs": oa.merge_logprobs(parts[i], True) if want_lp else None,
                        "finish_reason": finish[i]} for i in range(k)]
        else:
            choices = [{"index": i, "text": texts[i], "logprobs": oa.merge_logprobs(parts[i], False) if want_lp else None,
                        "finish_reason": finish[i]} for i in range(k)]
        return oa.completion_object("chat.completion" if chat else "text_completion", oa.new_id("chatcmpl" if chat else "cmpl"),
                                    meta["model"], choices, oa.usage(meta["prompt_tokens"], sum(ctoks)))

    async def _sse(self, job: Job, events: asyncio.Queue, meta: dict[str, Any],
                   include_usage: bool) -> AsyncIterator[str]:
        """Server-sent events: one chunk per released piece of text, then `data: [DONE]`."""
        chat, k = meta["chat"], meta["k"]
        rid, kind = oa.new_id("chatcmpl" if chat else "cmpl"), "chat.completion.chunk" if chat else "text_completion"
        offsets, ctoks = [0] * k, 0

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
            obj = oa.completion_object(kind, rid, meta["model"], choices, usage)
            if include_usage and usage is None:
                obj["usage"] = None
            return f"data: {json.dumps(obj)}\n\n"

        try:
            if chat:  # announce the role first, as OpenAI does
                yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                              "finish_reason": None} for i in range(k)])
            while True:
                try:
                    ev, i, d = await self._next(events, job)
                except oa.APIError as e:
                    ev, i, d = "error", e.status, e.message
                if ev == "error":
                    yield f"data: {json.dumps(oa.APIError(i, d, type_='server_error').body())}\n\n"
                    break
                if ev == "end":
                    if include_usage:
                        yield chunk([], oa.usage(meta["prompt_tokens"], ctoks))
                    break
                if not d.text and not d.tokens and not d.finish_reason:
                    continue
                ctoks += d.completion_tokens
                if chat:
                    lp = oa.chat_logprobs(d) if d.tokens else None
                    choice = {"index": i, "delta": {"content": d.text} if d.text else {}, "logprobs": lp}
                else:
                    lp = oa.text_logprobs(d, offsets[i]) if d.tokens else None
                    choice = {"index": i, "text": d.text, "logprobs": lp}
                offsets[i] += len(d.text)
                yield chunk([choice | {"finish_reason": d.finish_reason}])
            yield "data: [DONE]\n\n"
        finally:
            job.cancel.set()  # the client hung up (this generator was cancelled) or we are done


async def _disconnected(request: Any) -> None:
    """Return when the client closes the connection (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def require_serve_extra() -> None:
    """Fail with the install command, not an ImportError, when the serve extra is missing."""
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise TunelabError(f"tunelab serve needs {' and '.join(missing)}: pip install 'tunelab[serve]'")


def create_app(registry: ModelRegistry, settings: ServeSettings) -> Any:
    """The Starlette ASGI app; the worker thread lives as long as the app's lifespan."""
    require_serve_extra()
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    app = App(registry, settings)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        app.worker = Worker(settings.max_queue, settings.queue_timeout_s, settings.max_batch_size,
                            settings.max_batch_wait_ms / 1000)
        try:
            yield
        finally:
            app.worker.close()

    async def api_error(_: Any, e: Exception) -> Any:
        assert isinstance(e, oa.APIError)
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    async def http_error(_: Any, e: Exception) -> Any:
        assert isinstance(e, HTTPException)
        return JSONResponse(oa.APIError(e.status_code, str(e.detail)).body(), status_code=e.status_code)

    async def internal_error(_: Any, e: Exception) -> Any:
        log.error("unhandled error: %r", e, exc_info=e)
        body = oa.APIError(500, f"internal error: {type(e).__name__}", type_="server_error").body()
        return JSONResponse(body, status_code=500)

    routes = [
        Route("/health", app.health, methods=["GET"]),
        Route("/v1/models", app.list_models, methods=["GET"]),
        Route("/v1/models/{name:path}", app.get_model, methods=["GET"]),
        Route("/v1/chat/completions", app.chat_completions, methods=["POST"]),
        Route("/v1/completions", app.completions, methods=["POST"]),
    ]
    star = Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={oa.APIError: api_error, HTTPException: http_error, Exception: internal_error})
    star.state.tunelab = app  # tests and embedders reach the worker's counters here
    return star


def _uvicorn_server(registry: ModelRegistry, settings: ServeSettings) -> Any:
    import uvicorn

    config = uvicorn.Config(create_app(registry, settings), host=settings.host, port=settings.port, http="h11",
                            lifespan="on", log_level="warning", timeout_graceful_shutdown=int(settings.graceful_timeout_s),
                            # A backstop far above the queue: /health and /v1/models stay reachable.
                            limit_concurrency=4 * (settings.max_queue + 1) + 64)
    return uvicorn.Server(config)


class ServerThread:
    """Run the server in a background thread (tests, notebooks): `with ServerThread(reg) as s: s.url`."""

    def __init__(self, registry: ModelRegistry, settings: ServeSettings | None = None, start_timeout_s: float = 30.0) -> None:
        self.settings = settings or ServeSettings(port=0)
        self.server = _uvicorn_server(registry, self.settings)
        self._thread = threading.Thread(target=self.server.run, name="tunelab-serve", daemon=True)
        self.start_timeout_s = start_timeout_s
        self.url = ""

    @property
    def app(self) -> App:
        return self.server.config.app.state.tunelab

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:  # bounded wait for the socket to be bound
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise TunelabError(f"the server did not start on {self.settings.host}:{self.settings.port}")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{self.settings.host}:{port}/v1"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self._thread.join(self.settings.graceful_timeout_s + 10)


@contextmanager
def _exit_zero_on_signal():
    """uvicorn re-raises the signal that stopped it; after a graceful stop we want exit code 0."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda *_: None)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def serve_command(model: str | None, adapters: list[str], run_dir: Path | None, host: str, port: int,
                  api_key_env: str, device: str | None, chat_template: str | None, max_queue: int,
                  default_max_tokens: int, max_batch_size: int = 16, max_batch_wait_ms: float = 5.0) -> None:
    """`tunelab serve`: load the models, then serve until SIGINT/SIGTERM."""
    from rich.console import Console

    from tunelab.serve.registry import load_registry

    require_serve_extra()  # before minutes of model loading
    console = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    registry = load_registry(model, adapters, run_dir, device, chat_template)
    settings = ServeSettings(host=host, port=port, api_key=os.environ.get(api_key_env) or None,
                             max_queue=max_queue, default_max_tokens=default_max_tokens,
                             max_batch_size=max_batch_size, max_batch_wait_ms=max_batch_wait_ms)
    server = _uvicorn_server(registry, settings)
    for m in registry.models.values():
        note = "" if m.adapter is None else f"  (adapter {m.source}; max logit change {m.effect:.3g})"
        console.print(f"  {m.name}{note}", markup=False, highlight=False, soft_wrap=True)
    key = f"; API key from ${api_key_env}" if settings.api_key else ""
    console.print(f"serving {len(registry.models)} model(s) on http://{host}:{port}/v1 "
                  f"(chat template: {registry.template}{key}); Ctrl+C stops", markup=False, highlight=False, soft_wrap=True)
    with _exit_zero_on_signal():
        server.run()
    if not server.started:
        raise TunelabError(f"could not listen on {host}:{port} (in use?)")
    console.print("stopped", markup=False, highlight=False, soft_wrap=True)
