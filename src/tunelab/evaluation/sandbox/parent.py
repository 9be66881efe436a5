"""The parent side of the sandbox: the API (`Sandbox`, jobs, `Limits`, results) and the verdicts.

Runs in the tunelab process and never executes model code; `proc.py` drives the fork server,
whose other end is `child.py`. How the sandbox works and what it guarantees: the package
docstring and docs/sandbox.md.
"""
from __future__ import annotations

import atexit
import dataclasses
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from tunelab.evaluation.sandbox.proc import BASE_ENV, RESULT_CAP, ForkServer, drain, kill_group, pump, remove_tree
from tunelab.evaluation.sandbox.protocol import Capped, read_records

VERDICTS = ("passed", "failed", "wrong_answer", "runtime_error", "syntax_error", "timeout",
            "memory_limit", "no_code")
ISOLATION_LEVELS = ("netns", "pidns", "proc", "fs-ro", "nofork", "nproc")  # in the order we report them


@dataclass(frozen=True)
class Limits:
    """Per-run limits. `timeout_s` is wall-clock from the fork (a few ms of setup included)."""

    timeout_s: float = 10.0
    memory_mb: int = 1024  # address space on top of the harness's own size at start
    file_size_mb: int = 16
    open_files: int = 128
    max_processes: int = 0  # 0 = process creation fails (seccomp); N > 0 = RLIMIT_NPROC instead
    output_bytes: int = 64 * 1024  # stdout/stderr kept per stream, and per stdio case at least
    case_timeout_s: float = 4.0  # stdio: per test case (inside the overall timeout)


@dataclass(frozen=True)
class FunctionJob:
    """HumanEval style: exec `program`, then `test` (defines `check`), then `check(entry_point)`."""

    program: str
    test: str
    entry_point: str


@dataclass(frozen=True)
class StdioJob:
    """Run `program` as __main__ once per input. With `expected`, outputs are compared here (in
    the parent) with `compare(got, expected)` (default: equal after stripping line ends)."""

    program: str
    inputs: tuple[str, ...]
    expected: tuple[str, ...] | None = None
    compare: Callable[[str, str], bool] | None = None


Job = FunctionJob | StdioJob


@dataclass
class SandboxResult:
    """The outcome of one job. `verdict` is one of VERDICTS; `detail` says which test / error."""

    verdict: str
    detail: str = ""
    isolation: str = "none"
    seconds: float = 0.0
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    cases: list[dict[str, Any]] = field(default_factory=list)  # stdio: one record per case run

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _default_compare(got: str, expected: str) -> bool:
    return [ln.rstrip() for ln in got.strip().splitlines()] == [ln.rstrip() for ln in expected.strip().splitlines()]


class Sandbox:
    """Runs jobs in isolated child processes, `workers` at a time. Thread-safe; `close()` (or a
    `with` block) stops its fork server, which is otherwise stopped at interpreter exit.

    Args:
        limits: per-run limits (one Limits for every job of this sandbox).
        workers: jobs run at once by `run_many` (threads each driving one child process).
        isolate: try namespaces (set False only to measure their cost).
        python: interpreter for the child (default: this one, so installed packages import).
    """

    def __init__(self, limits: Limits | None = None, workers: int | None = None,
                 isolate: bool = True, python: str | None = None) -> None:
        self.limits = limits or Limits()
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.isolate = isolate
        self.python = python or sys.executable
        self._isolation: str | None = None
        self._lock = threading.Lock()
        self._fork_server: ForkServer | None = None

    @property
    def isolation(self) -> str:
        """The isolation level a trivial job reaches here (probed once)."""
        if self._isolation is None:
            self._isolation = self.run(FunctionJob("def f():\n    pass\n", "def check(c):\n    c()\n", "f")).isolation
        return self._isolation

    def run_many(self, jobs: Sequence[Job], **limits: Any) -> list[SandboxResult]:
        """Run jobs in parallel (bounded by `workers`); results in the order of `jobs`.
        Keyword arguments override fields of `Limits` for these jobs (e.g. `timeout_s=3`)."""
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs)), thread_name_prefix="sandbox") as pool:
            return list(pool.map(lambda job: self.run(job, **limits), jobs))

    def close(self) -> None:
        """Stop the fork server (a later run starts a new one)."""
        with self._lock:
            server, self._fork_server = self._fork_server, None
        if server is not None:
            server.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, job: Job, **limits: Any) -> SandboxResult:
        """Run one job to its verdict; never raises for anything the program does. Keyword
        arguments override fields of `Limits` for this job."""
        lim = dataclasses.replace(self.limits, **limits) if limits else self.limits
        server = self._server()
        workdir = tempfile.mkdtemp(prefix="job-", dir=server.base)
        try:
            return self._run_in(job, workdir, lim)
        finally:
            remove_tree(workdir)

    # ---- one run ------------------------------------------------------------------------------

    def _payload(self, job: Job, workdir: str, nonce: str, lim: Limits) -> bytes:
        spec: dict[str, Any] = {
            "nonce": nonce, "workdir": workdir, "base": os.path.dirname(workdir),
            "env": {**BASE_ENV, "HOME": workdir, "TMPDIR": workdir},
            "limits": {"cpu_s": int(lim.timeout_s) + 1, "memory": lim.memory_mb << 20,
                       "file_size": lim.file_size_mb << 20, "open_files": lim.open_files,
                       "max_processes": lim.max_processes},
            "program": job.program,
        }
        if isinstance(job, StdioJob):
            longest = max((len(e.encode()) for e in job.expected or ()), default=0)
            spec.update(kind="stdio", inputs=list(job.inputs), case_timeout_s=lim.case_timeout_s,
                        case_output_cap=max(lim.output_bytes, 2 * longest + 1024))
        else:
            spec.update(kind="function", test=job.test, entry_point=job.entry_point)
        return json.dumps(spec).encode("utf-8")

    def _run_in(self, job: Job, workdir: str, limits: Limits) -> SandboxResult:
        nonce = secrets.token_hex(16)
        payload = self._payload(job, workdir, nonce, limits)
        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, results: (read end, write end)
        streams = {r: Capped(cap) for (r, _), cap in
                   zip(pipes, (limits.output_bytes, limits.output_bytes, RESULT_CAP))}
        started = time.monotonic()
        try:
            pid = self._server().start(payload, [w for _, w in pipes])
        finally:
            for _, w in pipes:
                os.close(w)  # the launcher holds its copies: EOF means every holder is gone
        code: int | None = None
        try:
            timed_out = pump(pid, streams, started + limits.timeout_s)
        finally:
            kill_group(pid)  # before the server reaps it: the pid (= group id) is still reserved
            code = self._server().wait(pid)
            drain(streams)
            for r, _ in pipes:
                os.close(r)
        out, err, results = (streams[r] for r, _ in pipes)
        events = read_records(results.data, nonce)
        levels = [lv for e in events if e["event"] in ("isolation", "confined") for lv in e.get("levels", [])]
        res = _verdict(job, events, timed_out, code)
        res.isolation = "+".join(lv for lv in ISOLATION_LEVELS if lv in levels) or "none"
        res.seconds = round(time.monotonic() - started, 4)
        res.exit_code = code
        res.stdout, res.stderr = out.text(), err.text()
        return res

    def _server(self) -> ForkServer:
        with self._lock:
            if self._fork_server is None:
                self._fork_server = ForkServer(self.python, self.isolate)
                atexit.register(self._fork_server.close)  # a sandbox that was never closed
            return self._fork_server


# ---- verdicts ---------------------------------------------------------------------------------------


def _signal_name(code: int | None) -> str:
    if code is None:
        return "unknown"
    num = -code if code < 0 else code - 128 if code > 128 else 0
    if num <= 0:
        return f"exit status {code}"
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _verdict(job: Job, events: list[dict[str, Any]], timed_out: bool, code: int | None) -> SandboxResult:
    kinds = {e["event"] for e in events}
    cases = [{k: e.get(k) for k in ("index", "output", "truncated", "verdict", "detail", "seconds")}
             for e in events if e["event"] == "case"]
    if isinstance(job, StdioJob):
        compare = job.compare or _default_compare
        for case in cases:
            i = case["index"]
            if case["verdict"]:
                return SandboxResult(case["verdict"], f"case {i}: {case['detail']}", cases=cases)
            if job.expected is not None and (case["truncated"] or not compare(case["output"], job.expected[i])):
                return SandboxResult("wrong_answer", f"case {i}: expected {job.expected[i][:200]!r}, "
                                     f"got {case['output'][:200]!r}", cases=cases)
    if "done" in kinds:
        return SandboxResult("passed", cases=cases)
    for e in events:
        if e["event"] in ("syntax_error", "failed", "runtime_error", "memory_limit"):
            return SandboxResult(e["event"], e.get("detail", ""), cases=cases)
    where = f" during case {len(cases)}" if isinstance(job, StdioJob) else ""
    if timed_out:
        return SandboxResult("timeout", f"wall-clock limit reached{where}", cases=cases)
    name = _signal_name(code)
    if name == "SIGXCPU":
        return SandboxResult("timeout", f"CPU time limit reached{where}", cases=cases)
    if "confined" not in kinds:
        return SandboxResult("runtime_error", f"sandbox failed to start ({name})", cases=cases)
    return SandboxResult("runtime_error", f"process ended before the tests finished ({name}){where}", cases=cases)


def create_sandbox(eval_cfg: Any | None = None) -> Sandbox:
    """The sandbox for one eval. Reads optional `sandbox_workers`, `sandbox_timeout_s` and
    `sandbox_memory_mb` from the eval config when it has them."""
    limits = Limits()
    timeout = getattr(eval_cfg, "sandbox_timeout_s", None)
    memory = getattr(eval_cfg, "sandbox_memory_mb", None)
    if timeout is not None or memory is not None:
        limits = Limits(timeout_s=float(timeout or limits.timeout_s), memory_mb=int(memory or limits.memory_mb))
    return Sandbox(limits, workers=getattr(eval_cfg, "sandbox_workers", None))
