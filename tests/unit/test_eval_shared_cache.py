"""The shared eval cache: a base computed by one run serves the next; any change recomputes; a
broken entry is rewritten; concurrent writers leave a valid entry; variants on one set of
weights load it once."""

from __future__ import annotations

import io
import json
import multiprocessing
from pathlib import Path

import pytest
from rich.console import Console

from tunelab.config import EvalConfig, validate_config
from tunelab.evaluation.cache import SharedCache
from tunelab.evaluation.engine import evaluate_run
from tunelab.generation.transformers_backend import TransformersGenerator
from tunelab.runs import read_json, read_jsonl

EXP = validate_config({"model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"builtin": "compose"}]}})


def eval_cfg(**kw) -> EvalConfig:
    base = {"tasks": ["compose"], "models": ["base"], "limit": 2, "max_new_tokens": 6, "batch_size": 2,
            "allow_code_execution": True}
    return EvalConfig(**{**base, **kw})


@pytest.fixture
def generated(monkeypatch) -> list[int]:
    """Prompts the real transformers generator was asked, appended per call."""
    calls: list[int] = []
    real = TransformersGenerator.generate

    def counting(self, prompts, settings):
        calls.append(len(prompts))
        return real(self, prompts, settings)

    monkeypatch.setattr(TransformersGenerator, "generate", counting)
    return calls


def evaluate(tmp_path: Path, name: str, cfg: EvalConfig) -> tuple[dict, str]:
    run = tmp_path / name
    run.mkdir(exist_ok=True)
    out = io.StringIO()
    results = evaluate_run(run, EXP, cfg, console=Console(file=out, width=200))
    return results, out.getvalue()


def test_a_second_run_on_the_same_base_generates_nothing_and_gets_the_same_results(tmp_path, generated, _eval_cache):
    first, log1 = evaluate(tmp_path, "run1", eval_cfg())
    assert sum(generated) == 2 and "shared cache" not in log1
    entries = [d for d in _eval_cache.iterdir() if d.is_dir()]
    assert len(entries) == 1 and len(list(entries[0].glob("*.json"))) == 3  # two records + entry.json
    assert read_json(entries[0] / "entry.json")["task"] == "compose"

    second, log2 = evaluate(tmp_path, "run2", eval_cfg())
    assert sum(generated) == 2  # nothing generated again
    assert "base on compose: 2 of 2 items from the shared cache" in log2
    a, b = first["base"]["compose"], second["base"]["compose"]
    assert a["metrics"] == b["metrics"] and a["fingerprint"] == b["fingerprint"] and b["shared_cache"] == 2
    # The run directory holds its own copy of every record: the report reads nothing else.
    own = read_jsonl(tmp_path / "run2" / "eval" / "base" / "compose" / "samples.jsonl")
    theirs = read_jsonl(tmp_path / "run1" / "eval" / "base" / "compose" / "samples.jsonl")
    assert [r["generations"] for r in own] == [r["generations"] for r in theirs]
    assert all(r["shared_cache"] == entries[0].name for r in own)
    assert (tmp_path / "run2" / "eval" / "base" / "compose" / "summary.json").is_file()


def test_a_changed_setting_or_task_option_is_computed_again(tmp_path, generated):
    evaluate(tmp_path, "run1", eval_cfg())
    assert sum(generated) == 2
    _, log = evaluate(tmp_path, "run2", eval_cfg(max_new_tokens=5))  # a generation setting
    assert sum(generated) == 4 and "shared cache" not in log
    evaluate(tmp_path, "run3", eval_cfg(task_options={"compose": {"timeout_s": 5.0}}))  # a task option
    assert sum(generated) == 6
    evaluate(tmp_path, "run4", eval_cfg(limit=3))  # one more item: only that one is new
    assert sum(generated) == 7


def test_the_setting_and_the_environment_switch_the_cache_off(tmp_path, generated, monkeypatch, _eval_cache):
    evaluate(tmp_path, "run1", eval_cfg(shared_cache=False))
    assert not any(_eval_cache.iterdir())
    evaluate(tmp_path, "run2", eval_cfg())
    monkeypatch.setenv("TUNELAB_SHARED_CACHE", "0")
    evaluate(tmp_path, "run3", eval_cfg())
    assert sum(generated) == 6  # each run generated its own


def test_a_corrupted_or_partial_entry_is_ignored_and_rewritten(tmp_path, generated, _eval_cache):
    evaluate(tmp_path, "run1", eval_cfg(limit=3))
    assert sum(generated) == 3
    (entry,) = [d for d in _eval_cache.iterdir() if d.is_dir()]
    records = sorted(p for p in entry.glob("*.json") if p.name != "entry.json")
    good = records[0].read_text()
    records[0].write_text(good[: len(good) // 2])  # torn
    records[1].write_text(json.dumps({**json.loads(records[1].read_text()), "generations": None}))  # garbled
    _, log = evaluate(tmp_path, "run2", eval_cfg(limit=3))
    assert sum(generated) == 5  # the two broken records were generated again
    assert "1 of 3 items from the shared cache" in log
    assert json.loads(records[0].read_text())["generations"] is not None  # rewritten whole
    assert isinstance(json.loads(records[1].read_text())["generations"], list)
    evaluate(tmp_path, "run3", eval_cfg(limit=3))
    assert sum(generated) == 5


class _Task:
    name, executes_code = "toy", False


class _Session:
    backend, identity, chat_template = "fake", "fake:base", "auto"


def _write_many(root: str, writer: int, start, n: int) -> None:
    entry = SharedCache(Path(root)).entry("fp", _Task(), _Session())
    start.wait()
    for rep in range(5):
        for i in range(n):
            # Big records (longer than a pipe buffer) so a torn write would show.
            entry.store({"id": f"s{i}", "item": f"item{i}", "fingerprint": "fp", "generations": [f"w{writer}" * 4000],
                         "scores": [{"writer": writer}], "values": {"v": float(writer)}, "extra": {"rep": rep},
                         "timing": {"generate_s": 0.1, "score_s": 0.0}})


def test_concurrent_writers_of_one_entry_leave_a_valid_entry(tmp_path):
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    start = ctx.Barrier(4)
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), w, start, 20)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    entry = SharedCache(tmp_path).entry("fp", _Task(), _Session())
    got = entry.load({f"s{i}": f"item{i}" for i in range(20)})
    assert len(got) == 20
    for rec in got.values():  # each record is one writer's whole copy
        w = rec["scores"][0]["writer"]
        assert rec["generations"] == [f"w{w}" * 4000] and rec["values"] == {"v": float(w)}
    assert not list(entry.dir.glob(".*.tmp"))  # no temporary file left behind


# ---- one load per set of weights -------------------------------------------------------------------


class _CountingSession:
    def __init__(self, ref: str, loads: list[str]):
        self.ref, self.backend, self.identity, self.loads = ref, "fake", f"fake:{ref}", loads
        self._gen = None

    def generator(self):
        if self._gen is None:
            self.loads.append(self.ref)
            self._gen = self
        return self

    def generate(self, prompts, settings):
        return [["#### 0"] * settings.n for _ in prompts]

    def close(self):
        pass


def test_variants_on_the_same_weights_load_them_once(tmp_path):
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "adapter_config.json").write_text("{}")
    loads: list[str] = []
    cfg = EvalConfig(tasks=["math-word"], models=["base", "final", "base+cot"], limit=2, shared_cache=False)
    res = evaluate_run(run, EXP, cfg, session_factory=lambda ref: _CountingSession(ref, loads),
                       console=Console(file=io.StringIO()))
    assert sorted(loads) == ["base", "final"]  # not base, final, base again
    assert list(res) == ["base", "final", "base+cot"]  # results in the order asked for
    assert res["base+cot"]["math-word"]["prompt"]["variant"] == "chain-of-thought"


class _HeldSession(_CountingSession):
    """Generation counts its prompts and returns only once `release` is set (by the other run
    finding the entry locked): the two runs overlap whatever the machine's load."""

    def __init__(self, ref: str, prompts: list[int], release):
        super().__init__(ref, [])
        self.prompts, self.release = prompts, release

    def generate(self, prompts, settings):
        self.prompts.append(len(prompts))
        self.release.wait(10)
        return super().generate(prompts, settings)


def test_two_runs_evaluating_the_same_base_at_once_compute_it_once(tmp_path, _eval_cache, caplog, monkeypatch):
    # Two sweep trials on one base, started together: the second waits for the first's records
    # instead of generating the same ones beside it.
    import fcntl
    import threading

    release = threading.Event()
    real_flock = fcntl.flock

    def flock(fd, op):
        try:
            return real_flock(fd, op)
        except BlockingIOError:
            release.set()  # the second run found the entry held: the first may finish
            raise

    monkeypatch.setattr(fcntl, "flock", flock)
    prompts: list[int] = []
    cfg = EvalConfig(tasks=["math-word"], models=["base"], limit=2)
    results = {}

    def run(name: str) -> None:
        (tmp_path / name).mkdir()
        results[name] = evaluate_run(tmp_path / name, EXP, cfg,
                                     session_factory=lambda ref: _HeldSession(ref, prompts, release),
                                     console=Console(file=io.StringIO()))

    threads = [threading.Thread(target=run, args=(name,)) for name in ("trial-1", "trial-2")]
    with caplog.at_level("WARNING", logger="tunelab.evaluation.cache"):
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert release.is_set() and sum(prompts) == 2  # not 4
    a, b = results["trial-1"]["base"]["math-word"], results["trial-2"]["base"]["math-word"]
    assert a["metrics"] == b["metrics"] and {a.get("shared_cache", 0), b.get("shared_cache", 0)} == {0, 2}
    assert "another evaluation is computing the same records" in caplog.text and "base on math-word" in caplog.text


def test_a_holder_that_hangs_is_given_up_on_after_the_wait(tmp_path, caplog):
    import time

    entry = SharedCache(tmp_path).entry("fp", _Task(), _Session())
    with entry.claim("first"), caplog.at_level("WARNING", logger="tunelab.evaluation.cache"):
        t0 = time.monotonic()
        with entry.claim("second", wait_s=0.5):  # computes on its own instead of waiting forever
            waited = time.monotonic() - t0
    assert 0.5 <= waited < 5
    assert "second: the other evaluation still holds" in caplog.text
    with entry.claim("third", wait_s=0.0):  # released: taken at once
        pass
    assert "third" not in caplog.text
