"""serve.engine and serve.worker: decoding matches transformers' generate, stops cleanly, reports logprobs,
batches without changing any answer; the worker batches what waits and keeps its queue bounded."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from tunelab.config import ModelConfig
from tunelab.generation import GenerationSettings, Prompt, TransformersGenerator
from tunelab.models.loading import load_base
from tunelab.serve.engine import Delta, Sampling, Seq, decode_batch, make_generator, stream_tokens
from tunelab.serve.worker import Answers, Job, Overloaded, Worker

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


def test_the_kv_cache_goes_by_the_keyword_the_installed_transformers_names(lm, monkeypatch):
    import functools
    import inspect

    model, tok, gen = lm
    forward, keywords = model.forward, []

    @functools.wraps(forward)  # keeps the signature the decoder reads
    def spy(*args, **kwargs):
        keywords.append(set(kwargs))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    expected = gen.generate([Prompt(text="def add(a, b):")], GenerationSettings(max_new_tokens=6))[0][0]
    keywords.clear()
    text, _ = _run(model, tok, gen._encode(Prompt(text="def add(a, b):")), Sampling(max_tokens=6, temperature=0))
    assert text == expected and len(keywords) > 1  # the cache carried over between steps
    name = "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"
    assert all(name in k for k in keywords)  # never the other, deprecated name (it warns on every start)
    assert not any(({"cache", "past_key_values"} - {name}) & k for k in keywords)


PROMPTS = ["def add(a, b):", "x", "import os\nimport sys\n\nclass Parser:\n    def __init__(self, text):",
           "for i in range(10):", "# sort a list of numbers in place, largest first\n", "y = [", "return", "while True:"]


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_a_batch_answers_each_sequence_exactly_as_one_at_a_time(tiny_model_dir, arch):
    """Different prompt lengths, max_tokens, stop ids and stop strings: rows finish at different
    steps and leave the batch, and nobody's greedy tokens, text or logprobs change."""
    model, tok = load_base(ModelConfig(name=str(tiny_model_dir(arch)), device="cpu"))
    model.eval()
    seqs = []
    for i, p in enumerate(PROMPTS):
        ids = tok(p, add_special_tokens=True)["input_ids"]
        s = Sampling(max_tokens=4 + 3 * i, temperature=0, logprobs=i % 2 == 0, top_logprobs=2 * (i % 2 == 0))
        seqs.append(Seq(ids, s))
    alone = [list(stream_tokens(model, tok, s.prompt_ids, s.sampling)) for s in seqs]
    # Stop rows 1 and 5 early on a token they produce, row 3 on a piece of its own text.
    for i in (1, 5):
        toks = [t.id for d in _run_lp(model, tok, seqs[i]) for t in d.tokens]
        seqs[i] = Seq(seqs[i].prompt_ids, seqs[i].sampling, stop_ids=[toks[2]])
    text3 = "".join(d.text for d in alone[3])
    seqs[3] = Seq(seqs[3].prompt_ids, Sampling(max_tokens=seqs[3].sampling.max_tokens, temperature=0,
                                               stop=(text3[len(text3) // 2:len(text3) // 2 + 2],)))
    alone = [list(stream_tokens(model, tok, s.prompt_ids, s.sampling, s.stop_ids)) for s in seqs]
    together: list[list[Delta]] = [[] for _ in seqs]
    for i, d in decode_batch(model, tok, seqs):
        together[i].append(d)
    ends = set()
    for a, b in zip(alone, together):
        assert "".join(d.text for d in b) == "".join(d.text for d in a)
        assert (b[-1].finish_reason, b[-1].completion_tokens) == (a[-1].finish_reason, a[-1].completion_tokens)
        ta, tb = [t for d in a for t in d.tokens], [t for d in b for t in d.tokens]
        assert [t.id for t in tb] == [t.id for t in ta]
        assert [t.logprob for t in tb] == pytest.approx([t.logprob for t in ta], abs=1e-4)
        ends.add(b[-1].completion_tokens)
    assert len(ends) >= 5 and {a[-1].finish_reason for a in alone} == {"stop", "length"}


def _run_lp(model, tok, seq):
    s = Sampling(max_tokens=seq.sampling.max_tokens, temperature=0, logprobs=True)
    return list(stream_tokens(model, tok, seq.prompt_ids, s))


def test_seeded_sampling_in_a_batch_draws_what_it_draws_alone(lm):
    model, tok, _ = lm
    prompts = [tok(p, add_special_tokens=True)["input_ids"] for p in PROMPTS[:4]]
    s = Sampling(max_tokens=12, temperature=1.0, top_p=0.9)
    alone = ["".join(d.text for d in stream_tokens(model, tok, p, s, generator=make_generator(k, model.device)))
             for k, p in enumerate(prompts)]
    together = [""] * len(prompts)
    batch = [Seq(p, s, generator=make_generator(k, model.device)) for k, p in enumerate(prompts)]
    for i, d in decode_batch(model, tok, batch):
        together[i] += d.text
    assert together == alone


def test_a_cancelled_row_leaves_the_batch_and_the_others_carry_on(lm):
    model, tok, _ = lm
    ids = [tok(p, add_special_tokens=True)["input_ids"] for p in PROMPTS[:3]]
    s = Sampling(max_tokens=10, temperature=0)
    alone = ["".join(d.text for d in stream_tokens(model, tok, p, s)) for p in ids]
    steps = []
    seqs = [Seq(p, s, cancelled=(lambda: len(steps) >= 3) if k == 1 else None) for k, p in enumerate(ids)]
    out: list[list[Delta]] = [[] for _ in seqs]
    for i, d in decode_batch(model, tok, seqs):
        out[i].append(d)
        if i == 0:
            steps.append(d)
    assert out[1][-1].finish_reason == "cancelled" and out[1][-1].completion_tokens <= 4
    assert ["".join(d.text for d in out[k]) for k in (0, 2)] == [alone[0], alone[2]]


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


def _answers(key, calls, gate=None, fail=False, rows=1):
    """A batchable job body: records the batches it is decoded in; each row says its key."""

    def decode(seqs):
        calls.append([s.prompt_ids[0] for s in seqs])
        if gate is not None:
            gate.wait(10)
        if fail:
            raise ValueError("boom")
        for i, s in enumerate(seqs):
            yield i, Delta(s.prompt_ids[0], [], "stop", 1)

    seqs = [Seq([key], Sampling(max_tokens=1, temperature=0)) for _ in range(rows)]
    return Answers(key, seqs, [[j] for j in range(rows)], decode)


def test_jobs_that_wait_during_a_batch_join_the_next_one_grouped_per_adapter():
    worker = Worker(max_queue=16, max_batch_size=16)
    calls, gate = [], threading.Event()
    first = Job(emit=lambda ev: None, answers=_answers("a", calls, gate))
    worker.submit(first)
    _wait(lambda: calls)  # the first batch is running (alone: nothing else was queued)
    events = {}
    for n, key in enumerate("abab" + "a"):
        events[n] = []
        worker.submit(Job(emit=events[n].append, answers=_answers(key, calls, rows=1 + (n == 4))))
    gate.set()
    _wait(lambda: all(ev and ev[-1][0] == "end" for ev in events.values()))
    assert calls == [["a"], ["a", "a", "a", "a"], ["b", "b"]]  # job 4 asked for two answers
    assert events[4] == [("delta", 0, Delta("a", [], "stop", 1)), ("delta", 1, Delta("a", [], "stop", 1)),
                         ("end", None, None)]
    assert worker.stats["batches"] == 3 and worker.stats["batched_rows"] == 7 and worker.stats["completed"] == 6
    worker.close()


def test_a_batch_holds_at_most_max_batch_size_rows_and_one_failure_answers_only_its_batch():
    worker = Worker(max_queue=16, max_batch_size=2)
    calls, gate = [], threading.Event()
    worker.submit(Job(emit=lambda ev: None, answers=_answers("a", calls, gate)))
    _wait(lambda: calls)
    events = [[] for _ in range(5)]
    for n in range(5):
        worker.submit(Job(emit=events[n].append, answers=_answers("b" if n < 2 else "c", calls, fail=n < 2)))
    gate.set()
    _wait(lambda: all(events))
    # max_batch_size 2: the worker takes two jobs at a time from the queue.
    assert calls == [["a"], ["b", "b"], ["c", "c"], ["c"]]
    assert [ev[0][:2] for ev in events[:2]] == [("error", 500)] * 2 and "boom" in events[0][0][2]
    assert all(ev[-1] == ("end", None, None) for ev in events[2:])
    assert worker.stats["errors"] == 2 and worker.stats["completed"] == 4
    worker.close()


def test_max_batch_size_1_decodes_one_request_at_a_time():
    worker = Worker(max_queue=8, max_batch_size=1)
    calls, gate = [], threading.Event()
    worker.submit(Job(emit=lambda ev: None, answers=_answers("a", calls, gate)))
    _wait(lambda: calls)
    done = []
    for _ in range(3):
        worker.submit(Job(emit=done.append, answers=_answers("a", calls)))
    gate.set()
    _wait(lambda: len([e for e in done if e[0] == "end"]) == 3)
    assert calls == [["a"]] * 4
    worker.close()
