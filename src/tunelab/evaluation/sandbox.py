"""The sandbox for model-written code. Model output is untrusted: it never runs in this process.

Each job runs in a fresh child process tree (`sandbox_child.py`) started in a new session and
process group, inside a new temporary working directory that is removed afterwards, with a
scrubbed environment (PATH, LANG, HOME/TMPDIR = the work dir, nothing else). On Linux the child
enters new user, network, pid and mount namespaces where the kernel allows it: no network (only
a loopback that is down), the filesystem read-only except the work dir, and every process it
starts dies with the namespace. The harness process drops capabilities, sets rlimits (CPU time,
address space relative to its own start size, file size, open files) and, by default, a seccomp
filter that makes process creation fail (threads still work). The parent kills the whole
process group at the wall-clock deadline and reaps it.

A job passes only if the harness reports, on a private pipe and tagged with a random per-run
nonce, that it ran to its end: early `sys.exit(0)`, `os._exit(0)`, killing the parent or
printing "passed" cannot pass. What each run reached is recorded in `SandboxResult.isolation`,
e.g. "netns+pidns+fs-ro+nofork" or "none". Guarantees and limits: docs/sandbox.md.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHILD = str(Path(__file__).with_name("sandbox_child.py"))
VERDICTS = ("passed", "failed", "wrong_answer", "runtime_error", "syntax_error", "timeout",
            "memory_limit", "no_code")
ISOLATION_LEVELS = ("netns", "pidns", "proc", "fs-ro", "nofork", "nproc")  # in the order we report them
_RESULT_CAP = 16 << 20  # bytes kept from the result pipe; a flood there only loses results
# Hidden from the program (empty tmpfs or /dev/null on top) when the home dir itself cannot be.
_CREDENTIALS = (".ssh", ".aws", ".azure", ".gnupg", ".config", ".netrc", ".git-credentials", ".pypirc",
                ".docker", ".kube", ".cache/huggingface", ".huggingface", ".npmrc", ".m2/settings.xml",
                ".cargo/credentials", ".cargo/credentials.toml", ".claude")


@dataclass(frozen=True)
class Limits:
    """Per-run limits. `timeout_s` is wall-clock from process start (includes ~0.05 s startup)."""

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


class _Capped:
    """Keeps the first `cap` bytes of a stream and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap, self.data, self.total = cap, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        if len(self.data) < self.cap:
            self.data += chunk[: self.cap - len(self.data)]
        self.total += len(chunk)

    def text(self) -> str:
        more = self.total - len(self.data)
        return self.data.decode("utf-8", "replace") + (f"\n[... {more} more bytes cut]" if more else "")


class Sandbox:
    """Runs jobs in isolated child processes, `workers` at a time.

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

    @property
    def isolation(self) -> str:
        """The isolation level a trivial job reaches here (probed once)."""
        if self._isolation is None:
            self._isolation = self.run(FunctionJob("def f():\n    pass\n", "def check(c):\n    c()\n", "f")).isolation
        return self._isolation

    def run_many(self, jobs: Sequence[Job]) -> list[SandboxResult]:
        """Run jobs in parallel (bounded by `workers`); results in the order of `jobs`."""
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs)), thread_name_prefix="sandbox") as pool:
            return list(pool.map(self.run, jobs))

    def close(self) -> None:
        """Nothing to release (each run cleans up after itself); kept for the runner's contract."""

    def run(self, job: Job) -> SandboxResult:
        """Run one job to its verdict; never raises for anything the program does."""
        workdir = os.path.realpath(tempfile.mkdtemp(prefix="tunelab-sandbox-"))
        try:
            return self._run_in(job, workdir)
        finally:
            _remove_tree(workdir)

    # ---- one run ------------------------------------------------------------------------------

    def _payload(self, job: Job, workdir: str, nonce: str, result_fd: int) -> bytes:
        lim = self.limits
        spec: dict[str, Any] = {
            "nonce": nonce, "result_fd": result_fd, "workdir": workdir, "isolate": self.isolate,
            "hide": _hidden_paths(workdir, self.python),
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

    def _run_in(self, job: Job, workdir: str) -> SandboxResult:
        nonce = secrets.token_hex(16)
        marker = secrets.token_hex(8)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": workdir, "TMPDIR": workdir, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "TUNELAB_SANDBOX": marker}
        rfd, wfd = os.pipe()
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                [self.python, "-I", "-B", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=workdir, env=env, pass_fds=(wfd,), start_new_session=True,
            )
        except BaseException:
            os.close(rfd)
            raise
        finally:
            os.close(wfd)
        payload = self._payload(job, workdir, nonce, wfd)
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        streams = {out_fd: _Capped(self.limits.output_bytes), err_fd: _Capped(self.limits.output_bytes),
                   rfd: _Capped(_RESULT_CAP)}
        try:
            timed_out = _pump(proc, payload, streams, started + self.limits.timeout_s)
        finally:
            _kill_group(proc.pid)  # before reaping: the pid (= group id) cannot be reused yet
            proc.wait()
            _drain(streams)
            for f in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass
            os.close(rfd)
        events = _events(streams[rfd].data, nonce)
        levels = [lv for e in events if e["event"] in ("isolation", "confined") for lv in e.get("levels", [])]
        if "pidns" not in levels:
            _sweep(marker)  # no pid namespace: find escaped descendants by their environment
        res = _verdict(job, events, timed_out, proc.returncode)
        res.isolation = "+".join(lv for lv in ISOLATION_LEVELS if lv in levels) or "none"
        res.seconds = round(time.monotonic() - started, 4)
        res.exit_code = proc.returncode
        res.stdout, res.stderr = streams[out_fd].text(), streams[err_fd].text()
        return res


# ---- process plumbing -----------------------------------------------------------------------------


def _pump(proc: subprocess.Popen, payload: bytes, streams: dict[int, _Capped], deadline: float) -> bool:
    """Feed stdin, collect the pipes until they close or the deadline; True if timed out."""
    sel = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    stdin = proc.stdin.fileno()
    os.set_blocking(stdin, False)
    sel.register(stdin, selectors.EVENT_WRITE)
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(proc.pid)
            sel.register(pidfd, selectors.EVENT_READ)
        except OSError:
            pidfd = None
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return True
            open_reads = [k for k in sel.get_map().values() if k.fd in streams]
            if not open_reads and exited_at is not None:
                return False
            if exited_at is not None and now - exited_at > 0.2:
                return False  # the launcher is gone; something it left holds a pipe: stop waiting
            wait = deadline - now if pidfd is not None and exited_at is None else min(deadline - now, 0.02)
            for key, _ in sel.select(timeout=wait):
                if key.fd == stdin:
                    try:
                        payload = payload[os.write(stdin, payload[:65536]):]
                    except OSError:  # the child died before reading its job
                        payload = b""
                    if not payload:
                        sel.unregister(stdin)
                        proc.stdin.close()
                elif key.fd == pidfd:
                    sel.unregister(pidfd)
                    exited_at = time.monotonic()
                else:
                    chunk = _read(key.fd)
                    if chunk:
                        streams[key.fd].add(chunk)
                    elif chunk == b"":
                        sel.unregister(key.fd)
            if pidfd is None and exited_at is None and _has_exited(proc.pid):
                exited_at = time.monotonic()
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)


def _read(fd: int) -> bytes | None:
    """A chunk, b"" at end of file, or None when nothing is ready after all."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _has_exited(pid: int) -> bool:
    """Whether the child exited, without reaping it (its pid stays reserved for killpg)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _drain(streams: dict[int, _Capped]) -> None:
    """Read what is left in the pipes after the kill (bounded: they are non-blocking)."""
    for fd, buf in streams.items():
        for _ in range(1024):
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buf.add(chunk)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _sweep(marker: str) -> None:
    """Kill processes that carry this run's marker in their environment (Linux /proc only)."""
    needle = f"TUNELAB_SANDBOX={marker}".encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue


def _hidden_paths(workdir: str, python: str) -> list[str]:
    """The home dir if nothing the child needs lives under it, else its usual credential files."""
    home = os.path.realpath(os.path.expanduser("~"))

    def under(path: str) -> bool:
        path = os.path.realpath(path)
        return path == home or path.startswith(home + os.sep)

    needed = [workdir, python, CHILD, sys.prefix, sys.base_prefix, *(p for p in sys.path if p)]
    if home != "/" and not any(under(p) for p in needed):
        return [home]
    return [os.path.join(home, c) for c in _CREDENTIALS if os.path.lexists(os.path.join(home, c))]


def _remove_tree(path: str) -> None:
    def fix(func, p, exc):  # the program may have made files or dirs read-only
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


# ---- verdicts ---------------------------------------------------------------------------------------


def _events(raw: bytes, nonce: str) -> list[dict[str, Any]]:
    """The harness's records: JSON lines carrying this run's nonce (anything else is ignored)."""
    out = []
    for line in bytes(raw).split(b"\n"):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("nonce") == nonce and isinstance(rec.get("event"), str):
            out.append(rec)
    return out


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
