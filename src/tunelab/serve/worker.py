"""The one thread that runs generation, fed by a bounded queue, batching requests that wait.

All model calls happen in `Worker`'s single thread: adapters are switched on the one shared
model (`registry.activate`), which is only safe when one batch runs at a time. The queue in
front of it is bounded; a full queue is the caller's cue to answer 429 instead of waiting.

Dynamic batching: the worker takes the oldest job, then whatever else is queued (waiting up to
`max_wait_s` for more) until it holds `max_batch_size` answers; requests that arrive while a batch
runs wait for the next one. The jobs it took are grouped by `Answers.key` (the adapter: one
adapter is active per forward pass), and each group is decoded as one batch of at most
`max_batch_size` rows (`engine.decode_batch`). Each job's deltas go to its own receiver, and a
job ends as soon as its own answers have, not when its batch does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Hashable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Any

from tunelab.serve.engine import Delta, Seq

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """The queue is full (answer 429) or the worker is shutting down (answer 503)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Answers:
    """What a batchable job generates: sequences, and the choice indexes each one answers.

    `decode(seqs)` decodes the sequences of every job with an equal `key` in one batch (with the
    key's adapter active) and yields (index into seqs, Delta), as `engine.decode_batch` does.
    A greedy request with n > 1 decodes once and sends its deltas to n choices.
    """

    key: Hashable
    seqs: list[Seq]
    choices: list[list[int]]
    decode: Callable[[list[Seq]], Iterator[tuple[int, Delta]]]


@dataclass
class Job:
    """One request: `answers` to decode in a batch, or a `run` body that runs alone.

    `emit` is called from the worker thread with ("delta", choice_index, Delta), then ("end",
    None, None) or ("error", status, message); it must be thread-safe (the server hands events to
    its event loop with `call_soon_threadsafe`).
    """

    emit: Callable[[tuple[str, Any, Any]], None]
    answers: Answers | None = None
    run: Callable[[Callable[[], bool]], Generator[tuple[int, Delta], None, None]] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.monotonic)


class Worker:
    """One thread that runs `Job`s from a bounded queue, batching those that can be.

    Args:
        max_queue: jobs that may wait while a batch runs; `submit` raises `Overloaded(429)` beyond.
        queue_timeout_s: a job that waited longer is answered with an error instead of run
            (its client has probably given up; running it would only delay the others).
        max_batch_size: most sequences decoded in one forward pass; 1 = one request at a time.
        max_wait_s: how long the first job of a batch waits for others to join it.
    """

    def __init__(self, max_queue: int = 16, queue_timeout_s: float = 120.0, max_batch_size: int = 16,
                 max_wait_s: float = 0.005) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.max_queue, self.queue_timeout_s = max_queue, queue_timeout_s
        self.max_batch_size, self.max_wait_s = max_batch_size, max_wait_s
        self._closing = threading.Event()
        # batches: forward-pass batches started; batched_rows: sequences in them (mean = rows / batches).
        self.stats = {"submitted": 0, "completed": 0, "cancelled": 0, "rejected": 0, "errors": 0,
                      "expired": 0, "busy_s": 0.0, "batches": 0, "batched_rows": 0}
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
        """Refuse new jobs, answer queued ones with an error, stop after the running batch."""
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

    # ---- the thread ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            job = self._queue.get()  # blocks: no busy waiting
            if job is None:
                return
            jobs, stop = self._collect(job)
            t0 = time.monotonic()
            for group in _groups([j for j in jobs if self._admit(j)]):
                if group[0].answers is None:
                    self._run(group[0])
                else:
                    self._decode(group)
            self.stats["busy_s"] += time.monotonic() - t0
            if stop:
                return

    def _collect(self, first: Job) -> tuple[list[Job], bool]:
        """`first` plus the jobs that join its batch; True when the close sentinel was met."""
        jobs = [first]
        if first.answers is None or self.max_batch_size == 1:
            return jobs, False
        rows = len(first.answers.seqs)
        deadline = time.monotonic() + self.max_wait_s
        while rows < self.max_batch_size:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            if job.answers is None:  # runs alone, after the batch
                break
            rows += len(job.answers.seqs)
        return jobs, False

    def _admit(self, job: Job) -> bool:
        """Skip a job whose client left, answer one that waited too long; True for the rest."""
        if job.cancel.is_set():
            self.stats["cancelled"] += 1
            return False
        if time.monotonic() - job.enqueued > self.queue_timeout_s:
            self.stats["expired"] += 1
            self._safe_emit(job, ("error", 503, f"request waited over {self.queue_timeout_s:g} s in the queue"))
            return False
        return True

    def _decode(self, group: list[Job]) -> None:
        """Decode the answers of `group` (one key) in batches of at most `max_batch_size` rows."""
        rows = [(job, seq, choices) for job in group for seq, choices in zip(job.answers.seqs, job.answers.choices)]
        left = {id(job): len(job.answers.seqs) for job in group}  # unfinished sequences per job
        decode = group[0].answers.decode
        for start in range(0, len(rows), self.max_batch_size):
            chunk = [r for r in rows[start:start + self.max_batch_size] if left[id(r[0])] > 0]
            if not chunk:
                continue
            self.stats["batches"] += 1
            self.stats["batched_rows"] += len(chunk)
            # A job's rows stop at the next token once its receiver is gone (cancel is set).
            seqs = [replace(seq, cancelled=job.cancel.is_set) for job, seq, _ in chunk]
            try:
                with closing(decode(seqs)) as deltas:  # closing(): the adapter context is left
                    for i, delta in deltas:
                        job, _, choices = chunk[i]
                        for c in choices:
                            self._safe_emit(job, ("delta", c, delta))
                        if delta.finish_reason is not None:
                            left[id(job)] -= 1
                            if left[id(job)] == 0:
                                self._finish(job)
            except Exception as e:  # noqa: BLE001 - one bad batch must not kill the worker
                log.exception("generation failed")
                for job in {id(j): j for j, _, _ in chunk if left[id(j)] > 0}.values():
                    left[id(job)] = 0
                    self.stats["errors"] += 1
                    self._safe_emit(job, ("error", 500, f"generation failed: {type(e).__name__}: {e}"))

    def _run(self, job: Job) -> None:
        assert job.run is not None
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
        self._finish(job)

    def _finish(self, job: Job) -> None:
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


def _groups(jobs: list[Job]) -> list[list[Job]]:
    """Batchable jobs grouped by key (in order of first arrival); each `run` job alone."""
    groups: dict[Any, list[Job]] = {}
    for n, job in enumerate(jobs):
        key = ("key", job.answers.key) if job.answers is not None else ("alone", n)
        groups.setdefault(key, []).append(job)
    return list(groups.values())
