"""The OpenAI-compatible backend against a tiny local http.server (127.0.0.1, bounded)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tunelab.errors import EvalError
from tunelab.generation import GenerationSettings, OpenAIGenerator, Prompt

pytestmark = pytest.mark.timeout(30)


class FakeServer:
    """Answers chat and text completions; fails the first request of each prompt with 503."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.seen: dict[str, int] = {}
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.bodies.append(body)
                    server.auth.append(self.headers.get("Authorization"))
                try:
                    time.sleep(0.05)  # long enough for concurrent requests to overlap
                    key = json.dumps(body.get("messages") or body.get("prompt"))
                    with server.lock:
                        server.seen[key] = server.seen.get(key, 0) + 1
                        first = server.seen[key] == 1
                    if body.get("model") == "missing":
                        reply = (404, {"error": {"message": "model 'missing' not found"}}, None)
                    elif first:
                        reply = (503, {"error": "busy"}, {"Retry-After": "0"})
                    elif self.path.endswith("/chat/completions"):
                        text = "echo " + body["messages"][-1]["content"] + " STOP tail"
                        choices = [{"index": i, "message": {"role": "assistant", "content": f"{text} {i}"}}
                                   for i in range(body["n"])]
                        reply = (200, {"choices": choices, "usage": {"completion_tokens": 3}}, None)
                    else:
                        choices = [{"index": 0, "text": body["prompt"] + " done"}]  # ignores n > 1
                        reply = (200, {"choices": choices, "usage": {"completion_tokens": 3}}, None)
                finally:
                    # Out of flight before the reply is sent: once the client has it, it may
                    # send its next request at once, and that one must not count as a third.
                    with server.lock:
                        server.in_flight -= 1
                self._reply(*reply)

            def _reply(self, code, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
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


def test_chat_requests_retry_respect_concurrency_and_send_the_key(monkeypatch):
    monkeypatch.setenv("TUNELAB_TEST_KEY", "sk-test")
    prompts = [Prompt(messages=[{"role": "user", "content": f"q{i}"}]) for i in range(6)]
    with FakeServer() as srv:
        gen = OpenAIGenerator(srv.url, "tiny", api_key_env="TUNELAB_TEST_KEY", max_concurrency=2,
                              max_retries=2, backoff_s=0.01, timeout_s=5)
        out = gen.generate(prompts, GenerationSettings(max_new_tokens=5, n=2, stop=(" STOP",)))
    assert out == [[f"echo q{i}", f"echo q{i}"] for i in range(6)]  # cut before the stop, in order
    assert srv.max_in_flight == 2
    assert gen.stats["retries"] == 6 and gen.stats["requests"] == 12
    assert set(srv.auth) == {"Bearer sk-test"}
    body = srv.bodies[-1]
    assert body["model"] == "tiny" and body["max_tokens"] == 5 and body["stop"] == [" STOP"] and body["n"] == 2


def test_text_prompts_use_completions_and_servers_that_ignore_n_are_asked_again():
    with FakeServer() as srv:
        gen = OpenAIGenerator(srv.url, "tiny", api_key_env=None, max_retries=1, backoff_s=0.01)
        out = gen.generate([Prompt(text="def f():")], GenerationSettings(n=3, temperature=0.8, seed=5))
    assert out == [["def f(): done"] * 3]
    assert srv.auth[0] is None
    assert [b["n"] for b in srv.bodies[1:]] == [3, 2, 1]  # after the 503: ask for what is missing


def test_client_errors_fail_fast_with_the_server_message():
    with FakeServer() as srv:
        gen = OpenAIGenerator(srv.url, "missing", max_retries=3, backoff_s=0.01)
        with pytest.raises(EvalError, match="HTTP 404.*not found"):
            gen.generate([Prompt(text="x")], GenerationSettings())
    assert len(srv.bodies) == 1


def test_unreachable_server_gives_up_after_the_retries():
    gen = OpenAIGenerator("http://127.0.0.1:9/v1", "tiny", max_retries=1, backoff_s=0.01, timeout_s=2)
    with pytest.raises(EvalError, match="no answer after 2 tries"):
        gen.generate([Prompt(text="x")], GenerationSettings())
