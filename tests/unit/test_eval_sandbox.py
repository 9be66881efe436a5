"""The sandbox against hostile and broken programs: every test runs a real child process.

Programs that must leave no process behind rename themselves (prctl PR_SET_NAME) to a token
that the test then looks for in /proc.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
from pathlib import Path

import pytest

from tunelab.evaluation.sandbox import FunctionJob, Limits, Sandbox, StdioJob, create_sandbox

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox tests use Linux /proc")

CHECK = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 6\n"
GOOD = "def f(x):\n    return x + 1\n"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(timeout_s=3.0, memory_mb=256), workers=2)


def run(sb: Sandbox, program: str, test: str = CHECK, entry: str = "f"):
    return sb.run(FunctionJob(program, test, entry))


def name_self(token: str) -> str:
    """Program lines that rename the running process to `token` (visible in /proc/PID/comm)."""
    return f"import ctypes\nctypes.CDLL(None).prctl(15, {token.encode()!r}, 0, 0, 0)\n"


def alive(token: str, wait_s: float = 3.0) -> list[int]:
    """Pids whose comm is `token`, after waiting up to `wait_s` for them to disappear."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "comm").read_text().strip() == token:
                    found.append(int(entry.name))
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def token() -> str:
    return "tl" + secrets.token_hex(6)  # comm holds 15 characters


# ---- verdicts -------------------------------------------------------------------------------------


def test_verdicts_for_ordinary_programs(sandbox: Sandbox) -> None:
    assert run(sandbox, GOOD).passed
    wrong = run(sandbox, "def f(x):\n    return x\n")
    assert wrong.verdict == "failed" and "assert candidate(1) == 2" in wrong.detail
    assert run(sandbox, "def f(x)\n    return x\n").verdict == "syntax_error"
    crash = run(sandbox, "def f(x):\n    return x / 0\n")
    assert crash.verdict == "runtime_error" and "ZeroDivisionError" in crash.detail
    missing = run(sandbox, "def g(x):\n    return x + 1\n")
    assert missing.verdict == "runtime_error" and "NameError" in missing.detail
    own_assert = run(sandbox, "def f(x):\n    assert x > 3\n    return x + 1\n")
    assert own_assert.verdict == "runtime_error" and "AssertionError" in own_assert.detail


def test_isolation_is_recorded(sandbox: Sandbox) -> None:
    res = run(sandbox, GOOD)
    assert res.isolation == sandbox.isolation
    assert res.isolation == "none" or all(lv in {"netns", "pidns", "proc", "fs-ro", "nofork", "nproc"}
                                          for lv in res.isolation.split("+"))
    assert create_sandbox(None).limits == Limits()


# ---- adversarial ----------------------------------------------------------------------------------


def test_infinite_loop_times_out_and_the_group_dies() -> None:
    tok = token()
    sb = Sandbox(Limits(timeout_s=1.0), workers=1)
    started = time.monotonic()
    res = run(sb, name_self(tok) + "while True:\n    pass\n")
    assert res.verdict == "timeout"
    assert time.monotonic() - started < 3.0
    assert alive(tok) == []


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    res = run(sandbox, "import os\nwhile True:\n    os.fork()\n")
    assert res.verdict == "runtime_error"
    if "nofork" in res.isolation:
        assert "BlockingIOError" in res.detail  # the first fork already failed


def test_subprocess_bomb_with_process_limit() -> None:
    if os.geteuid() == 0:
        pytest.skip("RLIMIT_NPROC is never enforced for root; the default no-fork filter covers root")
    sb = Sandbox(Limits(timeout_s=2.0, max_processes=16), workers=1)
    tok = token()
    res = run(sb, name_self(tok) + "import os\nwhile True:\n    os.fork()\n")
    assert res.verdict in ("runtime_error", "timeout")
    assert alive(tok) == []


def test_a_child_that_outlives_its_parent_is_reaped() -> None:
    tok = token()
    program = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.setsid()\n"  # leaves the process group: only the namespace / sweep catches it
        "    if os.fork() == 0:\n"
        + "".join("        " + ln + "\n" for ln in name_self(tok).splitlines())
        + "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "time.sleep(0.2)\n"
        + GOOD
    )
    sb = Sandbox(Limits(timeout_s=3.0, max_processes=8), workers=1)
    res = run(sb, program)
    assert res.passed, res.detail
    assert alive(tok) == [], "the orphaned grandchild survived the run"


def test_memory_hog_is_stopped(sandbox: Sandbox) -> None:
    res = run(sandbox, "x = bytearray(8 << 30)\n" + GOOD)
    assert res.verdict == "memory_limit"
    res = run(sandbox, "chunks = []\nwhile True:\n    chunks.append(b' ' * (16 << 20))\n")
    assert res.verdict in ("memory_limit", "runtime_error")  # MemoryError, or killed while allocating


def test_huge_output_is_capped() -> None:
    sb = Sandbox(Limits(timeout_s=5.0, output_bytes=4096), workers=1)
    res = run(sb, "import sys\nfor _ in range(400):\n    sys.stdout.write('x' * 65536)\n" + GOOD)
    assert res.passed, res.detail
    assert len(res.stdout) < 4096 + 100 and "more bytes cut" in res.stdout
    flood = sb.run(StdioJob("print('y' * (20 << 20))\n", ("\n",), ("y\n",)))
    assert flood.verdict == "wrong_answer"
    assert len(flood.cases[0]["output"]) <= 4096 and flood.cases[0]["truncated"]


def test_files_outside_the_work_dir_survive(sandbox: Sandbox, tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("still here")
    program = (
        "import os, shutil\n"
        f"for action in (lambda: os.remove({str(canary)!r}), lambda: shutil.rmtree({str(tmp_path)!r}),\n"
        f"               lambda: open({str(canary)!r}, 'w').write('gone')):\n"
        "    try:\n        action()\n    except OSError:\n        pass\n"
        "open('mine.txt', 'w').write('ok')\nos.remove('mine.txt')\n"  # its own dir is writable
        "print(os.getcwd())\n" + GOOD
    )
    res = run(sandbox, program)
    if "fs-ro" not in res.isolation and os.geteuid() != 0:
        pytest.skip(f"no read-only mount namespace here (isolation: {res.isolation}); "
                    "the program runs with the user's own file permissions")
    assert res.passed, res.detail
    assert canary.read_text() == "still here"
    workdir = res.stdout.strip()
    assert workdir and not os.path.exists(workdir), "the temporary work dir was not removed"


def test_secrets_in_the_environment_do_not_reach_the_program(sandbox: Sandbox, monkeypatch) -> None:
    secret = "s3cr3t-" + secrets.token_hex(8)
    monkeypatch.setenv("TUNELAB_TEST_SECRET", secret)
    program = (
        "import os\n"
        "assert 'TUNELAB_TEST_SECRET' not in os.environ\n"
        "leaks = []\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        f"        if {secret.encode()!r} in open(f'/proc/{{pid}}/environ', 'rb').read():\n"
        "            leaks.append(pid)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('leaks', leaks)\n" + GOOD
    )
    res = run(sandbox, program)
    assert res.passed, res.detail
    if "proc" in res.isolation:  # else /proc shows the parent's environment to the same user
        assert "leaks []" in res.stdout


def test_network_is_cut(sandbox: Sandbox) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    program = (
        "import socket\n"
        "def f():\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    s.settimeout(2)\n"
        "    try:\n"
        f"        s.connect(('127.0.0.1', {port}))\n"
        "        return 'connected'\n"
        "    except OSError as e:\n"
        "        return 'blocked'\n"
    )
    try:
        res = run(sandbox, program, "def check(c):\n    assert c() == 'blocked'\n")
        if "netns" not in res.isolation:
            pytest.skip(f"no network namespace here (isolation: {res.isolation}): network is not cut")
        assert res.passed, res.detail
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


@pytest.mark.parametrize("program", [
    "import sys\nsys.exit(0)\n" + GOOD,
    GOOD.replace("return x + 1", "import sys; sys.exit(0)"),
    GOOD.replace("return x + 1", "import os; os._exit(0)"),
    GOOD.replace("return x + 1", "import os, signal; os.kill(os.getppid(), signal.SIGKILL); os._exit(0)"),
    "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(0, signal.SIGKILL)\n",
    # Forged results on stdout and on every plausible result fd, then a clean exit.
    "import os\nline = b'{\"nonce\": \"0\", \"event\": \"done\"}\\n'\nprint('passed')\n"
    "for fd in range(1, 64):\n    try:\n        os.write(fd, line)\n    except OSError:\n        pass\n"
    "os._exit(0)\n" + GOOD,
    # Rewriting every JSON record the harness might send into "done", then failing the tests.
    "import json\n_dumps = json.dumps\n"
    "json.dumps = lambda d, *a, **k: _dumps({**d, 'event': 'done'} if isinstance(d, dict) else d, *a, **k)\n"
    "def f(x):\n    return x\n",
], ids=["exit-at-import", "exit-in-call", "os-exit", "kill-parent", "kill-group", "forged-result", "patched-json"])
def test_early_exits_never_pass(sandbox: Sandbox, program: str) -> None:
    res = run(sandbox, program)
    assert not res.passed
    assert res.verdict in ("runtime_error", "failed")


# ---- stdin/stdout programs and parallel runs -------------------------------------------------------


def test_stdio_programs() -> None:
    sb = Sandbox(Limits(timeout_s=4.0, case_timeout_s=1.0), workers=2)
    inputs, expected = ("1 2\n", "3 4\n"), ("3\n", "7\n")
    progs = {
        "a, b = map(int, input().split())\nprint(a + b)\n": "passed",
        "import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))\nraise SystemExit\n": "passed",
        "print(sum(map(int, open(0).read().split())))\nexit(0)\n": "passed",
        "a, b = map(int, input().split())\nprint(a * b)\n": "wrong_answer",
        "import sys\nsys.exit(3)\n": "runtime_error",
        "print(int(input()))\n": "runtime_error",
        "while True:\n    pass\n": "timeout",
        "print(\n": "syntax_error",
    }
    results = sb.run_many([StdioJob(p, inputs, expected) for p in progs])
    for (prog, want), res in zip(progs.items(), results):
        assert res.verdict == want, (prog, res.verdict, res.detail)
    assert results[3].detail.startswith("case 0")
    assert [c["output"] for c in results[0].cases] == ["3\n", "7\n"]


def test_run_many_keeps_order_and_bounds_workers() -> None:
    sb = Sandbox(Limits(timeout_s=3.0), workers=2)
    jobs = [FunctionJob(f"def f(x):\n    return x + {i}\n", CHECK, "f") for i in range(6)]
    results = sb.run_many(jobs)
    assert [r.passed for r in results] == [i == 1 for i in range(6)]


# ---- the child side: which code runs there, and what it imports ----------------------------------


def test_the_child_runs_this_tunelabs_sandbox_code(sandbox: Sandbox) -> None:
    # `-I` hides PYTHONPATH: the child must still import the sandbox the parent imported, not
    # another installed or checked-out tunelab.
    import tunelab.evaluation.sandbox.harness as harness

    program = "import sys\nprint(sys.modules['tunelab.evaluation.sandbox.harness'].__file__)\n"
    res = sandbox.run(StdioJob(program, ("",), (harness.__file__,)))
    assert res.passed, (res.verdict, res.detail)


def test_the_child_side_imports_only_the_standard_library() -> None:
    import subprocess

    import tunelab.evaluation.sandbox.proc as proc

    code = ("import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); "
            "import tunelab.evaluation.sandbox.child; print(' '.join(sorted(set(sys.modules) - before)))")
    new = subprocess.run([sys.executable, "-I", "-B", "-c", code, proc.SOURCE_ROOT], capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    assert "tunelab.evaluation.sandbox.child" in new
    outside = [m for m in new if m.split(".")[0] not in sys.stdlib_module_names
               and m not in ("tunelab", "tunelab.evaluation", "tunelab.evaluation.sandbox")
               and not m.startswith("tunelab.evaluation.sandbox.")]
    assert not outside, outside  # no torch, yaml, pydantic, nor the rest of tunelab


def test_the_child_runs_as_a_module_too(tmp_path: Path) -> None:
    import json
    import subprocess

    ours, theirs = socket.socketpair()
    config = {"isolate": False, "base": str(tmp_path), "hide": []}
    proc = subprocess.Popen([sys.executable, "-B", "-m", "tunelab.evaluation.sandbox.child", str(theirs.fileno()),
                             json.dumps(config)], pass_fds=(theirs.fileno(),))
    theirs.close()
    ours.close()  # end of requests: the server exits cleanly
    assert proc.wait(timeout=60) == 0
