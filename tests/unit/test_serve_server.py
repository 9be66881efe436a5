"""The OpenAI-compatible server on a tiny model with three adapters, over real loopback HTTP.

Every server binds 127.0.0.1 on a free port, runs in a thread, and stops at the end of its
`with` block; every request has a timeout, and the load tests send a fixed number of requests.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

from tunelab.config import LoraConfig, ModelConfig
from tunelab.generation import GenerationSettings, Prompt, TransformersGenerator
from tunelab.models.ref import ModelRef
from tunelab.models.loading import load_base, load_model
from tunelab.models.lora import attach_lora
from tunelab.serve.registry import load_registry
from tunelab.serve.server import ServerThread, ServeSettings

pytestmark = pytest.mark.timeout(120)
for _mod in ("starlette", "uvicorn"):
    pytest.importorskip(_mod, reason="the server needs the serve extra: pip install -e '.[serve]' (make test installs it)")

CHAT = [{"role": "user", "content": "Write a function that adds two numbers."}]
TEXT = "def add(a, b):"


def save_adapter(base_dir: Path, out: Path, seed: int, scale: float = 0.1) -> Path:
    """A LoRA adapter with seeded random B (scale 0: untrained, changes nothing)."""
    model = attach_lora(load_model(ModelConfig(name=str(base_dir)), "cpu"), LoraConfig(r=4))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    model.save_pretrained(out)
    return out


def call(url: str, path: str, body=None, method: str = "POST", headers=None, raw: bytes | None = None,
         timeout: float = 30.0) -> tuple[int, dict[str, str], str]:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    try:
        conn.request(method, u.path + path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


def ok(url: str, path: str, body) -> dict:
    status, _, text = call(url, path, body)
    assert status == 200, text
    return json.loads(text)


def sse(url: str, path: str, body) -> list:
    status, headers, text = call(url, path, {**body, "stream": True})
    assert status == 200 and headers["content-type"].startswith("text/event-stream"), text
    events = [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def chat(model: str, max_tokens: int = 10, **kw) -> dict:
    return {"model": model, "messages": CHAT, "max_tokens": max_tokens, "temperature": 0, **kw}


def completion(model: str, max_tokens: int = 10, **kw) -> dict:
    return {"model": model, "prompt": TEXT, "max_tokens": max_tokens, "temperature": 0, **kw}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_qwen2_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {"a": save_adapter(tiny_qwen2_dir, root / "a", 1), "b": save_adapter(tiny_qwen2_dir, root / "b", 2),
            "zero": save_adapter(tiny_qwen2_dir, root / "zero", 3, scale=0.0)}


@pytest.fixture(scope="module")
def registry(tiny_qwen2_dir, adapters):
    return load_registry(str(tiny_qwen2_dir), [f"{k}={v}" for k, v in adapters.items()], device="cpu")


@pytest.fixture(scope="module")
def server(registry):
    with ServerThread(registry, ServeSettings(port=0, max_queue=64)) as s:
        yield s


@pytest.fixture(scope="module")
def expected(tiny_qwen2_dir, adapters) -> dict[str, dict[str, str]]:
    """Greedy answers of each variant loaded on its own, by the eval layer's generator."""
    out = {}
    for name in ("base", "a", "b"):
        if name == "base":
            model, tok = load_base(ModelConfig(name=str(tiny_qwen2_dir), device="cpu"))
        else:
            model, tok, _ = ModelRef.parse(str(adapters[name])).load(device="cpu")
        gen = TransformersGenerator(model.eval(), tok, batch_size=1)
        chat_text, = gen.generate([Prompt(messages=CHAT)], GenerationSettings(max_new_tokens=10))[0][:1]
        text, = gen.generate([Prompt(text=TEXT)], GenerationSettings(max_new_tokens=10))[0][:1]
        out[name] = {"chat": chat_text, "text": text}
    return out


def test_models_lists_the_base_and_every_adapter_and_flags_one_that_does_nothing(server, registry):
    listed = json.loads(call(server.url, "/models", method="GET")[2])
    ids = [m["id"] for m in listed["data"]]
    assert ids[0] == "base" and {"a", "b", "zero"} <= set(ids)
    cards = {m["id"]: m for m in listed["data"]}
    assert cards["a"]["parent"] == "base" and cards["a"]["tunelab"]["effect"] > 0.01
    assert cards["zero"]["tunelab"]["noop"] is True and cards["a"]["tunelab"]["noop"] is False
    status, _, text = call(server.url, "/models/a", method="GET")
    assert status == 200 and json.loads(text)["id"] == "a"
    # One base model in memory: every adapter lives in the same PEFT model.
    assert set(registry.model.peft_config) == {"adapter0", "adapter1", "adapter2"}


def test_each_model_name_answers_with_its_own_adapter_switched_per_request(server, expected):
    assert len({expected[n]["chat"] for n in expected}) == 3  # the adapters really differ
    for name in ("a", "base", "b", "a", "b", "base"):  # interleaved: no state leaks between switches
        reply = ok(server.url, "/chat/completions", chat(name))
        assert reply["model"] == name and reply["object"] == "chat.completion"
        assert reply["choices"][0]["message"] == {"role": "assistant", "content": expected[name]["chat"]}
        text = ok(server.url, "/completions", completion(name))
        assert text["choices"][0]["text"] == expected[name]["text"]
        assert text["usage"]["completion_tokens"] <= 10 and text["usage"]["prompt_tokens"] > 0


def test_streaming_sends_the_same_answer_in_pieces(server):
    whole = ok(server.url, "/chat/completions", chat("a", 16, logprobs=True, top_logprobs=2))
    chunks = sse(server.url, "/chat/completions", chat("a", 16, logprobs=True, top_logprobs=2,
                                                        stream_options={"include_usage": True}))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    streamed_lp = [t for c in chunks if c["choices"] and c["choices"][0]["logprobs"] for t in c["choices"][0]["logprobs"]["content"]]
    assert streamed_lp == whole["choices"][0]["logprobs"]["content"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == whole["choices"][0]["finish_reason"]
    whole = ok(server.url, "/completions", completion("b", 12))
    chunks = sse(server.url, "/completions", completion("b", 12))
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]


def test_logprobs_usage_n_seed_and_stop(server, expected):
    reply = ok(server.url, "/chat/completions", chat("b", 8, logprobs=True, top_logprobs=3))
    content = reply["choices"][0]["logprobs"]["content"]
    assert len(content) == reply["usage"]["completion_tokens"]
    for t in content:  # greedy: the chosen token is the most likely one
        assert len(t["top_logprobs"]) == 3 and t["top_logprobs"][0]["token"] == t["token"] and t["logprob"] <= 0
    lp = ok(server.url, "/completions", completion("a", 5, logprobs=2))["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"])
    greedy = ok(server.url, "/chat/completions", chat("a", 6, n=3))["choices"]
    assert [c["index"] for c in greedy] == [0, 1, 2] and len({c["message"]["content"] for c in greedy}) == 1
    sampled = {"model": "a", "messages": CHAT, "max_tokens": 8, "temperature": 1.0, "n": 2, "seed": 11}
    first, again = (ok(server.url, "/chat/completions", sampled)["choices"] for _ in range(2))
    assert [c["message"] for c in first] == [c["message"] for c in again]
    full = expected["a"]["text"]
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    cut = ok(server.url, "/completions", completion("a", stop=[stop]))["choices"][0]
    assert cut["text"] == full[: full.index(stop)] and cut["finish_reason"] == "stop"
    multi = ok(server.url, "/completions", {**completion("a"), "prompt": [TEXT, "x = 1"], "n": 2})["choices"]
    assert [c["index"] for c in multi] == [0, 1, 2, 3] and multi[0]["text"] == full


FUZZ: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    ("POST", "/chat/completions", b"{not json", {}),
    ("POST", "/chat/completions", b"", {}),
    ("POST", "/chat/completions", b"\xff\xfe\x00", {}),
    ("POST", "/chat/completions", b"[]", {}),
    ("POST", "/chat/completions", b"null", {}),
    ("POST", "/chat/completions", b"[" * 50_000, {}),
    ("POST", "/chat/completions", json.dumps({"model": "a"}).encode(), {}),
    ("POST", "/chat/completions", json.dumps({"model": "nope", "messages": CHAT}).encode(), {}),
    ("POST", "/chat/completions", json.dumps({"model": "a", "messages": "hi"}).encode(), {}),
    ("POST", "/chat/completions", json.dumps({"model": "a", "messages": [{"role": "user"}] * 2, "n": -1}).encode(), {}),
    ("POST", "/chat/completions", json.dumps(chat("a", temperature=-1)).encode(), {}),
    ("POST", "/chat/completions", json.dumps(chat("a", top_p=7)).encode(), {}),
    ("POST", "/chat/completions", json.dumps(chat("a", max_tokens=10**9)).encode(), {}),
    ("POST", "/chat/completions", json.dumps(chat("a", logit_bias={"x": 1})).encode(), {}),
    ("POST", "/chat/completions", json.dumps(chat("a", stop=[1, 2])).encode(), {}),
    ("POST", "/chat/completions", json.dumps(chat("a", response_format={"type": "json_object"})).encode(), {}),
    ("POST", "/chat/completions", json.dumps({**chat("a"), "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}).encode(), {}),
    ("POST", "/chat/completions", b'{"model": "a", "messages": [], "temperature": NaN}', {}),
    ("POST", "/completions", json.dumps(completion("a", prompt=[10**9])).encode(), {}),
    ("POST", "/completions", json.dumps(completion("a", prompt=[-1])).encode(), {}),
    ("POST", "/completions", json.dumps(completion("a", prompt=[])).encode(), {}),
    ("POST", "/completions", json.dumps(completion("a", prompt=["x"] * 100)).encode(), {}),
    ("POST", "/completions", json.dumps(completion("a", prompt="x " * 3000)).encode(), {}),
    ("POST", "/completions", b"x" * (2 << 20), {}),
    ("GET", "/chat/completions", None, {}),
    ("POST", "/nowhere", b"{}", {}),
    ("DELETE", "/models", None, {}),
]


def test_malformed_requests_get_4xx_openai_errors_and_the_server_keeps_serving(server, expected):
    for method, path, raw, headers in FUZZ:
        status, _, text = call(server.url, path, method=method, raw=raw, headers=headers)
        assert 400 <= status < 500, (path, raw[:80] if raw else raw, status, text)
        err = json.loads(text)["error"]
        assert isinstance(err["message"], str) and err["message"] and "type" in err and "code" in err
    too_long = json.loads(call(server.url, "/completions", completion("a", prompt="x " * 3000))[2])["error"]
    assert too_long["code"] == "context_length_exceeded"
    assert json.loads(call(server.url, "/completions", completion("nope"))[2])["error"]["code"] == "model_not_found"
    assert ok(server.url, "/chat/completions", chat("a"))["choices"][0]["message"]["content"] == expected["a"]["chat"]
    assert server.app.worker.stats["errors"] == 0


def _open_stream(url: str, body: dict) -> socket.socket:
    """Send a request by hand and read until the first bytes of the answer arrive."""
    u = urlparse(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=10)
    data = json.dumps(body).encode()
    sock.sendall(f"POST {u.path}/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def _wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_client_that_hangs_up_mid_answer_cancels_it_and_the_server_carries_on(server, expected):
    stats = server.app.worker.stats
    before = stats["cancelled"]
    long = {"model": "b", "messages": CHAT, "max_tokens": 1900, "temperature": 1.0, "seed": 0,
            "logit_bias": {str(i): -100 for i in (0, 1, 2)}}  # no end token: it would run to 1900
    sock = _open_stream(server.url, {**long, "stream": True})
    assert b"data: " in sock.recv(4096) + sock.recv(4096)
    sock.close()  # mid-stream
    _wait_for(lambda: stats["cancelled"] == before + 1)
    sock = _open_stream(server.url, long)  # not streamed: the hang-up is noticed too
    time.sleep(0.1)
    sock.close()
    _wait_for(lambda: stats["cancelled"] == before + 2)
    assert ok(server.url, "/chat/completions", chat("base"))["choices"][0]["message"]["content"] == expected["base"]["chat"]


def test_32_concurrent_clients_all_get_correct_answers(server, expected):
    jobs = [(("a", "b", "base")[i % 3], i % 2 == 0) for i in range(32)]

    def one(job):
        name, is_chat = job
        if is_chat:
            return ok(server.url, "/chat/completions", chat(name))["choices"][0]["message"]["content"]
        return ok(server.url, "/completions", completion(name))["choices"][0]["text"]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(one, jobs))
    elapsed = time.perf_counter() - t0
    for (name, is_chat), answer in zip(jobs, answers):
        assert answer == expected[name]["chat" if is_chat else "text"]
    print(f"32 concurrent requests (10 tokens each) in {elapsed:.2f} s = {32 / elapsed:.1f} requests/s")


def _answer(url: str, body: dict) -> list[tuple[str, str]]:
    """(text, finish_reason) of each choice, streamed or not."""
    chat_ = "messages" in body
    path = "/chat/completions" if chat_ else "/completions"
    if not body.get("stream"):
        choices = ok(url, path, body)["choices"]
        return [(c["message"]["content"] if chat_ else c["text"], c["finish_reason"]) for c in choices]
    out: dict[int, list[str]] = {}
    finish: dict[int, str] = {}
    for c in sse(url, path, body):
        for ch in c["choices"]:
            piece = ch["delta"].get("content", "") if chat_ else ch["text"]
            out.setdefault(ch["index"], []).append(piece)
            if ch["finish_reason"]:
                finish[ch["index"]] = ch["finish_reason"]
    return [("".join(out[i]), finish[i]) for i in sorted(out)]


def test_requests_waiting_together_are_batched_per_adapter_and_answer_as_one_at_a_time(registry):
    prompts = [TEXT, "x = 1", "import os\nimport sys\n\nclass Parser:\n    def __init__(self, text):", "for"]
    messages = [CHAT, [{"role": "user", "content": "Hi"}],
                [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sort a list of numbers."}]]
    bodies = []
    for i in range(14):
        name = ("a", "b", "base")[i % 3]
        if i % 2:
            body = {"model": name, "messages": messages[i % 3], "max_tokens": 3 + 2 * i, "temperature": 0}
        else:
            body = {"model": name, "prompt": prompts[i % 4], "max_tokens": 3 + 2 * i, "temperature": 0}
        bodies.append({**body, "stream": i % 4 in (1, 2)})
    bodies[6]["n"] = 2  # greedy: decoded once, sent to both choices
    bodies[7] |= {"temperature": 1.0, "seed": 3, "n": 2}
    bodies[8]["stop"] = ["\n"]
    with ServerThread(registry, ServeSettings(port=0, max_batch_size=1)) as s:
        alone = [_answer(s.url, b) for b in bodies]
    from tunelab.serve.worker import Job

    release = threading.Event()

    def hold(cancelled):  # keeps the worker busy until every request is queued: batching is certain
        release.wait(30)
        yield from ()

    with ServerThread(registry, ServeSettings(port=0, max_queue=32, max_batch_size=16)) as s:
        worker = s.app.worker
        worker.submit(Job(run=hold, emit=lambda event: None))
        _wait_for(lambda: worker.queued == 0 and worker.stats["submitted"] == 1)
        with ThreadPoolExecutor(len(bodies)) as pool:
            futures = [pool.submit(_answer, s.url, b) for b in bodies]
            _wait_for(lambda: worker.queued == len(bodies))
            release.set()
            together = [f.result(60) for f in futures]
        stats = dict(worker.stats)
    assert together == alone
    assert len({a for a in alone for a in a}) > 10  # the answers really differ from each other
    assert stats["batches"] == 3 and stats["batched_rows"] == len(bodies) + 1  # one batch per adapter
    assert stats["completed"] == len(bodies) + 1 and stats["errors"] == 0


def test_over_the_queue_limit_requests_get_429_at_once_never_a_hang(registry):
    body = {"model": "a", "messages": CHAT, "max_tokens": 150, "temperature": 1.0, "seed": 1,
            "logit_bias": {"0": -100, "2": -100}}
    with ServerThread(registry, ServeSettings(port=0, max_queue=2)) as s:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda _: call(s.url, "/chat/completions", body, timeout=60), range(16)))
        assert s.app.worker.stats["errors"] == 0
    statuses = [r[0] for r in results]
    assert set(statuses) <= {200, 429} and statuses.count(429) >= 1 and statuses.count(200) >= 3, statuses
    answers = {json.loads(t)["choices"][0]["message"]["content"] for st, _, t in results if st == 200}
    assert len(answers) == 1  # every accepted request got the full, same (seeded) answer
    for status, headers, text in results:
        if status == 429:
            assert headers["retry-after"] == "1" and json.loads(text)["error"]["code"] == "overloaded"


def test_a_request_that_waits_too_long_in_the_queue_gets_503(registry):
    from tunelab.serve.worker import Job

    release = threading.Event()

    def hold(cancelled):  # a job that keeps the worker busy until released: no timing guesswork
        release.wait(30)
        yield from ()

    with ServerThread(registry, ServeSettings(port=0, max_queue=4, queue_timeout_s=0.05)) as s:
        worker = s.app.worker
        worker.submit(Job(run=hold, emit=lambda event: None))
        _wait_for(lambda: worker.queued == 0 and worker.stats["submitted"] == 1)  # the worker holds it
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(call, s.url, "/chat/completions", chat("a"))
            _wait_for(lambda: worker.queued == 1)
            time.sleep(0.2)  # longer than queue_timeout_s
            release.set()
            status, _, text = answer.result(30)
    assert status == 503 and "queue" in json.loads(text)["error"]["message"]
    assert worker.stats["expired"] == 1


def test_an_api_key_is_required_when_set(registry):
    with ServerThread(registry, ServeSettings(port=0, api_key="s3cret")) as s:
        assert call(s.url, "/models", method="GET")[0] == 401
        status, _, text = call(s.url, "/chat/completions", chat("a"), headers={"Authorization": "Bearer wrong"})
        assert status == 401 and json.loads(text)["error"]["code"] == "invalid_api_key"
        assert call(s.url, "/models", method="GET", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert call(s.url.replace("/v1", ""), "/health", method="GET")[0] == 200


def test_model_names_and_refs_are_checked_with_clear_errors(tiny_qwen2_dir, adapters, tmp_path):
    from tunelab.errors import ModelError
    from tunelab.serve.registry import parse_adapter

    assert parse_adapter("final") == ("final", "final") and parse_adapter("step-20") == ("step-20", "step-20")
    assert parse_adapter("x=/runs/a/final") == ("x", "/runs/a/final") and parse_adapter("/runs/a/") == ("a", "/runs/a/")
    with pytest.raises(ModelError, match="needs --run-dir"):
        load_registry("final")
    with pytest.raises(ModelError, match="two served models are named 'a'"):
        load_registry(str(tiny_qwen2_dir), [f"a={adapters['a']}", f"a={adapters['b']}"], device="cpu")
    with pytest.raises(ModelError, match="not a PEFT adapter folder"):
        load_registry(str(tiny_qwen2_dir), [f"x={tmp_path}"], device="cpu")
