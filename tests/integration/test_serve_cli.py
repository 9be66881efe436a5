"""`tunelab serve` as a process: it starts, answers, and on SIGTERM finishes the answer in flight,
refuses new connections and exits 0. Loopback only; every wait is bounded."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

from tunelab.config import LoraConfig, ModelConfig
from tunelab.models.loading import load_model
from tunelab.models.lora import attach_lora

pytestmark = pytest.mark.timeout(120)
for _mod in ("starlette", "uvicorn"):
    pytest.importorskip(_mod, reason="the server needs the serve extra: pip install -e '.[serve]' (make test installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


@pytest.fixture
def adapter(tmp_path, tiny_qwen2_dir):
    model = attach_lora(load_model(ModelConfig(name=str(tiny_qwen2_dir)), "cpu"), LoraConfig(r=4))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.05)
    model.save_pretrained(tmp_path / "tuned")
    return tmp_path / "tuned"


def test_serve_answers_then_shuts_down_gracefully_on_sigterm(tiny_qwen2_dir, adapter):
    port = _free_port()
    cmd = [sys.executable, "-m", "tunelab.cli", "serve", "--model", str(tiny_qwen2_dir), "--adapter", f"tuned={adapter}",
           "--port", str(port), "--device", "cpu", "--max-batch-size", "4", "--max-batch-wait-ms", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "TUNELAB_API_KEY": ""})
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded wait for the model to load and the port to open
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "server did not start"
            try:
                if _get(port, "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        models = json.loads(_get(port, "/v1/models")[1])
        assert [m["id"] for m in models["data"]] == ["base", str(tiny_qwen2_dir), "tuned"]

        # A long streamed answer is in flight when SIGTERM arrives: it must still complete.
        body = json.dumps({"model": "tuned", "prompt": "x", "max_tokens": 800, "temperature": 0, "stream": True,
                           "logit_bias": {"0": -100}}).encode()
        started, result = threading.Event(), {}

        def stream() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            first = resp.readline()
            started.set()
            result["text"] = (first + resp.read()).decode()
            conn.close()

        client = threading.Thread(target=stream)
        client.start()
        assert started.wait(30)
        proc.send_signal(signal.SIGTERM)
        client.join(60)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    events = [x[len("data: "):] for x in result["text"].split("\n") if x.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["choices"][0]["finish_reason"] == "length"
    assert "serving 3 model(s)" in err and "stopped" in err
    with pytest.raises(OSError):
        _get(port, "/health")
