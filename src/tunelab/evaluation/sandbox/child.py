"""Child side of the sandbox: a fork server, one launcher per job, and the confined harness.

Standard library only. `proc.py` starts this module once per Sandbox as a fork server (with
`python -I -B -c`, importing it from the parent's own tunelab; `python -m
tunelab.evaluation.sandbox.child FD CONFIG` works too): a warm interpreter that forks per job,
which is much cheaper than starting Python per job. The server runs only this trusted
code; model-written code runs in the harness, below two forks and every confinement:

    fork server  user + network + mount namespaces, read-only fs except the work dirs (once);
                 reads jobs and pipe fds from the parent's socket, forks, reaps on request
      launcher   new session; new pid namespace for its child; subreaper; relays the status
        harness  pid 1 of that namespace: own mounts (only its work dir writable) and /proc;
                 no capabilities, rlimits, no-fork seccomp filter; runs program + tests.
                 Its exit kills every process left in the namespace.

Results leave as JSON lines on a private pipe (fd 3), each carrying the run's random nonce, so
nothing the program prints can pose as a result; "done" is written only after the last test
passed, so a program that exits early (`sys.exit`, `os._exit`, killing its parent) never passes.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Sequence

from tunelab.evaluation.sandbox.confine import (
    CLONE_NEWPID, PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG, Confinement, isolate_job_mounts,
    isolate_server, prctl, set_limits, unshare,
)
from tunelab.evaluation.sandbox.harness import flush_std_streams, run_function, run_stdio
from tunelab.evaluation.sandbox.protocol import HEADER, OP_START, OP_WAIT, REPLY, Reporter, recv_exact

RESULT_FD = 3


def harness(job: dict, server_levels: list[str], confinement: Confinement, alive: int) -> None:
    """Confine this process, then run the job; "done" is written only if every test ran."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the parent kills the launcher; we follow it
    if select.select([alive], [], [], 0)[0]:
        os._exit(255)  # the launcher died before prctl took effect (its pipe end is closed)
    os.close(alive)
    # Our own process group: a program's kill(0, ...) then hits only us, never the launcher
    # (as pid 1 of the namespace we ignore it), so the verdict does not depend on a race.
    os.setpgid(0, 0)
    report = Reporter(RESULT_FD, job["nonce"])
    reached = []
    if os.getpid() == 1:
        reached += isolate_job_mounts(job["workdir"], job["base"], server_levels)
        os.chdir(job["workdir"])  # again: the old cwd still points into the read-only mount
    confinement.drop_capabilities()
    reached += set_limits(job["limits"])
    if job["limits"]["max_processes"] == 0 and confinement.no_fork():
        reached.append("nofork")
    report.send("confined", levels=reached)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-big writes raise OSError instead of killing
    ok = run_stdio(job, report) if job["kind"] == "stdio" else run_function(job, report)
    if ok:
        report.send("done")
    flush_std_streams()
    os._exit(0)  # skip atexit hooks and non-daemon threads the program left behind


def _status_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 255


def _children() -> list[int]:
    """This process's children now (orphans re-parent to us, a subreaper); [] if unknown."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _kill_children() -> None:
    """Kill and reap every child left."""
    for _ in range(1000):  # bounded: each round kills what exists now
        kids = _children()
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return
        if not kids:
            time.sleep(0.001)


def launch(job: dict, server_levels: list[str], confinement: Confinement) -> None:
    """The launcher: a new pid namespace for the harness, then wait and relay its status."""
    levels = list(server_levels)
    if server_levels and unshare(CLONE_NEWPID):
        levels.append("pidns")
    Reporter(RESULT_FD, job["nonce"]).send("isolation", levels=levels)
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # without a pid namespace, orphans come back to us
    alive, keep = os.pipe()  # closes when we die: tells the harness, race-free, that we are gone
    child = os.fork()
    if child == 0:
        os.close(keep)
        harness(job, server_levels, confinement, alive)
    os.close(alive)
    os.close(RESULT_FD)
    code = 255
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child:
            code = _status_code(status)
            break
    _kill_children()
    os._exit(code)


# ---- fork server ------------------------------------------------------------------------------------


def _start(sock: socket.socket, payload: bytes, fds: list[int], levels: list[str], conf: Confinement) -> int:
    """Fork a launcher with stdout, stderr, result pipe = fds[0..2]; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.setsid()  # own session and process group: the parent kills the group on timeout
        sock.close()
        devnull = os.open(os.devnull, os.O_RDWR)
        for target, fd in ((0, devnull), (1, fds[0]), (2, fds[1]), (RESULT_FD, fds[2])):
            os.dup2(fd, target)
        os.closerange(RESULT_FD + 1, 1 << 16)  # nothing of the server (socket, other jobs' pipes)
        job = json.loads(payload)
        os.chdir(job["workdir"])
        os.environ.clear()
        os.environ.update(job["env"])
        launch(job, levels, conf)
    except BaseException as exc:  # noqa: BLE001 - report why, then never return into the server
        os.write(2, f"sandbox launcher failed: {exc!r}\n".encode())
    finally:
        os._exit(255)


def _reap_orphans(active: set[int]) -> None:
    """Kill children that are not running launchers: orphans of runs without a pid namespace
    re-parent to us (a subreaper) when their launcher was killed."""
    for pid in _children():
        if pid not in active:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def serve(fd: int, config: dict) -> None:
    """Answer requests (`protocol.HEADER`: OP_START, OP_WAIT) until the parent closes the socket.

    `config`: {"isolate": bool, "base": dir of the work dirs, "hide": paths to cover}."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    sock = socket.socket(fileno=fd)
    levels = isolate_server(config["base"], config["hide"]) if config["isolate"] else []
    conf = Confinement()
    active: set[int] = set()
    while True:
        try:
            head, fds, _, _ = socket.recv_fds(sock, HEADER.size, 3)
            if not head:
                break
            op, arg = HEADER.unpack(head + recv_exact(sock, HEADER.size - len(head)))
            if op == OP_START:
                pid = _start(sock, recv_exact(sock, arg), fds, levels, conf)
                for f in fds:
                    os.close(f)
                active.add(pid)
                sock.sendall(REPLY.pack(pid))
            elif op == OP_WAIT:
                _, status = os.waitpid(arg, 0)
                active.discard(arg)
                _reap_orphans(active)
                sock.sendall(REPLY.pack(status))
        except (EOFError, ConnectionError):
            break
    _reap_orphans(set())
    os._exit(0)


def main(argv: Sequence[str]) -> None:
    """`FD CONFIG`: serve on the inherited socket FD with the JSON CONFIG (see `serve`)."""
    serve(int(argv[0]), json.loads(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
