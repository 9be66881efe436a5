"""prepare -> PreparedData, the run directory's data manifest, `data inspect` and `data validate`."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from tunelab.config import Experiment
from tunelab.data.inspect import render_inspect, validate_data
from tunelab.data.packing import PackedRow
from tunelab.data.pipeline import prepare, write_manifest
from tunelab.errors import DataError


def rows(tag: str, n: int) -> list[dict]:
    return [{"instruction": f"{tag} task {i}", "output": f"{tag} answer {i}"} for i in range(n)]


def experiment(paths, **data) -> Experiment:
    return Experiment.model_validate({
        "model": {"name": "builtin:tiny-code"},
        "seed": 1,
        "data": {"sources": [{"path": str(p)} for p in paths], **data},
    })


@pytest.fixture
def two_files(data_write_jsonl):
    return [data_write_jsonl("code.jsonl", rows("code", 10)), data_write_jsonl("math.jsonl", rows("math", 10))]


def test_prepare_tokenizes_every_split_and_records_stats(two_files, data_tokenizer):
    prepared = prepare(experiment(two_files, split={"val": 0.2, "test": 0.1}), data_tokenizer)
    assert (len(prepared.train), len(prepared.val), len(prepared.test)) == (14, 4, 2)
    assert prepared.train is prepared.train_examples
    stats = prepared.stats
    assert stats["counts"] == {
        "train": {"code": 7, "math": 7}, "val": {"code": 2, "math": 2}, "test": {"code": 1, "math": 1},
    }
    assert stats["kept"] == stats["counts"]
    assert stats["chat_template"] == "tokenizer"
    assert stats["end_of_turn"] == "<|im_end|>"
    assert stats["train_on_prompt"] is False
    assert "'<|im_end|>'" in stats["masking"] and "masked" in stats["masking"]
    assert stats["tokens"]["train"]["n_kept"] == 14
    assert "<|im_start|>assistant\n⟦" in stats["preview"] and "<|im_end|>⟧" in stats["preview"]
    json.dumps(stats)  # serialisable as is
    # Origins line up with the examples they describe.
    first = prepared.origins["train"][0]
    path, line = first.rsplit(":", 1)
    row = json.loads(open(path).read().splitlines()[int(line) - 1])
    assert data_tokenizer.decode(prepared.train[0].input_ids).count(row["output"]) == 1


def test_prepare_with_packing_returns_packed_train_rows(two_files, data_tokenizer):
    prepared = prepare(experiment(two_files, packing=True, max_seq_len=64), data_tokenizer)
    assert all(isinstance(r, PackedRow) and len(r) <= 64 for r in prepared.train)
    assert sum(len(r.sources) for r in prepared.train) == len(prepared.train_examples) == 16
    packing = prepared.stats["packing"]
    assert packing["enabled"] and packing["n_rows"] == len(prepared.train) and 0 < packing["fill"] <= 1
    assert not any(isinstance(r, PackedRow) for r in prepared.val)  # evaluation stays unpacked


def test_prepare_fails_clearly_when_nothing_is_left(two_files, data_tokenizer):
    with pytest.raises(DataError, match="no training example left.*max_seq_len=8"):
        prepare(experiment(two_files, max_seq_len=8, truncation="drop"), data_tokenizer)


def test_write_manifest(two_files, data_tokenizer, tmp_path):
    prepared = prepare(experiment(two_files, train_on_prompt=True), data_tokenizer)
    out = tmp_path / "run" / "data"
    write_manifest(prepared, out)
    assert json.loads((out / "stats.json").read_text())["train_on_prompt"] is True
    for split in ("train", "val", "test"):
        lines = [json.loads(x) for x in (out / f"{split}.manifest.jsonl").read_text().splitlines()]
        examples = prepared.examples(split)
        assert len(lines) == len(examples)
        assert [x["origin"] for x in lines] == prepared.origins[split]
        assert [x["n_tokens"] for x in lines] == [len(e) for e in examples]
        # train_on_prompt: every token but the first takes loss
        assert all(x["n_label_tokens"] == x["n_tokens"] - 1 for x in lines)
        assert {x["source"] for x in lines} == {"code", "math"}
    assert not list(out.glob("*.tmp"))


def test_render_inspect_shows_counts_stats_and_the_mask(two_files, data_tokenizer):
    console = Console(record=True, width=140, color_system=None)
    render_inspect(experiment(two_files), data_tokenizer, n_examples=2, console=console)
    text = console.export_text()
    for needle in ("code", "math", "chat template: tokenizer", "end of turn: '<|im_end|>'",
                   "train_on_prompt: False", "Legend:", "train example 2", "packing: off"):
        assert needle in text, needle
    assert "train example 3" not in text
    # Reply and end-of-turn marked; the prompt not.
    assert "<|im_start|>assistant\n⟦" in text and "<|im_end|>⟧" in text
    assert "⟦<|im_start|>user" not in text


def test_render_inspect_colours_loss_tokens(two_files, data_tokenizer):
    console = Console(record=True, width=140, force_terminal=True, color_system="standard")
    render_inspect(experiment(two_files), data_tokenizer, n_examples=1, console=console)
    ansi = console.export_text(styles=True)
    assert "\x1b[1;32m⟦" in ansi  # bold green on the reply
    assert "\x1b[2m<|im_start|>" in ansi  # dim prompt


def test_validate_lists_every_problem(tmp_path, data_write_jsonl):
    good = data_write_jsonl("good.jsonl", rows("ok", 10))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"instruction": "a", "output": "b"}) + "\n"
        + "{not json\n"
        + json.dumps({"instruction": "c"}) + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n",
        encoding="utf-8",
    )
    errors = validate_data(experiment([good, bad, tmp_path / "missing.jsonl"]))
    assert [e.split(": ")[0] for e in errors[:3]] == [f"{bad}:2", f"{bad}:3", f"{bad}:4"]
    assert "field 'output' is missing" in errors[1]
    assert "no assistant message" in errors[2]
    assert any("too few to split" in e and str(bad) in e for e in errors)  # 1 good row left
    assert any("data file not found" in e and "missing.jsonl" in e for e in errors)
    assert validate_data(experiment([good])) == []
