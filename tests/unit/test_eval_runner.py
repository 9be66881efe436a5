"""The eval runner: same items per variant, files written, per-sample resume, code opt-in, samples files."""

import dataclasses
import json
from pathlib import Path

import pytest

from tunelab.config import EvalConfig, validate_config
from tunelab.evaluation import registry
from tunelab.evaluation.engine import evaluate_run
from tunelab.evaluation.samples_file import score_samples_file
from tunelab.evaluation.variants import expand_models
from tunelab.evaluation.selection import pick_best, select_checkpoint
from tunelab.evaluation.task import EvalError, Metric, Prompt, Sample, SampleScore, Task
from tunelab.runs import read_json, read_jsonl


def make_run(tmp_path: Path, steps=(10, 20)) -> Path:
    run = tmp_path / "run"
    for d in [run / "final", *(run / "checkpoints" / f"step-{s}" for s in steps)]:
        d.mkdir(parents=True)
        (d / "adapter_config.json").write_text("{}")
    return run


EXP = validate_config({"model": {"name": "builtin:tiny-random-qwen2"}, "data": {"sources": [{"builtin": "math-word"}]}})
ANSWERS = {}  # math question -> final answer, filled lazily


def answer_of(prompt: Prompt) -> str:
    if not ANSWERS:
        ANSWERS.update({s.data["question"]: s.data["final"] for s in registry.get_task("math-word").load("test")})
    text = prompt.messages[-1]["content"] if prompt.is_chat else prompt.text
    return next(a for q, a in ANSWERS.items() if q in text)


class FakeGenerator:
    """Answers math questions: right for every `every`-th question of the batch order, else wrong."""

    def __init__(self, log: list, skill: float, fail_on_call: int | None = None):
        self.log, self.skill, self.fail_on_call, self.calls = log, skill, fail_on_call, 0

    def generate(self, prompts, settings):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated Ctrl-C")
        self.log.extend(prompts)
        out = []
        for p in prompts:
            want = answer_of(p)
            right = (int(want) % 100) / 100 < self.skill  # deterministic per question
            out.append([f"So the answer is\n#### {want if right else int(want) + 1}"] * settings.n)
        return out


class FakeSession:
    def __init__(self, ref, log, fail_on_call=None):
        skill = {"base": 0.1, "step-10": 0.5, "step-20": 0.9, "final": 0.7}.get(ref, 0.0)
        self.ref, self.backend, self.identity = ref, "fake", f"fake:{ref}"
        self.gen = FakeGenerator(log, skill, fail_on_call)

    def generator(self):
        return self.gen

    def model_and_tokenizer(self):
        raise AssertionError("no model in these tests")

    def close(self):
        pass


def test_models_are_expanded_from_patterns(tmp_path):
    available = ["base", "final", "step-10", "step-20"]
    assert expand_models(["base", "step-*", "final"], available) == ["base", "step-10", "step-20", "final"]
    with pytest.raises(EvalError, match="no model variant matches 'fnal'.*did you mean 'final'"):
        expand_models(["fnal"], available)


def test_each_variant_scores_the_same_items_and_writes_summaries_with_cis(tmp_path):
    run, log = make_run(tmp_path), []
    cfg = EvalConfig(tasks=["math-word"], models=["base", "step-*", "final"], limit=8, batch_size=4)
    results = evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log))
    assert list(results) == ["base", "step-10", "step-20", "final"]
    ids = None
    for variant in results:
        out = run / "eval" / variant / "math-word"
        records = read_jsonl(out / "samples.jsonl")
        assert ids is None or [r["id"] for r in records] == ids
        ids = [r["id"] for r in records]
        summary = read_json(out / "summary.json")
        acc = summary["metrics"]["accuracy_strict"]
        assert summary["task"] == "math-word" and summary["version"] == "3" and summary["n"] == 8
        assert acc["ci_low"] <= acc["value"] <= acc["ci_high"] and acc["higher_is_better"] is True
        assert summary["generation"]["max_new_tokens"] == 256 and summary["variant"] == variant
        assert sum(summary["failure_categories"].values()) == 8
        assert records[0]["prompt"][-1]["role"] == "user" and records[0]["generations"][0].startswith("So")
    assert len(ids) == 8 and len(log) == 32
    base = read_json(run / "eval" / "base" / "math-word" / "summary.json")["metrics"]["accuracy_strict"]["value"]
    best = read_json(run / "eval" / "step-20" / "math-word" / "summary.json")["metrics"]["accuracy_strict"]["value"]
    assert best > base


def test_an_interrupted_eval_resumes_without_redoing_finished_samples(tmp_path):
    run, log = make_run(tmp_path), []
    cfg = EvalConfig(tasks=["math-word"], models=["final"], limit=10, batch_size=2)  # chunks of 4 samples
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log, fail_on_call=2))
    path = run / "eval" / "final" / "math-word" / "samples.jsonl"
    assert len(read_jsonl(path)) == 4 and not (path.parent / "summary.json").exists()
    log.clear()
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log))
    assert len(log) == 6  # only the samples that were not finished
    assert len(read_jsonl(path)) == 10
    log.clear()
    summary = path.parent / "summary.json"
    summary.write_text(json.dumps({**read_json(summary), "marker": 1}))
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log))
    assert log == []  # everything cached ...
    assert read_json(summary)["marker"] == 1  # ... the summary too: not recomputed
    # Other CI settings re-summarise the cached records without generating again.
    evaluate_run(run, EXP, cfg.model_copy(update={"confidence": 0.9}), session_factory=lambda ref: FakeSession(ref, log))
    assert log == [] and read_json(summary)["ci"]["confidence"] == 0.9
    # Fewer items (a lower limit) is another summary, from the same cache, beside the fuller one.
    evaluate_run(run, EXP, cfg.model_copy(update={"limit": 5}), session_factory=lambda ref: FakeSession(ref, log))
    assert log == [] and read_json(summary)["n"] == 10 and read_json(path.parent / "summary@limit-5.json")["n"] == 5
    # Changing what generation depends on (here n) generates again; the old records stay cached.
    evaluate_run(run, EXP, cfg.model_copy(update={"n": 2}), session_factory=lambda ref: FakeSession(ref, log))
    assert len(log) == 10 and len(read_jsonl(path)) == 20


@dataclasses.dataclass
class FakeCodeTask(Task):
    name = "fake-code"
    description = "runs code"
    data_source = "inline"
    executes_code = True
    metrics = (Metric("pass@1"),)

    def load(self, split=None):
        return [Sample("t/0", {"answer": "42"}), Sample("t/1", {"answer": "7"})]

    def build_prompt(self, sample, opts, shots=()):
        return Prompt(text="x")

    def score(self, sample, generations, ctx):
        assert ctx.sandbox is not None
        gens = [{"passed": g.strip() == sample.data["answer"], "verdict": "passed" if g.strip() == sample.data["answer"]
                 else "wrong_answer", "detail": ""} for g in generations]
        return SampleScore({"pass@1": sum(g["passed"] for g in gens) / len(gens)}, gens)


def test_code_tasks_refuse_to_run_without_the_opt_in(tmp_path, monkeypatch):
    registry.list_tasks()
    monkeypatch.setitem(registry._REGISTRY, "fake-code", FakeCodeTask)
    run = make_run(tmp_path)
    with pytest.raises(EvalError, match="execute model-written code.*--allow-code-execution"):
        evaluate_run(run, EXP, EvalConfig(tasks=["fake-code"], models=["final"]),
                     session_factory=lambda ref: pytest.fail("nothing may load before the opt-in check"))
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"task_id": "t/0", "completion": "42"}\n')
    with pytest.raises(EvalError, match="--allow-code-execution"):
        score_samples_file("fake-code", samples, EvalConfig())


def test_a_samples_file_is_scored_without_a_model(tmp_path, monkeypatch):
    registry.list_tasks()
    monkeypatch.setitem(registry._REGISTRY, "fake-code", FakeCodeTask)

    class Box:
        isolation = "test"
        closed = False

        def close(self):
            Box.closed = True

    monkeypatch.setattr("tunelab.evaluation.context._open_sandbox", lambda cfg: Box())
    samples = tmp_path / "samples.jsonl"
    rows = [("t/0", "42"), ("t/0", "41"), ("t/1", "7"), ("t/0", " 42 ")]
    samples.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in rows))
    summary = score_samples_file("fake-code", samples, EvalConfig(allow_code_execution=True), tmp_path / "out")
    out = read_jsonl(tmp_path / "out" / "samples.jsonl")
    assert [(r["task_id"], r["sample_index"], r["passed"], r["verdict"]) for r in out] == [
        ("t/0", 0, True, "passed"), ("t/0", 1, False, "wrong_answer"), ("t/0", 2, True, "passed"), ("t/1", 0, True, "passed")]
    assert all("detail" in r for r in out)
    assert summary["metrics"]["pass@1"]["value"] == pytest.approx((2 / 3 + 1) / 2) and summary["sandbox"] == "test"
    assert summary["completions"] == 4 and Box.closed
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "t/9", "completion": "1"}\n')
    with pytest.raises(EvalError, match="not in task 'fake-code'"):
        score_samples_file("fake-code", bad, EvalConfig(allow_code_execution=True))


def test_a_non_code_task_scores_a_samples_file(tmp_path):
    task = registry.get_task("math-word")
    first = task.load("test")[:2]
    samples = tmp_path / "gen.jsonl"
    samples.write_text("".join(json.dumps({"task_id": s.id, "completion": f"#### {s.data['final']}"}) + "\n" for s in first))
    summary = score_samples_file("math-word", samples, EvalConfig())
    assert summary["metrics"]["accuracy_strict"]["value"] == 1.0
    assert (tmp_path / "gen-eval" / "summary.json").is_file()


def test_best_checkpoint_is_chosen_on_val_and_reported_on_test(tmp_path, monkeypatch):
    import tunelab.evaluation.tasks.math as math_task

    # math-word has no val split: give it one for this test (the first 12 test rows).
    monkeypatch.setattr(math_task.MathWordTask, "splits", ("train", "val", "test"))
    original = math_task.MathWordTask.load
    monkeypatch.setattr(math_task.MathWordTask, "load",
                        lambda self, split=None: original(self, "test")[:12] if split == "val" else original(self, split))
    run, log = make_run(tmp_path), []
    cfg = EvalConfig(tasks=["math-word"], models=["base", "step-*", "final"], limit=12)
    result = select_checkpoint(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log))
    # step-20 scores best (0.9 skill), but on 12 items not beyond the noise against final (0.7).
    assert result["top"] == "step-20" and result["selection_split"] == "val" and result["carved"] is None
    assert result["decision"] == "no_difference" and result["best"] is None and result["resolved"] == "final"
    assert [c["variant"] for c in result["comparisons"]] == ["step-10", "final"]
    assert [c["variant"] for c in result["candidates"]] == ["step-10", "step-20", "final"]
    assert set(result["report"]) == {"final", "base"}
    assert result["difference_vs_base"]["diff"] > 0
    assert read_json(run / "eval" / "selection.json")["resolved"] == "final"
    assert (run / "eval" / "step-20" / "math-word@val" / "summary.json").is_file()
    assert pick_best([("a", 0.5), ("b", 0.5), ("c", float("nan"))], True) == "a"
    assert pick_best([("a", 2.0), ("b", 1.0)], False) == "b"


def test_variant_identity_follows_the_adapter_weights(tmp_path):
    from tunelab.models.ref import ModelRef

    def variant_identity(ref, run, exp):
        return ModelRef.parse(ref, run, base=exp.model).identity()

    run = make_run(tmp_path)
    (run / "final" / "adapter_model.safetensors").write_bytes(b"weights-1")
    before = variant_identity("final", run, EXP)
    assert before == variant_identity("final", run, EXP)
    (run / "final" / "adapter_model.safetensors").write_bytes(b"weights-2")  # retrained
    assert variant_identity("final", run, EXP) != before
    assert variant_identity("base", run, EXP).startswith("base:builtin:tiny-random-qwen2@None#")


def test_a_builtin_base_is_identified_by_its_weights(tmp_path, monkeypatch):
    """A newer tunelab may ship other weights under the same builtin name: caches must notice."""
    from tunelab.models import loading
    from tunelab.models.ref import ModelRef

    def variant_identity(ref, run, exp):
        return ModelRef.parse(ref, run, base=exp.model).identity()

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(loading, "resolve_model_path", lambda name, need_weights=True: str(shipped))
    run = make_run(tmp_path)
    (run / "final" / "adapter_model.safetensors").write_bytes(b"adapter")
    (shipped / "model.safetensors").write_bytes(b"old weights")
    base, final = variant_identity("base", run, EXP), variant_identity("final", run, EXP)
    (shipped / "model.safetensors").write_bytes(b"new weights")
    assert variant_identity("base", run, EXP) != base
    assert variant_identity("final", run, EXP) != final  # the adapter sits on another base now


def test_endpoint_backend_and_judges_are_built_from_the_config(tmp_path):
    from tunelab.evaluation.context import make_judge
    from tunelab.evaluation.generation import TransformersGenerator, VariantSession
    from tunelab.generation import OpenAIGenerator

    cfg = EvalConfig(backend="openai", endpoint={"base_url": "http://127.0.0.1:1/v1"})
    session = VariantSession("step-10", make_run(tmp_path), EXP, cfg)
    assert session.identity == "openai:http://127.0.0.1:1/v1:step-10"  # the server names adapters by ref
    assert isinstance(session.generator(), OpenAIGenerator) and session.generator().model == "step-10"
    with pytest.raises(EvalError, match="base_url"):
        VariantSession("final", tmp_path, EXP, EvalConfig(backend="openai"))

    judge, ident = make_judge(EvalConfig(judge={"base_url": "http://127.0.0.1:1/v1", "endpoint_model": "big"}), None, None)
    assert isinstance(judge, OpenAIGenerator) and ident == "openai:http://127.0.0.1:1/v1:big"
    assert make_judge(EvalConfig(), None, None) == (None, None)
    judge, ident = make_judge(EvalConfig(judge={"model": "builtin:tiny-random-qwen2"}), None, None)
    assert ident == "model:builtin:tiny-random-qwen2" and judge._gen is None  # loaded only when asked
    from tunelab.evaluation.task import GenerationSettings, Prompt

    out = judge.generate([Prompt(messages=[{"role": "user", "content": "HCorrect?"}])], GenerationSettings(max_new_tokens=2))
    assert isinstance(judge._gen, TransformersGenerator) and len(out) == 1


def test_prompting_variants_are_named_by_a_suffix():
    from tunelab.evaluation.variants import split_prompting

    assert split_prompting("base+few-shot") == ("base", "few-shot")
    assert split_prompting("base+cot") == ("base", "chain-of-thought")
    assert split_prompting("step-20") == ("step-20", None)
    with pytest.raises(EvalError, match="'few-shoot' is not a prompt variant.*did you mean 'few-shot'"):
        split_prompting("base+few-shoot")
    available = ["base", "final", "step-10", "step-20"]
    assert expand_models(["base", "base+cot", "step-*+few-shot"], available) == [
        "base", "base+cot", "step-10+few-shot", "step-20+few-shot"]


def test_prompting_baselines_are_ordinary_variants_of_the_base(tmp_path):
    run, log, opened = make_run(tmp_path), [], []

    def factory(ref):
        opened.append(ref)
        return FakeSession(ref, log)

    cfg = EvalConfig(tasks=["math-word"], models=["base", "base+few-shot", "base+cot", "final"], limit=4)
    results = evaluate_run(run, EXP, cfg, session_factory=factory)
    assert list(results) == ["base", "base+few-shot", "base+cot", "final"]
    assert opened == ["base", "final"]  # the baselines reuse the loaded base model
    for variant, prompt in (("base", "zero-shot"), ("base+few-shot", "few-shot"), ("base+cot", "chain-of-thought")):
        summary = read_json(run / "eval" / variant / "math-word" / "summary.json")
        assert summary["variant"] == variant and summary["prompt"]["variant"] == prompt
    shots = read_jsonl(run / "eval" / "base+few-shot" / "math-word" / "samples.jsonl")[0]["prompt"]
    assert len(shots) == 2 * 3 + 1  # three worked examples before the question
    with pytest.raises(EvalError, match="base\\+few-shot: task 'loss' has no 'few-shot' prompt"):
        evaluate_run(run, EXP, cfg.model_copy(update={"tasks": ["loss"], "models": ["base+few-shot"]}),
                     session_factory=lambda ref: pytest.fail("nothing may load for a prompt a task lacks"))


def test_few_shot_examples_never_come_from_the_evaluated_items(tmp_path):
    run = make_run(tmp_path)
    cfg = EvalConfig(tasks=["math-word"], models=["base+few-shot"], limit=4, split="train")
    # math-word takes its shots from train: evaluating train with them would score the shots.
    with pytest.raises(EvalError, match="task 'math-word'.*from split 'train'.*evaluated split 'train'"):
        evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, []))
    # A file given with `path` has no splits: its first items would be both shots and scored items.
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(6)]
    data = tmp_path / "gsm.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    own = EvalConfig(tasks=["math-word"], models=["base+few-shot"], task_options={"math-word": {"path": str(data)}})
    with pytest.raises(EvalError, match="task 'math-word': few-shot example .* split 'train'.* evaluated split 'test'"):
        evaluate_run(run, EXP, own, session_factory=lambda ref: FakeSession(ref, []))


def test_changed_items_are_scored_again(tmp_path, monkeypatch):
    """Re-shipped data with the same ids must not be served from the per-sample cache."""
    import tunelab.evaluation.tasks.math as math_task

    run, log = make_run(tmp_path), []
    cfg = EvalConfig(tasks=["math-word"], models=["final"], limit=4)
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log))
    assert len(log) == 4
    original = math_task.MathWordTask.load

    def reshipped(self, split=None):
        first, *rest = original(self, split)
        return [Sample(first.id, {**first.data, "question": first.data["question"] + " (fixed typo)"}), *rest]

    monkeypatch.setattr(math_task.MathWordTask, "load", reshipped)
    monkeypatch.setitem(ANSWERS, original(math_task.MathWordTask(), "test")[0].data["question"] + " (fixed typo)",
                        original(math_task.MathWordTask(), "test")[0].data["final"])
    log.clear()
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log))
    assert len(log) == 1 and "(fixed typo)" in log[0].messages[-1]["content"]


def test_commands_on_an_existing_run_accept_only_their_settings(tmp_path):
    from tunelab.commands.eval import resolve_eval_config
    from tunelab.compare import compare_command
    from tunelab.errors import ConfigError

    run = make_run(tmp_path)
    (run / "config.yaml").write_text(EXP.to_yaml())
    with pytest.raises(ConfigError, match="only eval.\\* keys can be set when evaluating"):
        resolve_eval_config(run, ["train.lr=1"])
    with pytest.raises(ConfigError, match="unknown key 'limt'.*did you mean 'limit'"):
        resolve_eval_config(run, ["eval.limt=3"])
    assert resolve_eval_config(run, ["eval.limit=3"], models=["final"])[1].limit == 3
    with pytest.raises(ConfigError, match="only compare.\\* and eval.\\* keys"):
        compare_command(run, ["lora.r=4"])


def test_a_variant_of_another_run_is_stored_under_this_run_by_a_readable_name(tmp_path):
    """`--models OTHER_RUN/final` (or OTHER_RUN:final) once wrote into OTHER_RUN itself (an absolute
    path joined onto eval/); its results belong to the run being evaluated, under a short name."""
    import yaml

    run = make_run(tmp_path / "a")
    other = make_run(tmp_path / "b")
    (other / "config.yaml").write_text(yaml.safe_dump(EXP.model_dump(mode="json")))
    seen = []
    cfg = EvalConfig(tasks=["math-word"], models=[str(other / "final"), f"{other}:step-10"], limit=4)
    results = evaluate_run(run, EXP, cfg, session_factory=lambda ref: seen.append(ref) or FakeSession("final", []))
    assert list(results) == ["run:final", "run:step-10"]
    assert (run / "eval" / "run:final" / "math-word" / "summary.json").is_file()
    assert (run / "eval" / "run:step-10" / "math-word" / "summary.json").is_file()
    assert not (other / "eval").exists()
    assert seen == [str(other / "final"), f"{other}:step-10"]  # the weights are still the other run's


def test_a_capped_re_run_keeps_every_cached_sample_and_the_fuller_summary(tmp_path):
    """`tunelab eval --limit 2` after a full eval once shrank samples.jsonl to 2 records and the
    summary to n=2; caches only grow, and the capped summary goes beside the full one."""
    run, log = make_run(tmp_path), []
    cfg = EvalConfig(tasks=["math-word"], models=["final"], limit=8)
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log))
    out = run / "eval" / "final" / "math-word"
    assert len(read_jsonl(out / "samples.jsonl")) == 8 and len(log) == 8
    capped = evaluate_run(run, EXP, cfg.model_copy(update={"limit": 2}), session_factory=lambda ref: FakeSession(ref, log))
    assert capped["final"]["math-word"]["n"] == 2 and len(log) == 8  # served from the cache
    assert len(read_jsonl(out / "samples.jsonl")) == 8
    assert read_json(out / "summary.json")["n"] == 8
    assert read_json(out / "summary@limit-2.json")["n"] == 2
    # Other settings (another judge, prompt or generation length) add records, never replace them.
    evaluate_run(run, EXP, cfg.model_copy(update={"limit": 2, "max_new_tokens": 64}),
                 session_factory=lambda ref: FakeSession(ref, log))
    assert len(read_jsonl(out / "samples.jsonl")) == 10 and len(log) == 10
    evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession(ref, log))
    assert len(log) == 10  # the first 8 are still cached


def own_run(tmp_path: Path, **eval_settings) -> tuple[Path, EvalConfig]:
    """A run whose config.yaml evaluates `eval_settings` (its own configuration)."""
    run = make_run(tmp_path)
    exp = validate_config({**EXP.model_dump(mode="json"), "eval": eval_settings})
    (run / "config.yaml").write_text(exp.to_yaml())
    return run, exp.eval


def test_a_one_off_eval_with_other_settings_writes_beside_the_runs_own_summary(tmp_path):
    """`tunelab eval RUN --set eval.task_options...={path: x.jsonl} --limit 5` once replaced the
    run's 8-item summary.json, which the report then compared with base's as if alike."""
    from tunelab.evaluation.results import summary_records

    run, own = own_run(tmp_path, tasks=["math-word"], models=["base", "final"], limit=8)
    log = []
    evaluate_run(run, EXP, own, session_factory=lambda ref: FakeSession(ref, log))
    out = run / "eval" / "final" / "math-word"
    before = {p: p.read_bytes() for p in run.glob("eval/*/math-word/summary.json")}
    records_before = summary_records(out)
    rows = [{"question": q, "answer": f"#### {a}"} for q, a in list(ANSWERS.items())[20:25]]
    data = tmp_path / "x.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    other = own.model_copy(update={"task_options": {"math-word": {"path": str(data)}}, "limit": 5})
    res = evaluate_run(run, EXP, other, session_factory=lambda ref: FakeSession(ref, log))
    assert {p: p.read_bytes() for p in run.glob("eval/*/math-word/summary.json")} == before
    assert summary_records(out) == records_before  # the one-off's records do not leak into it
    keyed = [p for p in out.glob("summary@*.json")]
    assert len(keyed) == 1 and read_json(keyed[0])["n"] == 5 == res["final"]["math-word"]["n"]
    assert read_json(keyed[0])["keyed"]["limit"] == {"run": 8, "here": 5}
    assert read_json(keyed[0])["keyed"]["options"]["here"] == {"path": str(data)}
    # Only the limit differs: a readable key. The run's own settings again: summary.json, cached.
    evaluate_run(run, EXP, own.model_copy(update={"limit": 3}), session_factory=lambda ref: FakeSession(ref, log))
    assert read_json(out / "summary@limit-3.json")["n"] == 3 and read_json(out / "summary.json")["n"] == 8
    n = len(log)
    evaluate_run(run, EXP, own, session_factory=lambda ref: FakeSession(ref, log))
    assert len(log) == n and {p: p.read_bytes() for p in run.glob("eval/*/math-word/summary.json")} == before


def test_variants_with_the_same_weights_are_generated_and_scored_once(tmp_path):
    """`final` and the last `step-N` are usually byte-identical adapters: one generation each item."""
    run, log = make_run(tmp_path), []

    def factory(ref):
        session = FakeSession(ref, log)
        if ref in ("step-20", "final"):
            session.identity = "fake:same-adapter"
        return session

    cfg = EvalConfig(tasks=["math-word"], models=["step-*", "final"], limit=6)
    results = evaluate_run(run, EXP, cfg, session_factory=factory)
    assert len(log) == 12  # step-10 and step-20; final shares step-20's generations
    final = read_json(run / "eval" / "final" / "math-word" / "summary.json")
    assert final["variant"] == "final" and final["shared_with"] == "step-20"
    assert final["metrics"] == results["step-20"]["math-word"]["metrics"]
    copied = read_jsonl(run / "eval" / "final" / "math-word" / "samples.jsonl")
    assert len(copied) == 6 and {r["copied_from"] for r in copied} == {"step-20"}
    # Also across commands: final alone later, with a longer limit, generates only the new items.
    evaluate_run(run, EXP, cfg.model_copy(update={"models": ["step-20"], "limit": 8}), session_factory=factory)
    evaluate_run(run, EXP, cfg.model_copy(update={"models": ["final"], "limit": 8}), session_factory=factory)
    assert len(log) == 14


def test_a_selection_with_other_settings_is_written_beside_the_runs_own(tmp_path, monkeypatch):
    import tunelab.evaluation.tasks.math as math_task

    monkeypatch.setattr(math_task.MathWordTask, "splits", ("train", "val", "test"))
    original = math_task.MathWordTask.load
    monkeypatch.setattr(math_task.MathWordTask, "load",
                        lambda self, split=None: original(self, "test")[:12] if split == "val" else original(self, split))
    run, own = own_run(tmp_path, tasks=["math-word"], models=["base", "step-*", "final"], limit=12)
    log = []
    select_checkpoint(run, EXP, own, session_factory=lambda ref: FakeSession(ref, log))
    plain = (run / "eval" / "selection.json").read_bytes()
    other = own.model_copy(update={"selection": own.selection.model_copy(update={"metric": "accuracy_flexible"}),
                                   "limit": 6})
    result = select_checkpoint(run, EXP, other, session_factory=lambda ref: FakeSession(ref, log))
    assert (run / "eval" / "selection.json").read_bytes() == plain
    keyed = list((run / "eval").glob("selection@*.json"))
    assert len(keyed) == 1 and read_json(keyed[0])["metric"] == "accuracy_flexible" == result["metric"]
    assert result["keyed"]["metric"] == {"run": None, "here": "accuracy_flexible"}
    assert result["keyed"]["limit"] == {"run": 12, "here": 6}


def test_selection_chooses_only_among_the_runs_own_checkpoints():
    from tunelab.evaluation.selection import is_own_checkpoint

    assert [v for v in ["base", "base+cot", "step-10", "final", "best", "other:final", "adapter:final",
                        "/abs/run/checkpoints/step-10", "step-abc"] if is_own_checkpoint(v)] == ["step-10", "final"]


def test_two_models_filed_under_one_name_are_refused(tmp_path):
    """Two other runs both called `run` would share eval/run:final/ and one result would be lost."""
    import yaml

    run = make_run(tmp_path / "a")
    others = [make_run(tmp_path / d) for d in ("b", "c")]
    for o in others:
        (o / "config.yaml").write_text(yaml.safe_dump(EXP.model_dump(mode="json")))
    cfg = EvalConfig(tasks=["math-word"], models=[f"{o}:final" for o in others], limit=2)
    with pytest.raises(EvalError, match="both be filed as eval/run:final/"):
        evaluate_run(run, EXP, cfg, session_factory=lambda ref: FakeSession("final", []))
