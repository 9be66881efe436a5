"""Parent-side plumbing of the sandbox: the fork-server client, pipe pumping, clean-up.

Runs in the tunelab process and never executes model code; `parent.py` holds the API and the
verdicts, `child.py` the other end of the fork server's socket.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import tunelab
from tunelab.evaluation.sandbox.protocol import HEADER, OP_START, OP_WAIT, REPLY, Capped, recv_exact

# The folder `tunelab` is imported from: the child must run this very sandbox code, whichever
# tunelab its interpreter would find on its own (`-I` ignores PYTHONPATH; a checkout may differ
# from the installed copy).
SOURCE_ROOT = str(Path(tunelab.__file__).resolve().parent.parent)
# `python -I -c BOOT ROOT FD CONFIG`: imports the child side from ROOT, then serves.
BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "from tunelab.evaluation.sandbox.child import main; main(sys.argv[2:])")
RESULT_CAP = 16 << 20  # bytes kept from the result pipe; a flood there only loses results
# Hidden from the program (empty tmpfs or /dev/null on top) when the home dir itself cannot be.
CREDENTIALS = (".ssh", ".aws", ".azure", ".gnupg", ".config", ".netrc", ".git-credentials", ".pypirc",
               ".docker", ".kube", ".cache/huggingface", ".huggingface", ".npmrc", ".m2/settings.xml",
               ".cargo/credentials", ".cargo/credentials.toml", ".claude")
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class ForkServer:
    """Client of the fork server: one warm interpreter that forks a launcher per job. Requests
    are short (a fork, or reaping a killed process), so one lock serialises them."""

    def __init__(self, python: str, isolate: bool) -> None:
        self.python, self.isolate = python, isolate
        # The jobs' work dirs live here; the server keeps only this dir writable.
        self.base = os.path.realpath(tempfile.mkdtemp(prefix="tunelab-sandbox-"))
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None

    def _ensure(self) -> socket.socket:
        if self._proc is None or self._proc.poll() is not None or self._sock is None:
            ours, theirs = socket.socketpair()
            config = {"isolate": self.isolate, "base": self.base, "hide": hidden_paths(self.base, self.python)}
            # Scrubbed environment from the start: forks inherit the server's original environ.
            self._proc = subprocess.Popen(
                [self.python, "-I", "-B", "-c", BOOT, SOURCE_ROOT, str(theirs.fileno()), json.dumps(config)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                cwd="/", env=BASE_ENV, start_new_session=True,
            )
            theirs.close()
            self._sock = ours
        return self._sock

    def start(self, payload: bytes, fds: list[int]) -> int:
        """Fork a launcher for `payload` with stdout/stderr/result = fds; returns its pid."""
        with self._lock:
            for attempt in (0, 1):  # a dead server is restarted once
                try:
                    sock = self._ensure()
                    socket.send_fds(sock, [HEADER.pack(OP_START, len(payload))], fds)
                    sock.sendall(payload)
                    return REPLY.unpack(recv_exact(sock, REPLY.size))[0]
                except (OSError, EOFError):
                    self._reset()
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    def wait(self, pid: int) -> int | None:
        """Reap a launcher (after its group was killed): its exit code, or -signal."""
        with self._lock:
            try:
                sock = self._ensure()
                sock.sendall(HEADER.pack(OP_WAIT, pid))
                status = REPLY.unpack(recv_exact(sock, REPLY.size))[0]
            except (OSError, EOFError):
                self._reset()
                return None
        return os.waitstatus_to_exitcode(status)

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._sock = self._proc = None

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()  # the server exits at end of file
                self._sock = None
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None
            remove_tree(self.base)


def pump(pid: int, streams: dict[int, Capped], deadline: float) -> bool:
    """Collect the pipes until they close (and the launcher exited) or the deadline; True if
    the deadline came first."""
    sel = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)  # readable once the launcher exits (Linux >= 5.3)
            sel.register(pidfd, selectors.EVENT_READ)
        except OSError:
            pidfd = None
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return True
            if exited_at is not None:
                open_reads = [k for k in sel.get_map().values() if k.fd in streams]
                if not open_reads or now - exited_at > 0.2:
                    return False  # after 0.2 s, whatever still holds a pipe is killed with the group
            wait = deadline - now if pidfd is not None and exited_at is None else min(deadline - now, 0.02)
            for key, _ in sel.select(timeout=wait):
                if key.fd == pidfd:
                    sel.unregister(pidfd)
                    exited_at = time.monotonic()
                    continue
                chunk = read_chunk(key.fd)
                if chunk:
                    streams[key.fd].write(chunk)
                elif chunk == b"":
                    sel.unregister(key.fd)
            if pidfd is None and exited_at is None and has_exited(pid):
                exited_at = time.monotonic()
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)


def read_chunk(fd: int) -> bytes | None:
    """A chunk, b"" at end of file, or None when nothing is ready after all."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def has_exited(pid: int) -> bool:
    """Whether a process (not our child) has exited: a zombie or gone (fallback without pidfd)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def drain(streams: dict[int, Capped]) -> None:
    """Read what is left in the pipes after the kill (bounded: they are non-blocking)."""
    for fd, buf in streams.items():
        for _ in range(1024):
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buf.write(chunk)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def hidden_paths(workdir: str, python: str) -> list[str]:
    """The home dir if nothing the child needs lives under it, else its usual credential files."""
    home = os.path.realpath(os.path.expanduser("~"))

    def under(path: str) -> bool:
        path = os.path.realpath(path)
        return path == home or path.startswith(home + os.sep)

    needed = [workdir, python, SOURCE_ROOT, sys.prefix, sys.base_prefix, *(p for p in sys.path if p)]
    if home != "/" and not any(under(p) for p in needed):
        return [home]
    return [os.path.join(home, c) for c in CREDENTIALS if os.path.lexists(os.path.join(home, c))]


def remove_tree(path: str) -> None:
    def fix(func, p, exc):  # the program may have made files or dirs read-only
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)
