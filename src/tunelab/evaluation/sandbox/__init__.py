"""The sandbox for model-written code. Model output is untrusted: it never runs in this process.

Usage: `with Sandbox(Limits(timeout_s=5), workers=4) as sb: results = sb.run_many(jobs)`, where
a job is a `FunctionJob` (HumanEval style: program, test code defining `check`, entry point) or
a `StdioJob` (program, stdin per case, expected stdout). Each result has a `verdict` (one of
VERDICTS), a `detail` (the failing test line, the exception type, the first differing case),
the `isolation` level reached, the time taken and the capped stdout/stderr.

Parent side (the tunelab process, never runs model code):
    parent.py    the API and the verdicts
    proc.py      the fork-server client, pipe pumping, kill and clean-up
Child side (a separate interpreter, standard library only):
    child.py     the fork server, one launcher per job, the confined harness process
    confine.py   namespaces, read-only mounts, capabilities, rlimits, the no-fork seccomp filter
    harness.py   runs the program and its tests
Both:
    protocol.py  the fork server's requests, the nonce-tagged result records, capped streams

How: a fork server started once per Sandbox enters new user, network and mount namespaces
where the kernel allows (no network: a loopback that is down; the filesystem read-only except
the work dirs, credentials hidden) and forks one launcher per job, in a new session, with a
scrubbed environment (PATH, LANG, HOME/TMPDIR = its fresh work dir, removed afterwards). The
launcher puts the harness in a new pid namespace (every process it starts dies with it) with
its own mounts and /proc; the harness drops capabilities, sets rlimits (CPU time, address space
relative to its own start size, file size, open files) and, by default, a seccomp filter that
makes process creation fail (threads still work). At the wall-clock deadline the parent kills
the launcher's process group; the rest dies with it.

A job passes only if the harness reports, on a private pipe and tagged with a random per-run
nonce, that it ran to its end: early `sys.exit(0)`, `os._exit(0)`, killing the parent or
printing "passed" cannot pass. What each run reached is recorded in `SandboxResult.isolation`,
e.g. "netns+pidns+proc+fs-ro+nofork" or "none". Guarantees and limits: docs/sandbox.md.
"""

from tunelab.evaluation.sandbox.parent import (
    ISOLATION_LEVELS, VERDICTS, FunctionJob, Job, Limits, Sandbox, SandboxResult, StdioJob, create_sandbox,
)

__all__ = ["ISOLATION_LEVELS", "VERDICTS", "FunctionJob", "Job", "Limits", "Sandbox", "SandboxResult", "StdioJob",
           "create_sandbox"]
