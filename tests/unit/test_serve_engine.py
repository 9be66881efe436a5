"""serve.engine: decoding matches transformers' generate, stops cleanly, reports logprobs; the worker."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from tunelab.config import ModelConfig
from tunelab.generation import GenerationSettings, Prompt, TransformersGenerator
from tunelab.models.loading import load_base
from tunelab.serve.engine import Delta, Job, Overloaded, Sampling, Worker, make_generator, stream_tokens

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def lm(tiny_qwen2_dir):
    model, tok = load_base(ModelConfig(name=str(tiny_qwen2_dir), device="cpu"))
    model.eval()
    gen = TransformersGenerator(model, tok, batch_size=1)  # sets the ChatML template, as training does
    return model, tok, gen


def _run(model, tok, ids, sampling, stop_ids=(), seed=None):
    deltas = list(stream_tokens(model, tok, ids, sampling, stop_ids, generator=make_generator(seed, model.device)))
    return "".join(d.text for d in deltas), deltas


@pytest.mark.parametrize("prompt", [Prompt(text="def add(a, b):"), Prompt(messages=[{"role": "user", "content": "Sort a list."}]),
                                    Prompt(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}])])
def test_greedy_decoding_matches_the_eval_generator(lm, prompt):
    model, tok, gen = lm
    expected = gen.generate([prompt], GenerationSettings(max_new_tokens=12))[0][0]
    ids = gen._encode(prompt)
    text, deltas = _run(model, tok, ids, Sampling(max_tokens=12, temperature=0), gen._eos_ids(prompt.is_chat))
    assert text == expected
    assert deltas[-1].finish_reason in ("stop", "length") and all(d.finish_reason is None for d in deltas[:-1])
    assert deltas[-1].completion_tokens <= 12


def test_a_stop_string_ends_the_text_and_never_leaks_into_a_piece(lm):
    model, tok, gen = lm
    ids = tok("def add(a, b):", add_special_tokens=True)["input_ids"]
    full, _ = _run(model, tok, ids, Sampling(max_tokens=24, temperature=0))
    stop = full[len(full) // 2 : len(full) // 2 + 3]  # some text the model will produce mid-answer
    assert len(stop) == 3
    text, deltas = _run(model, tok, ids, Sampling(max_tokens=24, temperature=0, stop=(stop,)))
    assert text == full[: full.index(stop)] and deltas[-1].finish_reason == "stop"
    assert not any(stop in d.text for d in deltas)


def test_logprobs_are_those_of_the_model_and_the_greedy_token_is_the_top_one(lm):
    model, tok, _ = lm
    ids = tok("import os\n", add_special_tokens=True)["input_ids"]
    _, deltas = _run(model, tok, ids, Sampling(max_tokens=4, temperature=0, logprobs=True, top_logprobs=3))
    tokens = [t for d in deltas for t in d.tokens]
    assert len(tokens) == deltas[-1].completion_tokens
    with torch.no_grad():
        first = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), -1)
    assert tokens[0].logprob == pytest.approx(float(first.max()), abs=1e-4)
    for t in tokens:
        assert len(t.top) == 3 and t.top[0] == (t.text, pytest.approx(t.logprob, abs=1e-6))
        assert [lp for _, lp in t.top] == sorted((lp for _, lp in t.top), reverse=True)


def test_seeded_sampling_is_reproducible(lm):
    model, tok, _ = lm
    ids = tok("x = ", add_special_tokens=True)["input_ids"]
    s = Sampling(max_tokens=10, temperature=1.0, top_p=0.9, seed=5)
    a, _ = _run(model, tok, ids, s, seed=5)
    b, _ = _run(model, tok, ids, s, seed=5)
    c, _ = _run(model, tok, ids, s, seed=6)
    assert a == b and a != c


def test_cancelling_stops_at_the_next_token(lm):
    model, tok, _ = lm
    ids = tok("x", add_special_tokens=True)["input_ids"]
    seen = []
    deltas = stream_tokens(model, tok, ids, Sampling(max_tokens=500, temperature=0), cancelled=lambda: len(seen) >= 3)
    for d in deltas:
        seen.append(d)
    assert seen[-1].finish_reason == "cancelled" and seen[-1].completion_tokens <= 3


# ---- the worker -----------------------------------------------------------------------------------


def _job(gate: threading.Event | None = None, fail: bool = False) -> tuple[Job, list]:
    events: list = []

    def run(cancelled):
        if gate is not None:
            gate.wait(10)
        if fail:
            raise ValueError("boom")
        yield 0, Delta("hi", [], "stop", 1)

    return Job(run=run, emit=events.append), events


def _wait(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cond()


def test_worker_rejects_over_the_queue_limit_and_answers_queued_jobs_on_close():
    worker = Worker(max_queue=2)
    gate = threading.Event()
    running, running_events = _job(gate)
    worker.submit(running)
    _wait(lambda: worker.queued == 0)  # the worker took it and is blocked in it
    queued = [_job() for _ in range(2)]
    for job, _ in queued:
        worker.submit(job)
    with pytest.raises(Overloaded) as e:
        worker.submit(_job()[0])
    assert e.value.status == 429 and worker.stats["rejected"] == 1
    closer = threading.Thread(target=worker.close)
    closer.start()
    _wait(lambda: all(ev for _, ev in queued))
    assert all(ev == [("error", 503, "the server is shutting down")] for _, ev in queued)
    gate.set()
    closer.join(5)
    assert running_events[-1] == ("end", None, None)  # the running job was finished, not dropped
    with pytest.raises(Overloaded) as e:
        worker.submit(_job()[0])
    assert e.value.status == 503


def test_worker_survives_a_failing_job_and_skips_cancelled_ones():
    worker = Worker(max_queue=4)
    bad, bad_events = _job(fail=True)
    skipped, skipped_events = _job()
    skipped.cancel.set()
    good, good_events = _job()
    for job in (bad, skipped, good):
        worker.submit(job)
    _wait(lambda: good_events)
    assert bad_events[0][0] == "error" and bad_events[0][1] == 500 and "boom" in bad_events[0][2]
    assert skipped_events == [] and good_events[-1] == ("end", None, None)
    assert worker.stats["errors"] == 1 and worker.stats["cancelled"] == 1
    worker.close()
