"""Clients against `tunelab serve`: the eval layer's OpenAI backend and judge, the official `openai`
client, and a whole `tunelab eval` run through the server (it must score exactly what in-process
evaluation scores). Loopback only; every server stops at the end of its test module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tunelab.errors import EvalError
from tunelab.generation import GenerationSettings, OpenAIGenerator, Prompt, TransformersGenerator
from tunelab.models.ref import ModelRef
from tunelab.serve.registry import load_registry
from tunelab.serve.server import ServerThread, ServeSettings

pytestmark = pytest.mark.timeout(180)
for _mod in ("starlette", "uvicorn"):
    pytest.importorskip(_mod, reason="the server needs the serve extra: pip install -e '.[serve]' (make test installs it)")
KEY_ENV = "TUNELAB_TEST_SERVE_KEY"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_qwen2_dir, tiny_adapter) -> Path:
    """A run directory as training leaves it: config.yaml, a checkpoint and final."""
    run = tmp_path_factory.mktemp("serve-run") / "run"
    (run / "train").mkdir(parents=True)
    config = {"name": "t", "model": {"name": str(tiny_qwen2_dir), "device": "cpu"},
              "data": {"sources": [{"builtin": "anything"}]}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    tiny_adapter(tiny_qwen2_dir, run / "checkpoints" / "step-2", 2)
    tiny_adapter(tiny_qwen2_dir, run / "final", 7)
    return run


@pytest.fixture(scope="module")
def server(run_dir):
    registry = load_registry(run_dir=run_dir, device="cpu")  # every variant of the run
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, "test-key")
        with ServerThread(registry, ServeSettings(port=0, api_key="test-key")) as s:
            yield s


def test_the_eval_backend_gets_the_answers_of_in_process_generation(server, run_dir):
    model, tok, _ = ModelRef.parse("final", run_dir).load()
    local = TransformersGenerator(model, tok, batch_size=2)
    remote = OpenAIGenerator(server.url, "final", api_key_env=KEY_ENV, max_concurrency=3, max_retries=0)
    prompts = [Prompt(messages=[{"role": "user", "content": "Add 2 and 3."}]), Prompt(text="def f(x):"),
               Prompt(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])]
    settings = GenerationSettings(max_new_tokens=12, n=2)
    assert remote.generate(prompts, settings) == local.generate(prompts, settings)
    with pytest.raises(EvalError, match="HTTP 404"):
        OpenAIGenerator(server.url, "missing", api_key_env=KEY_ENV, max_retries=0).generate(prompts[:1], settings)
    with pytest.raises(EvalError, match="HTTP 401"):
        OpenAIGenerator(server.url, "final", api_key_env=None, max_retries=0).generate(prompts[:1], settings)


def test_the_official_openai_client_works_unchanged(server):
    openai = pytest.importorskip("openai", reason="the official client comes with the serve extra: pip install -e '.[serve]'")
    client = openai.OpenAI(base_url=server.url, api_key="test-key", max_retries=0, timeout=30)
    assert [m.id for m in client.models.list()] == ["base", "final", "step-2"]
    messages = [{"role": "user", "content": "Write hello world."}]
    reply = client.chat.completions.create(model="step-2", messages=messages, max_tokens=8, temperature=0,
                                           logprobs=True, top_logprobs=2)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert len(choice.logprobs.content) == reply.usage.completion_tokens
    stream = client.chat.completions.create(model="step-2", messages=messages, max_tokens=8, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == choice.message.content
    assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens
    text = client.completions.create(model="final", prompt="def f(x):", max_tokens=6, temperature=0, logprobs=1)
    assert text.object == "text_completion" and len(text.choices[0].logprobs.tokens) == text.usage.completion_tokens
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=messages, max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="final", messages=messages, temperature=5)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url, api_key="wrong", max_retries=0).models.list()


def test_eval_through_the_server_scores_what_in_process_eval_scores(server, run_dir, tmp_path, monkeypatch):
    """`tunelab eval` with eval.backend=openai (and the rubric judge on the server) end to end."""
    from tunelab.commands.eval import eval_command

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")  # the endpoint's default api_key_env
    local_run = tmp_path / "local"
    shutil.copytree(run_dir, local_run)
    common = ["eval.max_new_tokens=8", "eval.judge.base_url=" + server.url, "eval.judge.endpoint_model=base"]
    flags = {"models": "base,final", "tasks": "math-word,hint-judge", "limit": 2}
    before = server.app.worker.stats["completed"]
    eval_command(run_dir, **flags, overrides=[*common, "eval.backend=openai", "eval.endpoint.base_url=" + server.url])
    # 2 variants x 2 tasks x 2 items, plus one judge call per hint: all answered by the server.
    assert server.app.worker.stats["completed"] - before == 12
    eval_command(local_run, **flags, overrides=common)
    gens = {}
    for variant in ("base", "final"):
        for task in ("math-word", "hint-judge"):
            remote = [json.loads(x) for x in (run_dir / "eval" / variant / task / "samples.jsonl").read_text().splitlines()]
            local = [json.loads(x) for x in (local_run / "eval" / variant / task / "samples.jsonl").read_text().splitlines()]
            assert [r["generations"] for r in remote] == [r["generations"] for r in local]
            gens[variant, task] = [r["generations"] for r in remote]
            assert [r["values"] for r in remote] == [r["values"] for r in local]
            summary = json.loads((run_dir / "eval" / variant / task / "summary.json").read_text())
            assert summary["backend"] == "openai" and summary["n"] == 2
    # The tiny random base answers blank lines; the adapter makes it say words (so the match means something).
    assert gens["final", "math-word"] != gens["base", "math-word"] and gens["final", "math-word"][0][0].strip()
    judged = json.loads((run_dir / "eval" / "final" / "hint-judge" / "summary.json").read_text())
    assert judged["judge"] == f"openai:{server.url}:base"
