"""Run our own dataset programs (canonical solutions, mutants, stdin references) in subprocesses.

This checks tunelab's *shipped* data, which we wrote; it is not the sandbox for model output
(that lives in the evaluation layer). Still, nothing is exec'd in the calling process: jobs go
to a child `python -I` that runs them one by one, each in a fresh namespace, under an alarm
and an address-space limit, and prints one JSON line per job. A child that dies takes only its
job in flight with it: the parent records that job as failed and starts a new child for the
rest.

A job is a dict with `id` and `program`, plus either
- `test` and `entry_point` (HumanEval style: `check(program's entry_point)` must pass), with an
  optional `doctest: true` to also run the entry point's docstring examples; or
- `stdin` and `expected` (the program, run as `__main__`, must print `expected`); with
  `expected: null` it passes if it runs. Results of stdin jobs carry `output` (what it printed).

The child half of this file imports only the standard library.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

JOB_TIMEOUT_S = 2.0
MEMORY_LIMIT = 1 << 30  # bytes of address space per child


def run_jobs(jobs: list[dict], timeout: float = JOB_TIMEOUT_S, workers: int = 2) -> dict[str, dict]:
    """Run jobs in `workers` child processes; return {id: {"ok": bool, "error": str, ...}}."""
    batches = [jobs[i::workers] for i in range(workers)]
    results: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(lambda b: _run_batch(b, timeout), [b for b in batches if b]):
            results.update(part)
    return results


def _run_batch(jobs: list[dict], timeout: float) -> dict[str, dict]:
    results: dict[str, dict] = {}
    pending = list(jobs)
    while pending:
        payload = json.dumps({"timeout": timeout, "jobs": pending})
        proc = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            out, _ = proc.communicate(payload, timeout=len(pending) * (timeout + 1.0) + 10.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        for line in out.splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
                results[rec.pop("id")] = rec
        done = [j for j in pending if j["id"] in results]
        if len(done) < len(pending):
            # The job after the last finished one killed the child; record it and go on.
            dead = pending[len(done)]
            results[dead["id"]] = {"ok": False, "error": "child process died"}
        pending = [j for j in pending if j["id"] not in results]
    return results


# ---- child side ------------------------------------------------------------------------------


def _child_main() -> None:
    import contextlib
    import doctest
    import io
    import signal

    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass  # macOS may refuse RLIMIT_AS; the per-job alarm still bounds a runaway job
    request = json.loads(sys.stdin.read())
    timeout = request["timeout"]
    out = sys.stdout

    class JobTimeout(BaseException):
        pass

    def on_alarm(signum, frame):
        raise JobTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    for job in request["jobs"]:
        ok, error = False, ""
        captured = io.StringIO()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            with contextlib.redirect_stdout(captured):
                if "stdin" in job:
                    ok, error = _stdio_job(job, captured)
                else:
                    ok, error = _function_job(job, doctest)
        except JobTimeout:
            error = "timeout"
        except BaseException as exc:  # noqa: BLE001 - a job may raise anything, SystemExit included
            error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        rec = {"id": job["id"], "ok": ok, "error": error}
        if "stdin" in job:
            rec["output"] = captured.getvalue()
        out.write(json.dumps(rec) + "\n")
        out.flush()


def _function_job(job: dict, doctest) -> tuple[bool, str]:
    ns: dict = {"__name__": "__job__"}
    exec(compile(job["program"] + "\n\n" + job["test"], "<job>", "exec"), ns)
    candidate = ns[job["entry_point"]]
    ns["check"](candidate)
    if job.get("doctest"):
        finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(verbose=False)
        for test in finder.find(candidate, job["entry_point"], globs=ns):
            runner.run(test, out=lambda s: None)
        if runner.failures:
            return False, f"{runner.failures} docstring example(s) failed"
    return True, ""


def _stdio_job(job: dict, captured) -> tuple[bool, str]:
    import io

    old_stdin = sys.stdin
    sys.stdin = io.StringIO(job["stdin"])
    try:
        exec(compile(job["program"], "<job>", "exec"), {"__name__": "__main__"})
    finally:
        sys.stdin = old_stdin
    got = captured.getvalue()
    if job.get("expected") is None:  # no answer given: the caller wants the output
        return True, ""
    if _lines(got) == _lines(job["expected"]):
        return True, ""
    return False, f"expected {job['expected'][:80]!r}, got {got[:80]!r}"


def _lines(text: str) -> list[str]:
    """Output lines as a judge compares them: trailing spaces and blank trailing lines ignored."""
    return [line.rstrip() for line in text.strip().splitlines()]


if __name__ == "__main__":
    _child_main()
