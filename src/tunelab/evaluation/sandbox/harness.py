"""The test harness inside the sandbox: runs the program and its tests, reports on a private pipe.

Standard library only; imported by `child.py` in the confined harness process, never run by
the tunelab process. Every record carries the run's nonce; "done" is written by the caller only after
`run_function` / `run_stdio` returned True, i.e. after the last test ran.
"""

from __future__ import annotations

import builtins
import io
import os
import signal
import sys
import time
import traceback
from types import CodeType

from tunelab.evaluation.sandbox.protocol import Capped, Reporter


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


def _compile_program(job: dict, report: Reporter) -> CodeType | None:
    """The program's code object, or None after reporting why it does not compile."""
    try:
        return compile(job["program"], "<program>", "exec")
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        report.send("syntax_error", detail=_exc_detail(exc))
        return None


def flush_std_streams() -> None:
    """Flush stdout and stderr, whatever the program made of them (replaced, closed, broken)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass


def run_function(job: dict, report: Reporter) -> bool:
    """HumanEval style: exec program, then the test code, then check(entry_point)."""
    code = _compile_program(job, report)
    if code is None:
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
    code = _compile_program(job, report)
    if code is None:
        return False

    def on_alarm(signum, frame):
        raise _CaseTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    for i, text in enumerate(job["inputs"]):
        fd = _fd_with(text.encode("utf-8"))
        if fd != 0:  # fd 0 is free again if the program closed it (`open(0)` closes it on exit)
            os.dup2(fd, 0)  # the real fd 0, so open(0) and os.read(0) see the input too
            os.close(fd)
        sink = Capped(int(job["case_output_cap"]))
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
        report.send("case", index=i, output=output, truncated=sink.truncated,
                    verdict=verdict, detail=error, seconds=round(seconds, 4))
        if verdict:
            return False
    return True
