"""Child side of the sandbox: the launcher, a tiny init, and the test harness. Standard library only.

Run as `python -I sandbox_child.py` by `sandbox.py`, never imported by tunelab at run time. The
job (JSON) arrives on stdin; results leave as JSON lines on a private pipe (`result_fd`), each
carrying the run's random nonce, so nothing the program prints can pose as a result.

Process tree, all in one new session/process group made by the parent:

    launcher  unshare(user, net, pid, mount) -> read-only filesystem except the work dir
      init    pid 1 of the new pid namespace: reaps, and its exit kills every process left
        harness  drops capabilities, sets rlimits and the no-fork filter, runs program + tests

The harness writes {"event": "done"} only after the last test passed, so a program that exits
early (`sys.exit`, `os._exit`, killing its parent) never produces a pass.
"""

from __future__ import annotations

import builtins
import ctypes
import io
import json
import os
import signal
import struct
import sys
import time
import traceback

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
CLONE_THREAD = 0x10000
MS_BIND, MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV, MS_NOEXEC = 4096, 0x4000, 1 << 18, 2, 4, 8
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
PR_CAPBSET_DROP, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 24, 22, 2
SYS_MOUNT_SETATTR, AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = 442, -100, 0x8000, 1
# seccomp arch tags and the process-creating syscalls of each (clone3 is 435 everywhere).
SECCOMP_ARCHES = {
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58}),
    "aarch64": (0xC00000B7, {"clone": 220}),
}

_libc = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    # prctl() is variadic: pass full unsigned longs, or the upper halves of the registers hold
    # garbage (and prctl rejects nonzero unused arguments). Same for syscall() below.
    return libc().prctl(ctypes.c_int(option), *(ctypes.c_ulong(a) for a in (a2, a3, a4, a5)))


# ---- reporting -------------------------------------------------------------------------------


class Reporter:
    """Writes nonce-tagged JSON lines to the private result pipe."""

    def __init__(self, fd: int, nonce: str) -> None:
        self.fd, self.nonce = fd, nonce

    def send(self, event: str, **fields: object) -> None:
        line = json.dumps({"nonce": self.nonce, "event": event, **fields}) + "\n"
        data = line.encode("utf-8", "replace")
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:
            pass  # the program closed our pipe: the parent then sees no "done", which fails


# ---- launcher: namespaces and a read-only filesystem -----------------------------------------


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def isolate(workdir: str, hide: list[str]) -> list[str]:
    """Enter new user/net/pid/mount namespaces where allowed; returns the levels reached.

    `hide`: paths covered by an empty tmpfs (dirs) or /dev/null (files), e.g. credentials.
    """
    if not sys.platform.startswith("linux"):
        return []
    uid, gid = os.geteuid(), os.getegid()
    c = libc()
    levels: list[str] = []
    if c.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS) == 0:
        # Identity maps: files we create stay ours (an unmapped uid cannot create files at all).
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        levels += ["netns", "pidns"]
    elif c.unshare(CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS) == 0:  # root without user namespaces
        levels += ["netns", "pidns"]
    elif c.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        return ["netns"]
    else:
        return []
    if _readonly_root(workdir, hide):
        levels.append("fs-ro")
    return levels


def _mount_setattr(path: str, flags: int, attr_set: int, attr_clr: int) -> bool:
    attr = ctypes.create_string_buffer(struct.pack("QQQQ", attr_set, attr_clr, 0, 0))
    res = libc().syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_long(AT_FDCWD), path.encode(),
                         ctypes.c_long(flags), attr, ctypes.c_long(32))
    return res == 0


def _readonly_root(workdir: str, hide: list[str]) -> bool:
    """Make every mount read-only in our mount namespace, except a bind of the work dir."""
    c = libc()
    wd = workdir.encode()
    if c.mount(b"none", b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        return False  # keep our changes from propagating back to the host
    if c.mount(wd, wd, None, ctypes.c_ulong(MS_BIND | MS_REC), None) != 0:
        return False
    # Hide /run (docker.sock, dbus and other sockets a root process could still connect to).
    if os.path.isdir("/run") and not os.path.islink("/run"):
        hide = ["/run", *hide]
    for path in hide:
        if (workdir + "/").startswith(path.rstrip("/") + "/"):
            continue  # never cover the work dir itself
        p = path.encode()
        if os.path.isdir(path):
            c.mount(b"tmpfs", p, b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV), b"size=16k")
        elif os.path.exists(path):
            c.mount(b"/dev/null", p, None, ctypes.c_ulong(MS_BIND), None)
    if not _mount_setattr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0):
        return False
    return _mount_setattr(workdir, 0, 0, MOUNT_ATTR_RDONLY)


# ---- harness process: capabilities, limits, no-fork filter -----------------------------------


def drop_capabilities() -> None:
    """Empty the bounding set and the capability sets (caps held in our user namespace would
    let the program undo the read-only mounts)."""
    c = libc()
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = bytes(24)  # two empty {effective, permitted, inheritable} structs
    nr = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)
    if nr is not None:
        c.syscall(ctypes.c_long(nr), ctypes.create_string_buffer(header), ctypes.create_string_buffer(data))


def set_limits(limits: dict) -> list[str]:
    """Apply rlimits; the address-space limit is relative to our size now."""
    import resource

    reached = []

    def lim(which: int, soft: int, hard: int | None = None) -> bool:
        try:
            resource.setrlimit(which, (soft, soft if hard is None else hard))
            return True
        except (ValueError, OSError):
            return False

    cpu = int(limits["cpu_s"])
    lim(resource.RLIMIT_CPU, cpu, cpu + 1)  # soft: SIGXCPU, hard: SIGKILL
    lim(resource.RLIMIT_FSIZE, int(limits["file_size"]))
    lim(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    lim(resource.RLIMIT_CORE, 0)
    if lim(resource.RLIMIT_AS, _address_space() + int(limits["memory"])):
        reached.append("memory")
    if limits["max_processes"] > 0 and hasattr(resource, "RLIMIT_NPROC"):
        # Counted per user namespace on Linux >= 5.14; never enforced for real root (uid 0).
        if lim(resource.RLIMIT_NPROC, int(limits["max_processes"])) and os.geteuid() != 0:
            reached.append("nproc")
    return reached


def _address_space() -> int:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def install_nofork_filter() -> bool:
    """seccomp: fork/vfork/clone of a new process fail with EAGAIN; threads still work."""
    arch = os.uname().machine
    if arch not in SECCOMP_ARCHES:
        return False
    audit_arch, nrs = SECCOMP_ARCHES[arch]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eagain, enosys, eperm = 0x7FFF0000, 0x00050000 | 11, 0x00050000 | 38, 0x00050000 | 1
    prog: list[tuple[int, int, int, int]] = []
    # Instructions with symbolic jump targets, resolved below (jumps are relative, forward only).
    body = [("ld", 4), ("jeq", audit_arch, "next", "EPERM"), ("ld", 0)]
    if arch == "x86_64":
        body.append(("jge", 0x40000000, "EAGAIN", "next"))  # the x32 ABI
    for name in ("fork", "vfork"):
        if name in nrs:
            body.append(("jeq", nrs[name], "EAGAIN", "next"))
    body += [("jeq", 435, "ENOSYS", "next"),  # clone3: glibc then falls back to clone
             ("jeq", nrs["clone"], "next", "ALLOW"), ("ld", 16),  # low word of clone's flags
             ("jset", CLONE_THREAD, "ALLOW", "EAGAIN")]
    labels = {"ALLOW": len(body), "EAGAIN": len(body) + 1, "ENOSYS": len(body) + 2, "EPERM": len(body) + 3}
    codes = {"jeq": jeq, "jge": jge, "jset": jset}
    for i, ins in enumerate(body):
        if ins[0] == "ld":
            prog.append((ld, 0, 0, ins[1]))
            continue
        jt, jf = (i + 1 if t == "next" else labels[t] for t in ins[2:4])
        prog.append((codes[ins[0]], jt - i - 1, jf - i - 1, ins[1]))
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eagain), (ret, 0, 0, enosys), (ret, 0, 0, eperm)]
    raw = b"".join(struct.pack("HBBI", *p) for p in prog)
    buf = ctypes.create_string_buffer(raw)

    class FProg(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = FProg(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog)) == 0


# ---- harness: run the program and its tests ---------------------------------------------------


class _Capped(io.RawIOBase):
    """A write-only sink that keeps the first `cap` bytes (the stdout of one stdio case)."""

    def __init__(self, cap: int) -> None:
        self.cap, self.data, self.total = cap, bytearray(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        n = len(b)
        if len(self.data) < self.cap:
            self.data += bytes(b[: self.cap - len(self.data)])
        self.total += n
        return n


def _exc_detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _classify(exc: BaseException) -> str:
    return "memory_limit" if isinstance(exc, MemoryError) else "runtime_error"


def _failing_test_line(exc: BaseException, test: str) -> tuple[bool, str]:
    """(raised by the test code itself, the test source line that raised)."""
    frames = traceback.extract_tb(exc.__traceback__)
    in_test = [f for f in frames if f.filename == "<test>"]
    if not in_test:
        return False, ""
    lines = test.splitlines()
    lineno = in_test[-1].lineno or 0
    line = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
    return frames[-1].filename == "<test>", f"test line {lineno}: {line}"[:500]


def run_function(job: dict, report: Reporter) -> bool:
    """HumanEval style: exec program, then the test code, then check(entry_point)."""
    try:
        code = compile(job["program"], "<program>", "exec")
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        report.send("syntax_error", detail=_exc_detail(exc))
        return False
    ns: dict = {"__name__": "__sandbox__", "__builtins__": builtins}
    try:
        exec(code, ns)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        report.send(_classify(exc), phase="program", type=type(exc).__name__, detail=_exc_detail(exc))
        return False
    test = job["test"]
    try:
        exec(compile(test, "<test>", "exec"), ns)
        if job["entry_point"] not in ns:
            raise NameError(f"entry point '{job['entry_point']}' is not defined")
        ns["check"](ns[job["entry_point"]])
    except BaseException as exc:  # noqa: BLE001
        from_test, where = _failing_test_line(exc, test)
        if isinstance(exc, AssertionError) and from_test:
            msg = f" ({exc})" if str(exc) else ""
            report.send("failed", detail=f"{where}{msg}"[:500])
        else:
            detail = _exc_detail(exc) + (f" at {where}" if where else "")
            report.send(_classify(exc), phase="test", type=type(exc).__name__, detail=detail)
        return False
    return True


def _fd_with(data: bytes) -> int:
    """A readable fd holding `data` from offset 0 (memfd, or an unlinked file in the work dir)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("stdin")
    else:
        fd = os.open(".stdin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.unlink(".stdin")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class _CaseTimeout(BaseException):
    pass


def run_stdio(job: dict, report: Reporter) -> bool:
    """Run the program as __main__ once per case: the case input on fd 0, stdout captured."""
    try:
        code = compile(job["program"], "<program>", "exec")
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        report.send("syntax_error", detail=_exc_detail(exc))
        return False

    def on_alarm(signum, frame):
        raise _CaseTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    for i, text in enumerate(job["inputs"]):
        fd = _fd_with(text.encode("utf-8"))
        if fd != 0:  # fd 0 is free again if the program closed it (`open(0)` closes it on exit)
            os.dup2(fd, 0)  # the real fd 0, so open(0) and os.read(0) see the input too
            os.close(fd)
        sink = _Capped(int(job["case_output_cap"]))
        out = io.TextIOWrapper(io.BufferedWriter(sink), encoding="utf-8", newline="\n")
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = sys.__stdout__ = out
        error, verdict, started = "", "", time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, float(job["case_timeout_s"]))
        try:
            exec(code, {"__name__": "__main__", "__builtins__": builtins})
        except SystemExit as exc:  # exit(0) / exit() after printing is a normal end here
            if exc.code not in (None, 0):
                verdict, error = "runtime_error", f"SystemExit: {exc.code!r}"[:500]
        except _CaseTimeout:
            verdict, error = "timeout", f"case {i} ran over {job['case_timeout_s']}s"
        except BaseException as exc:  # noqa: BLE001
            verdict, error = _classify(exc), _exc_detail(exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            out.flush()
        except BaseException:  # noqa: BLE001 - the program may have closed or broken it
            pass
        seconds = time.perf_counter() - started
        output = bytes(sink.data).decode("utf-8", "replace")
        report.send("case", index=i, output=output, truncated=sink.total > len(sink.data),
                    verdict=verdict, detail=error, seconds=round(seconds, 4))
        if verdict:
            return False
    return True


def harness(job: dict, result_fd: int) -> None:
    """Confine this process, then run the job; "done" is written only if every test ran."""
    fd = os.dup(result_fd)  # a low fd number, so a small RLIMIT_NOFILE still covers it
    os.close(result_fd)
    report = Reporter(fd, job["nonce"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir(job["workdir"])
    drop_capabilities()
    reached = set_limits(job["limits"])
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if job["limits"]["max_processes"] == 0 and install_nofork_filter():
        reached.append("nofork")
    report.send("confined", levels=reached)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-big writes raise OSError instead of killing
    ok = run_stdio(job, report) if job["kind"] == "stdio" else run_function(job, report)
    if ok:
        report.send("done")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(0)  # skip atexit hooks and non-daemon threads the program left behind


# ---- init and launcher --------------------------------------------------------------------------


def _status_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 255


def _kill_children() -> None:
    """Kill and reap every child left (orphans re-parent to us: we are pid 1 or a subreaper)."""
    for _ in range(1000):  # bounded: each round kills what exists now
        try:
            kids = open(f"/proc/self/task/{os.getpid()}/children").read().split()
        except OSError:
            kids = []
        for pid in kids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return
        if not kids:
            time.sleep(0.001)


def init(job: dict, result_fd: int, launcher: int) -> None:
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != launcher and os.getpid() != 1:
        os._exit(255)  # the launcher died before prctl took effect
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    if os.getpid() == 1:  # a /proc of our pid namespace: host processes (and their environ) vanish
        proc_ok = libc().mount(b"proc", b"/proc", b"proc", ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC), None) == 0
        Reporter(result_fd, job["nonce"]).send("isolation", levels=["proc"] if proc_ok else [])
    child = os.fork()
    if child == 0:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        harness(job, result_fd)
    os.close(result_fd)
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


def main() -> None:
    job = json.loads(sys.stdin.buffer.read())
    result_fd = int(job["result_fd"])
    report = Reporter(result_fd, job["nonce"])
    levels = isolate(job["workdir"], job["hide"]) if job["isolate"] else []
    report.send("isolation", levels=levels)
    launcher = os.getpid()
    pid = os.fork()
    if pid == 0:
        init(job, result_fd, launcher)
    os.close(result_fd)
    _, status = os.waitpid(pid, 0)
    os._exit(_status_code(status))


if __name__ == "__main__":
    main()
