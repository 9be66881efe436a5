"""Token-by-token decoding with logprobs and stop handling, and the one worker thread that runs it.

The server, `tunelab chat` and nothing else generate through `stream_tokens`: one sequence, KV
cache, greedy (temperature 0) or seeded sampling, stop on end-of-sequence ids or stop strings.
Greedy decoding picks the same tokens as `TransformersGenerator` (transformers' `generate`), so
the server answers what `tunelab eval` would see in-process.

Text is released in pieces that can never turn into a stop string later: the tail of the
decoded text that is a prefix of some stop string is held back until the next token decides it,
and a tail that decodes to U+FFFD (half of a multi-byte character) waits for the rest. So a
streamed answer, concatenated, equals the non-streamed one, and neither contains the stop text.

All model calls happen in `Worker`'s single thread: adapters are switched on the one shared
model (`registry.activate`), which is only safe when one request runs at a time. The queue in
front of it is bounded; a full queue is the caller's cue to answer 429 instead of waiting.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens. temperature 0 = greedy; logprobs are of the model's own distribution."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)


@dataclass
class TokenInfo:
    """One generated token: its text, logprob, and the `top_logprobs` best alternatives."""

    id: int
    text: str
    logprob: float
    top: list[tuple[str, float]]


@dataclass
class Delta:
    """A piece of released text with the tokens it came from; the last one has `finish_reason`."""

    text: str
    tokens: list[TokenInfo]
    finish_reason: str | None = None  # "stop", "length" or "cancelled"
    completion_tokens: int = 0  # set on the last delta: tokens generated, stop token included


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of `text` that is a proper prefix of a stop string."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best


def _find_stop(text: str, stops: Sequence[str], start: int) -> int:
    """Index of the earliest stop string that ends after `start`, or -1."""
    hits = [i for s in stops if (i := text.find(s, max(0, start - len(s) + 1))) >= 0]
    return min(hits) if hits else -1


class _TokenText:
    """Cache of single-token texts (for logprob entries): decode each vocabulary id once."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok, self.cache = tokenizer, {}

    def __call__(self, tid: int) -> str:
        if tid not in self.cache:
            self.cache[tid] = self.tok.decode([tid], skip_special_tokens=False)
        return self.cache[tid]


def _pick(logits: torch.Tensor, s: Sampling, counts: dict[int, int], gen: torch.Generator | None) -> int:
    """Choose the next token from `logits` [V] after bias, penalties, temperature and top-p."""
    if s.logit_bias or (counts and (s.presence_penalty or s.frequency_penalty)):
        logits = logits.clone()
        for tid, bias in s.logit_bias.items():
            logits[tid] += bias
        if counts and (s.presence_penalty or s.frequency_penalty):
            ids = torch.tensor(list(counts), device=logits.device)
            n = torch.tensor(list(counts.values()), dtype=logits.dtype, device=logits.device)
            logits[ids] -= s.frequency_penalty * n + s.presence_penalty
    if s.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / s.temperature, dim=-1)
    if s.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        drop = torch.cumsum(sorted_p, dim=-1) - sorted_p >= s.top_p
        sorted_p[drop] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=gen))


@torch.inference_mode()
def stream_tokens(model: Any, tokenizer: Any, prompt_ids: Sequence[int], sampling: Sampling,
                  stop_ids: Sequence[int] = (), cancelled: Callable[[], bool] | None = None,
                  generator: torch.Generator | None = None) -> Iterator[Delta]:
    """Generate one continuation of `prompt_ids`, yielding text as it becomes final.

    Args:
        model: a causal LM (plain or PEFT) with the wanted adapter already active.
        prompt_ids: the prompt's token ids (chat template already applied).
        stop_ids: token ids that end the answer (eos, end-of-turn); not part of the text.
        cancelled: polled before every step; True ends the answer with finish_reason "cancelled".
        generator: random state for sampling (seeded by the caller for reproducibility).

    Yields:
        `Delta`s; the last one has `finish_reason` and `completion_tokens` set.
    """
    token_text = _TokenText(tokenizer)
    stops = [s for s in sampling.stop if s]
    stop_set = set(stop_ids)
    ids = torch.tensor([list(prompt_ids)], device=model.device)  # [1, T]
    past = None
    generated: list[int] = []
    counts: dict[int, int] = {}
    pending: list[TokenInfo] = []  # tokens whose text is not released yet
    released = 0  # characters of the decoded text already yielded
    text = ""
    for _ in range(sampling.max_tokens):
        if cancelled is not None and cancelled():
            yield Delta("", pending, "cancelled", len(generated))
            return
        out = model(input_ids=ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1].float()  # [V]
        tid = _pick(logits, sampling, counts, generator)
        generated.append(tid)
        if sampling.logprobs:
            logp = torch.log_softmax(logits, dim=-1)
            top = []
            if sampling.top_logprobs:
                vals, idx = torch.topk(logp, sampling.top_logprobs)
                top = [(token_text(int(i)), float(v)) for v, i in zip(vals, idx)]
            pending.append(TokenInfo(tid, token_text(tid), float(logp[tid]), top))
        if tid in stop_set:
            # The end-of-sequence token carries no text: release whatever was held back.
            yield Delta(text[released:], pending, "stop", len(generated))
            return
        counts[tid] = counts.get(tid, 0) + 1
        text = tokenizer.decode(generated, skip_special_tokens=True)
        hit = _find_stop(text, stops, released)
        if hit >= 0:
            yield Delta(text[released:hit], pending, "stop", len(generated))
            return
        if not text.endswith("\ufffd"):
            safe = len(text) - _held_back(text, stops)
            if safe > released or (pending and safe == len(text)):
                yield Delta(text[released:safe], pending)
                pending, released = [], safe
        ids = torch.tensor([[tid]], device=model.device)
    yield Delta(text[released:], pending, "length", len(generated))


def make_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A random state for one request: seeded when the client gave a seed, else fresh entropy."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


# ---- the worker ---------------------------------------------------------------------------------


class Overloaded(Exception):
    """The queue is full (answer 429) or the worker is shutting down (answer 503)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    """One request: `n` answers to each prompt with one served model.

    `emit` is called from the worker thread with ("delta", choice_index, Delta), then ("end",
    None, None) or ("error", None, message); it must be thread-safe (the server hands events to
    its event loop with `call_soon_threadsafe`).
    """

    run: Callable[[Callable[[], bool]], Generator[tuple[int, Delta], None, None]]
    emit: Callable[[tuple[str, Any, Any]], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.monotonic)


class Worker:
    """One thread that runs `Job`s one at a time from a bounded queue.

    Args:
        max_queue: jobs that may wait while one runs; `submit` raises `Overloaded(429)` beyond.
        queue_timeout_s: a job that waited longer is answered with an error instead of run
            (its client has probably given up; running it would only delay the others).
    """

    def __init__(self, max_queue: int = 16, queue_timeout_s: float = 120.0) -> None:
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.max_queue, self.queue_timeout_s = max_queue, queue_timeout_s
        self._closing = threading.Event()
        self.stats = {"submitted": 0, "completed": 0, "cancelled": 0, "rejected": 0, "errors": 0,
                      "expired": 0, "busy_s": 0.0}
        self._thread = threading.Thread(target=self._loop, name="tunelab-generate", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job) -> None:
        """Queue `job`, or raise `Overloaded` at once (never blocks)."""
        if self._closing.is_set():
            raise Overloaded("the server is shutting down", 503)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.stats["rejected"] += 1
            raise Overloaded(f"server busy: {self.max_queue} requests already queued; retry later", 429) from None
        self.stats["submitted"] += 1

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new jobs, answer queued ones with an error, stop after the running one."""
        self._closing.set()
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._safe_emit(job, ("error", 503, "the server is shutting down"))
        self._queue.put(None)  # wake the thread; the queue was just emptied so this cannot block
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()  # blocks: no busy waiting
            if job is None:
                return
            if job.cancel.is_set():
                self.stats["cancelled"] += 1
                continue
            if time.monotonic() - job.enqueued > self.queue_timeout_s:
                self.stats["expired"] += 1
                self._safe_emit(job, ("error", 503, f"request waited over {self.queue_timeout_s:g} s in the queue"))
                continue
            t0 = time.monotonic()
            self._run(job)
            self.stats["busy_s"] += time.monotonic() - t0

    def _run(self, job: Job) -> None:
        try:
            # closing(): a job stopped early still leaves its `with registry.activate(...)`.
            with closing(job.run(job.cancel.is_set)) as deltas:
                for index, delta in deltas:
                    if not self._safe_emit(job, ("delta", index, delta)):
                        break
                    if delta.finish_reason == "cancelled":
                        break
        except Exception as e:  # noqa: BLE001 - one bad request must not kill the worker
            log.exception("generation failed")
            self.stats["errors"] += 1
            self._safe_emit(job, ("error", 500, f"generation failed: {type(e).__name__}: {e}"))
            return
        if job.cancel.is_set():
            self.stats["cancelled"] += 1
        else:
            self.stats["completed"] += 1
            self._safe_emit(job, ("end", None, None))

    @staticmethod
    def _safe_emit(job: Job, event: tuple[str, Any, Any]) -> bool:
        """Deliver an event; False (and the job cancelled) when its receiver is gone."""
        try:
            job.emit(event)
            return True
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            job.cancel.set()
            return False
