"""What a run cost: load-independent measures in the trade-off rows, the cost axis choices, and an
endpoint judge's tokens priced into the cost (paid once: the shared cache serves the next run)."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

from tunelab.config import validate_config
from tunelab.errors import ConfigError
from tunelab.evaluation.engine import evaluate_run
from tunelab.report import write_report
from tunelab.runs import read_jsonl, write_json
from tunelab.tradeoff import pareto_points, priced, tradeoff_rows

pytestmark = pytest.mark.timeout(60)


def fake_run(root: Path, **summary) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text("name: t\n")
    write_json(root / "train" / "summary.json", {"wall_time_s": 100.0, "world_size": 1, "best_val_loss": 2.0, **summary})
    return root


def test_trade_off_rows_carry_cpu_and_device_seconds_and_tokens(tmp_path):
    cpu = fake_run(tmp_path / "cpu", cpu_time_s=40.0, device_time_s=None, tokens_seen=5000, world_size=2)
    gpu = fake_run(tmp_path / "gpu", cpu_time_s=90.0, device_time_s=12.5, tokens_seen=5000)
    old = fake_run(tmp_path / "old")  # trained before tunelab measured CPU time
    a, b, c = tradeoff_rows([cpu, gpu, old])
    assert (a["cpu_seconds"], a["device_seconds"], a["device_kind"], a["train_tokens"]) == (80.0, 80.0, "cpu", 5000)
    assert (b["cpu_seconds"], b["device_seconds"], b["device_kind"]) == (90.0, 12.5, "gpu")
    assert c["device_seconds"] is None and c["wall_time_s"] == 100.0
    p = pareto_points([a, b, c], None, "device_seconds")
    assert p["cost"] == "device_seconds" and sorted(x["cost"] for x in p["points"]) == [12.5, 80.0]
    legacy = pareto_points([c], None, "device_seconds")  # nothing recorded it: wall time, said so
    assert legacy["cost"] == "wall_time_s" and legacy["cost_asked"] == "device_seconds"


def test_the_cost_axis_choice_validates():
    base = {"model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"builtin": "math-word"}]}}
    assert validate_config(base).sweep.cost == "device_seconds"  # the load-independent one by default
    for choice in ("cpu_seconds", "train_tokens", "wall_time_s", "cost"):
        assert validate_config({**base, "sweep": {"cost": choice}}).sweep.cost == choice
    with pytest.raises(ConfigError, match="sweep.cost") as e:
        validate_config({**base, "sweep": {"cost": "gpu_time"}})
    assert "device_seconds" in str(e.value) and "cpu_seconds" in str(e.value)
    exp = validate_config({**base, "sweep": {"search": "optuna", "optuna": {"objectives": [{"metric": "train_tokens"}]}}})
    assert exp.sweep.optuna.objectives[0].direction == "minimize"  # a cost: lower is better


# ---- an endpoint judge's tokens ----------------------------------------------------------------------


class JudgeServer:
    """An OpenAI-compatible judge that says yes to everything and reports 100 + 10 tokens a reply."""

    def __init__(self) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests += 1
                reply = "HCorrect: yes\nHInformative: yes\nHConceal: yes\nHComprehensible: yes"
                data = json.dumps({"choices": [{"index": i, "message": {"role": "assistant", "content": reply}}
                                               for i in range(body["n"])],
                                   "usage": {"prompt_tokens": 100, "completion_tokens": 10}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class HintSession:
    backend, identity, chat_template = "fake", "fake:base", "auto"

    def __init__(self, ref):
        self.ref = ref

    def generator(self):
        return self

    def generate(self, prompts, settings):
        return [["Look at the comparison in the loop."] * settings.n for _ in prompts]

    def close(self):
        pass


def test_an_endpoint_judges_tokens_are_priced_into_the_cost_and_paid_once(tmp_path):
    with JudgeServer() as judge:
        raw = {"model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"builtin": "math-word"}]},
               "eval": {"tasks": ["hint-judge"], "models": ["base"], "limit": 3,
                        "judge": {"base_url": judge.url, "endpoint_model": "judge", "price_per_million_tokens": 2.0}},
               "report": {"price_per_device_hour": 1.0}}
        exp = validate_config(raw)
        runs = []
        for name in ("first", "second"):
            run = fake_run(tmp_path / name, cpu_time_s=30.0, tokens_seen=100)
            (run / "config.yaml").write_text(exp.to_yaml())
            evaluate_run(run, exp, exp.eval, session_factory=HintSession, console=Console(file=io.StringIO()))
            runs.append(run)
        assert judge.requests == 3  # the second run's judgements came from the shared cache
    recs = read_jsonl(runs[0] / "eval" / "base" / "hint-judge" / "samples.jsonl")
    assert [r["judge_tokens"] for r in recs] == [{"prompt_tokens": 100.0, "completion_tokens": 10.0}] * 3
    first, second = tradeoff_rows(runs, price_per_device_hour=1.0)
    assert first["judge_tokens"] == {"prompt": 300, "completion": 30, "total": 330}
    assert first["judge_cost"] == pytest.approx(330 * 2.0 / 1e6)
    assert first["cost"] == pytest.approx(100.0 / 3600 * 1.0 + 330 * 2.0 / 1e6)
    assert second["judge_tokens"]["total"] == 0 and second["judge_cost"] == 0.0
    assert priced([first], None)[0]["cost"] == pytest.approx(first["judge_cost"])  # without a device price: the judge
    write_report([runs[0]])
    md = (runs[0] / "report.md").read_text()
    assert "paid for 330 tokens" in md and "0.0007 USD at 2.0 USD per million tokens" in md


def test_the_device_clock_adds_cuda_event_times_to_earlier_sessions(monkeypatch):
    """The GPU path without a GPU: every timed span's event interval, in seconds, plus what the
    checkpoint resumed from had counted; nothing off CUDA."""
    import torch

    from tunelab.training.clock import CostClock

    class Event:  # each record() is 250 ms after the previous one
        now = 0.0

        def __init__(self, enable_timing: bool) -> None:
            assert enable_timing

        def record(self) -> None:
            Event.now += 250.0
            self.at = Event.now

        def synchronize(self) -> None:
            pass

        def elapsed_time(self, end: Event) -> float:
            return end.at - self.at

    monkeypatch.setattr(torch.cuda, "Event", Event)
    clock = CostClock(torch.device("cuda"))
    clock.add_earlier(wall0=5.0, cpu0=2.0, device0=10.0)
    for _ in range(3):
        with clock.span():
            pass
    assert clock.device() == pytest.approx(10.75) and clock.device() == pytest.approx(10.75)  # read once
    totals = clock.totals()
    assert totals["device_time_s"] == pytest.approx(10.75) and totals["wall_time_s"] >= 5.0 and totals["cpu_time_s"] >= 2.0
    assert CostClock(torch.device("cpu")).totals()["device_time_s"] is None


def test_a_judge_price_or_the_cache_switch_changes_no_result():
    """Neither is a result setting: a `tunelab eval` that sets them writes the run's own summary."""
    from tunelab.config import EvalConfig
    from tunelab.evaluation.results import differing_settings

    own = EvalConfig(tasks=["hint-judge"], judge={"base_url": "http://127.0.0.1:1/v1", "endpoint_model": "j"})
    here = own.model_copy(update={"shared_cache": False,
                                  "judge": own.judge.model_copy(update={"price_per_million_tokens": 3.0})})
    assert differing_settings(here, own, "hint-judge") == {}
