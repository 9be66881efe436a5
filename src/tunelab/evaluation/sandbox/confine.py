"""Linux confinement primitives for the sandbox: namespaces, read-only mounts, capabilities,
rlimits and a seccomp filter. Standard library only (ctypes); every function degrades to doing
nothing where the kernel refuses, and says what it reached, so results record the real level.

Used by `child.py` (the fork server and its children), never by the tunelab process.
"""

from __future__ import annotations

import ctypes
import os
import resource
import struct
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
CLONE_THREAD = 0x10000
MS_BIND, MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV, MS_NOEXEC = 4096, 0x4000, 1 << 18, 2, 4, 8
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 36, 38, 22
PR_SET_SECUREBITS = 28
SECBITS_LOCKED_NOROOT = 0x2F  # NOROOT, NO_SETUID_FIXUP and KEEP_CAPS off, each locked
SYS_MOUNT_SETATTR, AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = 442, -100, 0x8000, 1
LINUX = sys.platform.startswith("linux")
MACHINE = os.uname().machine
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(MACHINE)
# seccomp arch tags and the process-creating syscalls of each (clone3 is 435 everywhere).
SECCOMP_ARCHES = {
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58}),
    "aarch64": (0xC00000B7, {"clone": 220}),
}

_libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    """Linux prctl(); -1 elsewhere."""
    if not LINUX:
        return -1
    # prctl() and syscall() are variadic: pass full longs, or the upper halves of the registers
    # hold garbage (and prctl rejects nonzero unused arguments).
    return _libc.prctl(ctypes.c_int(option), *(ctypes.c_ulong(a) for a in (a2, a3, a4, a5)))


def unshare(flags: int) -> bool:
    return LINUX and _libc.unshare(ctypes.c_int(flags)) == 0


def _mount(source: bytes | None, target: str, fstype: bytes | None, flags: int, data: bytes | None = None) -> bool:
    return _libc.mount(source, target.encode(), fstype, ctypes.c_ulong(flags), data) == 0


def _mount_setattr(path: str, flags: int, attr_set: int, attr_clr: int) -> bool:
    attr = ctypes.create_string_buffer(struct.pack("QQQQ", attr_set, attr_clr, 0, 0))
    return _libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_long(AT_FDCWD), path.encode(),
                         ctypes.c_long(flags), attr, ctypes.c_long(32)) == 0


# ---- namespaces and mounts ----------------------------------------------------------------------------


def _map_ids(uid: int, gid: int) -> None:
    # Identity maps: files we create stay ours (an unmapped uid cannot create files at all).
    for path, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{path}", "w") as f:
            f.write(text)


def isolate_server(base: str, hide: list[str]) -> list[str]:
    """Once per fork server: new user, network and mount namespaces where the kernel allows;
    every mount read-only except `base` (where the parent makes the jobs' work dirs), `hide`
    covered. A network namespace per job would cost more than most jobs; jobs share this one,
    whose only interface is a loopback that stays down. Returns the levels reached."""
    if not LINUX:
        return []
    uid, gid = os.geteuid(), os.getegid()
    if unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS):
        _map_ids(uid, gid)
    elif not unshare(CLONE_NEWNET | CLONE_NEWNS):  # that was root without user namespaces
        if not unshare(CLONE_NEWUSER | CLONE_NEWNET):
            return []
        _map_ids(uid, gid)
        return ["netns"]
    return ["netns", "fs-ro"] if _readonly_except(base, hide) else ["netns"]


def _readonly_except(base: str, hide: list[str]) -> bool:
    """Make every mount read-only in our mount namespace, except a bind of `base`."""
    if not _mount(b"none", "/", None, MS_REC | MS_PRIVATE):
        return False  # keep our changes from propagating back to the host
    if not _mount(base.encode(), base, None, MS_BIND | MS_REC):
        return False
    # /run holds sockets (docker.sock, dbus) that a read-only mount does not stop a connect to.
    if os.path.isdir("/run") and not os.path.islink("/run"):
        hide = ["/run", *hide]
    for path in hide:
        if (base + "/").startswith(path.rstrip("/") + "/"):
            continue  # never cover the work dirs themselves
        if os.path.isdir(path):
            _mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=16k")
        elif os.path.exists(path):
            _mount(b"/dev/null", path, None, MS_BIND)
    return _mount_setattr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0) and _mount_setattr(base, 0, 0, MOUNT_ATTR_RDONLY)


def isolate_job_mounts(workdir: str, base: str, server_levels: list[str]) -> list[str]:
    """In the job's pid-1 process: a private mount namespace where the shared `base` is
    read-only except this job's work dir, and a /proc of the job's pid namespace (so the host's
    processes, and their environments, are not visible)."""
    if not unshare(CLONE_NEWNS):
        return []
    if "fs-ro" in server_levels:
        ok = (_mount_setattr(base, 0, MOUNT_ATTR_RDONLY, 0) and _mount(workdir.encode(), workdir, None, MS_BIND)
              and _mount_setattr(workdir, 0, 0, MOUNT_ATTR_RDONLY))
        if not ok:
            os._exit(254)  # half-applied mounts: refuse to run rather than run less confined
    return ["proc"] if _mount(b"proc", "/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC) else []


# ---- the harness process: capabilities, limits, no-fork filter -----------------------------------------


class Confinement:
    """Per-process confinement, prepared once in the fork server so each job only makes the
    system calls (building the seccomp program in Python per job cost ~1 ms)."""

    def __init__(self) -> None:
        self._cap_header = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0))  # v3, this thread
        self._cap_data = ctypes.create_string_buffer(24)  # two empty {effective, permitted, inheritable}
        self._filter = _nofork_filter()

    def drop_capabilities(self) -> None:
        """No capabilities, and none regained by exec as uid 0: caps held in our user namespace
        would let the program undo the read-only mounts."""
        prctl(PR_SET_SECUREBITS, SECBITS_LOCKED_NOROOT)  # fails harmlessly without CAP_SETPCAP
        if LINUX and SYS_CAPSET is not None:
            _libc.syscall(ctypes.c_long(SYS_CAPSET), self._cap_header, self._cap_data)
        prctl(PR_SET_NO_NEW_PRIVS, 1)  # no setuid or file-capability gains either

    def no_fork(self) -> bool:
        """seccomp: fork/vfork/clone of a new process fail with EAGAIN; threads still work."""
        if self._filter is None:
            return False
        prog, _buf = self._filter
        return prctl(PR_SET_SECCOMP, 2, ctypes.addressof(prog)) == 0  # SECCOMP_MODE_FILTER


def set_limits(limits: dict) -> list[str]:
    """Apply rlimits; the address-space limit is relative to our size now."""
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
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _nofork_filter() -> tuple[ctypes.Structure, ctypes.Array] | None:
    """The BPF program: allow everything but process creation (and foreign syscall ABIs)."""
    if not LINUX or MACHINE not in SECCOMP_ARCHES:
        return None
    audit_arch, nrs = SECCOMP_ARCHES[MACHINE]
    ld, ret = 0x20, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_RET|BPF_K
    codes = {"jeq": 0x15, "jge": 0x35, "jset": 0x45}  # BPF_JMP|BPF_{JEQ,JGE,JSET}|BPF_K
    results = {"ALLOW": 0x7FFF0000, "EAGAIN": 0x00050000 | 11, "ENOSYS": 0x00050000 | 38, "EPERM": 0x00050000 | 1}
    # Instructions with symbolic jump targets, resolved below (jumps are relative, forward only).
    body: list[tuple] = [("ld", 4), ("jeq", audit_arch, "next", "EPERM"), ("ld", 0)]
    if MACHINE == "x86_64":
        body.append(("jge", 0x40000000, "EAGAIN", "next"))  # the x32 ABI
    body += [("jeq", nrs[name], "EAGAIN", "next") for name in ("fork", "vfork") if name in nrs]
    body += [("jeq", 435, "ENOSYS", "next"),  # clone3: glibc then falls back to clone
             ("jeq", nrs["clone"], "next", "ALLOW"), ("ld", 16),  # low word of clone's flags
             ("jset", CLONE_THREAD, "ALLOW", "EAGAIN")]
    labels = {name: len(body) + i for i, name in enumerate(results)}
    prog = []
    for i, ins in enumerate(body):
        if ins[0] == "ld":
            prog.append((ld, 0, 0, ins[1]))
            continue
        jt, jf = (i + 1 if t == "next" else labels[t] for t in ins[2:4])
        prog.append((codes[ins[0]], jt - i - 1, jf - i - 1, ins[1]))
    prog += [(ret, 0, 0, value) for value in results.values()]
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *p) for p in prog))

    class FProg(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    return FProg(len(prog), ctypes.cast(buf, ctypes.c_void_p)), buf
