"""Ratio and explicit splits, seed determinism and mixing weights."""

from __future__ import annotations

from collections import Counter

import pytest

from tunelab.config import DataConfig
from tunelab.data.mixing import build_splits
from tunelab.errors import DataError


def rows(tag: str, n: int) -> list[dict]:
    return [{"instruction": f"{tag} question {i}", "output": f"{tag} answer {i}"} for i in range(n)]


@pytest.fixture
def two_sources(data_write_jsonl):
    return data_write_jsonl("alpha.jsonl", rows("a", 20)), data_write_jsonl("beta.jsonl", rows("b", 10))


def config(paths, **kw) -> DataConfig:
    weights = kw.pop("weights", [1.0] * len(paths))
    sources = [{"path": str(p), "weight": w} for p, w in zip(paths, weights)]
    return DataConfig.model_validate({"sources": sources, **kw})


def origins(examples) -> list[str]:
    return [ex.origin for ex in examples]


def test_ratio_split_per_source(two_sources):
    splits = build_splits(config(two_sources, split={"val": 0.1, "test": 0.2}), seed=0)
    # alpha: 20 -> 2 val, 4 test, 14 train; beta: 10 -> 1 val, 2 test, 7 train.
    assert splits.counts == {
        "train": {"alpha": 14, "beta": 7},
        "val": {"alpha": 2, "beta": 1},
        "test": {"alpha": 4, "beta": 2},
    }
    parts = [set(origins(splits.train)), set(origins(splits.val)), set(origins(splits.test))]
    assert sum(len(p) for p in parts) == 30 and len(set.union(*parts)) == 30  # disjoint, complete


def test_tiny_ratio_still_gives_every_source_a_val_example(data_write_jsonl):
    paths = [data_write_jsonl("big.jsonl", rows("a", 40)), data_write_jsonl("small.jsonl", rows("b", 4))]
    splits = build_splits(config(paths, split={"val": 0.05, "test": 0.0}), seed=0)
    assert splits.counts["val"] == {"big": 2, "small": 1}
    assert splits.test == []


def test_same_seed_same_splits_other_seed_differs(two_sources):
    cfg = config(two_sources, weights=[1.5, 1.0])
    a, b, c = build_splits(cfg, seed=3), build_splits(cfg, seed=3), build_splits(cfg, seed=4)
    for name in ("train", "val", "test"):
        assert origins(getattr(a, name)) == origins(getattr(b, name))
        assert [e.messages for e in getattr(a, name)] == [e.messages for e in getattr(b, name)]
    assert origins(a.train) != origins(c.train)


def test_train_is_shuffled_across_sources(two_sources):
    train = build_splits(config(two_sources), seed=0).train
    labels = [ex.source for ex in train]
    assert labels != sorted(labels)  # not all alpha then all beta


def test_weights_repeat_and_subsample(two_sources):
    splits = build_splits(config(two_sources, weights=[2.0, 0.5], split={"val": 0.0, "test": 0.0}), seed=0)
    # alpha: weight 2 -> each of its 20 examples exactly twice; beta: 0.5 -> 5 distinct of its 10.
    assert splits.counts["train"] == {"alpha": 40, "beta": 5}
    per_origin = Counter(origins(splits.train))
    assert {n for o, n in per_origin.items() if "alpha" in o} == {2}
    assert {n for o, n in per_origin.items() if "beta" in o} == {1}


def test_fractional_weight_above_one(two_sources):
    splits = build_splits(config(two_sources, weights=[1.25, 1.0], split={"val": 0.0, "test": 0.0}), seed=1)
    per_origin = Counter(o for o in origins(splits.train) if "alpha" in o)
    assert len(per_origin) == 20 and sum(per_origin.values()) == 25  # all once, 5 of them twice
    assert sorted(Counter(per_origin.values()).items()) == [(1, 15), (2, 5)]


def test_weights_do_not_touch_val_and_test(two_sources):
    plain = build_splits(config(two_sources), seed=0)
    weighted = build_splits(config(two_sources, weights=[3.0, 0.5]), seed=0)
    assert origins(plain.val) == origins(weighted.val)
    assert origins(plain.test) == origins(weighted.test)


def test_explicit_val_and_test_sources(two_sources, data_write_jsonl):
    val = data_write_jsonl("dev.jsonl", rows("v", 3))
    test = data_write_jsonl("held.jsonl", rows("t", 4))
    cfg = DataConfig.model_validate({
        "sources": [{"path": str(p)} for p in two_sources],
        "val": [{"path": str(val)}],
        "test": [{"path": str(test)}],
    })
    splits = build_splits(cfg, seed=0)
    assert splits.counts == {"train": {"alpha": 20, "beta": 10}, "val": {"dev": 3}, "test": {"held": 4}}


def test_explicit_val_with_ratio_test(two_sources, data_write_jsonl):
    val = data_write_jsonl("dev.jsonl", rows("v", 3))
    cfg = DataConfig.model_validate({
        "sources": [{"path": str(p)} for p in two_sources],
        "val": [{"path": str(val)}],
        "split": {"val": 0.5, "test": 0.1},  # val ratio ignored: explicit val given
    })
    assert build_splits(cfg, seed=0).counts == {
        "train": {"alpha": 18, "beta": 9}, "val": {"dev": 3}, "test": {"alpha": 2, "beta": 1},
    }


def test_too_small_source_and_duplicate_names(data_write_jsonl):
    tiny = data_write_jsonl("tiny.jsonl", rows("a", 2))
    with pytest.raises(DataError, match="source 'tiny' has 2 example"):
        build_splits(config([tiny]), seed=0)
    with pytest.raises(DataError, match="both named 'tiny'"):
        build_splits(config([tiny, tiny], split={"val": 0.0, "test": 0.0}), seed=0)


def test_bad_row_stops_with_its_origin(data_write_jsonl):
    path = data_write_jsonl("bad.jsonl", rows("a", 5) + [{"instruction": "x"}])
    with pytest.raises(DataError, match=rf"^{path}:6: field 'output' is missing"):
        build_splits(config([path]), seed=0)


def grouped_rows(tag: str, problems: int, per: int) -> list[dict]:
    return [{"instruction": f"{tag} variant {j} of problem {p}", "output": f"answer {p}.{j}", "problem_id": p}
            for p in range(problems) for j in range(per)]


def test_group_by_keeps_every_group_in_one_split_across_sources(data_write_jsonl):
    paths = [data_write_jsonl("alpha.jsonl", grouped_rows("a", 20, 3)),
             data_write_jsonl("beta.jsonl", grouped_rows("b", 20, 2))]
    splits = build_splits(config(paths, split={"val": 0.1, "test": 0.2, "group_by": "problem_id"}), seed=0)

    def problems(part):
        return {int(ex.messages[-1]["content"].split()[1].split(".")[0]) for ex in part}

    tr, va, te = problems(splits.train), problems(splits.val), problems(splits.test)
    assert va and te and not (tr & va) and not (tr & te) and not (va & te)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 100
    assert 8 <= len(splits.val) <= 15 and 18 <= len(splits.test) <= 25  # about the ratios, whole groups
    assert splits.overlap["val"]["shares_group_with_train"] == 0 == splits.overlap["test"]["shares_group_with_train"]
    again = build_splits(config(paths, split={"val": 0.1, "test": 0.2, "group_by": "problem_id"}), seed=0)
    assert origins(again.test) == origins(splits.test)


def test_without_group_by_groups_leak_and_a_missing_field_is_an_error(data_write_jsonl):
    path = data_write_jsonl("alpha.jsonl", grouped_rows("a", 20, 3))
    splits = build_splits(config([path], split={"val": 0.2, "test": 0.2}), seed=0)
    assert splits.overlap["val"]["shares_group_with_train"] is None  # not known without group_by
    bad = data_write_jsonl("beta.jsonl", rows("b", 10))
    with pytest.raises(DataError, match="beta.jsonl:1.*group_by is 'problem_id'"):
        build_splits(config([bad], split={"group_by": "problem_id"}), seed=0)


def test_overlap_counts_shared_groups_and_near_duplicates_of_training(data_write_jsonl):
    train = data_write_jsonl("train.jsonl", grouped_rows("a", 10, 2))
    held = [{"instruction": "A  VARIANT 0 of problem 3", "output": "x", "problem_id": 3},  # near-dup and same group
            {"instruction": "something new", "output": "y", "problem_id": 4},  # same group only
            {"instruction": "also new", "output": "z", "problem_id": 99}]
    val = data_write_jsonl("val.jsonl", held)
    splits = build_splits(config([train], val=[{"path": str(val)}], split={"val": 0.0, "test": 0.0,
                                                                             "group_by": "problem_id"}), seed=0)
    assert splits.overlap["val"] == {"n": 3, "shares_group_with_train": 2, "near_duplicate_of_train": 1,
                                     "reply_near_duplicate_of_train": 0, "prompt_or_reply_near_duplicate_of_train": 1}
    assert splits.overlap["test"] == {"n": 0, "shares_group_with_train": 0, "near_duplicate_of_train": 0,
                                      "reply_near_duplicate_of_train": 0, "prompt_or_reply_near_duplicate_of_train": 0}


def test_overlap_counts_a_trained_reference_answer_asked_in_other_words(data_write_jsonl):
    train = data_write_jsonl("train.jsonl", grouped_rows("a", 10, 2))
    held = [{"instruction": "reworded problem 3", "output": "ANSWER  3.1"},  # reply seen in training
            {"instruction": "a variant 0 of problem 4", "output": "a new answer"},  # prompt seen
            {"instruction": "a variant 1 of problem 5", "output": "answer 5.1"},  # both
            {"instruction": "also new", "output": "z"}]
    test = data_write_jsonl("test.jsonl", held)
    splits = build_splits(config([train], test=[{"path": str(test)}], split={"val": 0.0, "test": 0.0}), seed=0)
    o = splits.overlap["test"]
    assert (o["near_duplicate_of_train"], o["reply_near_duplicate_of_train"],
            o["prompt_or_reply_near_duplicate_of_train"]) == (2, 2, 3)
