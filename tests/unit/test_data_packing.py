"""Packing and collation, and the proof that a packed batch trains exactly like separate examples."""

from __future__ import annotations

import random

import pytest
import torch
import transformers

from tunelab.data.packing import IGNORE, PackedRow, collate, pack_examples, packing_stats
from tunelab.data.types import TokenizedExample


def make_examples(lengths: list[int], seed: int = 0) -> list[TokenizedExample]:
    rng = random.Random(seed)
    out = []
    for n in lengths:
        ids = [rng.randrange(4, 8192) for _ in range(n)]
        # Loss on a random ~60% of tokens, like a prompt/reply mask (first label set on purpose).
        labels = [t if rng.random() < 0.6 else IGNORE for t in ids]
        out.append(TokenizedExample(ids, labels, source=f"s{n % 2}"))
    return out


def test_best_fit_decreasing():
    exs = make_examples([6, 5, 4, 3, 2])
    rows = pack_examples(exs, max_len=10)
    assert [len(r) for r in rows] == [10, 10]  # 6+4 and 5+3+2: no padding at all
    assert [r.position_ids for r in rows] == [
        list(range(6)) + list(range(4)),
        list(range(5)) + list(range(3)) + list(range(2)),
    ]
    assert rows[0].input_ids == exs[0].input_ids + exs[2].input_ids
    # Each example's first label is masked; the rest are copied unchanged.
    assert rows[0].labels == [IGNORE] + exs[0].labels[1:] + [IGNORE] + exs[2].labels[1:]
    assert packing_stats(rows, 10) == {"n_rows": 2, "examples_per_row": 2.5, "fill": 1.0}


def test_packing_keeps_every_example_once_and_is_deterministic():
    lengths = [random.Random(1).randrange(1, 30) for _ in range(40)]
    exs = make_examples(lengths)
    rows = pack_examples(exs, max_len=32)
    assert all(len(r) <= 32 for r in rows)
    assert sum(len(r.sources) for r in rows) == 40
    assert sorted(t for r in rows for t in r.input_ids) == sorted(t for e in exs for t in e.input_ids)
    assert [r.input_ids for r in rows] == [r.input_ids for r in pack_examples(exs, max_len=32)]


def test_too_long_example_is_a_bug():
    with pytest.raises(ValueError, match="does not fit"):
        pack_examples(make_examples([11]), max_len=10)


def test_collate_padded():
    exs = make_examples([3, 5])
    batch = collate(exs, pad_id=3, packed=False)
    assert set(batch) == {"input_ids", "labels", "attention_mask"}
    assert batch["input_ids"][0].tolist() == exs[0].input_ids + [3, 3]
    assert batch["labels"][0].tolist() == exs[0].labels + [IGNORE, IGNORE]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1] * 5]


def test_collate_packed_padding_is_its_own_segment():
    rows = pack_examples(make_examples([4, 3, 2]), max_len=7)  # rows: [4+3], [2]
    batch = collate(rows, pad_id=3, packed=True)
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2], [0, 1, 0, 1, 2, 3, 4]]
    assert batch["labels"][1, 2:].tolist() == [IGNORE] * 5


# ------------------------------------------------------------------------------------------------
# Packed batches give the same per-token losses as the examples run one by one
# ------------------------------------------------------------------------------------------------


def tiny_model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    sizes = dict(vocab_size=8192, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2)
    if arch == "qwen2":
        config, cls = transformers.Qwen2Config(**sizes), transformers.Qwen2ForCausalLM
    else:
        config, cls = transformers.LlamaConfig(**sizes), transformers.LlamaForCausalLM
    config._attn_implementation = "sdpa"
    return cls(config).to(torch.float32).eval()


def token_losses(model, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Per row, the loss of every (shifted) target that is not -100."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        logits = model(**inputs, use_cache=False).logits
    targets = batch["labels"][:, 1:]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="none")
    return [ce[i][targets[i] != IGNORE] for i in range(len(ce))]


EXAMPLE_LENGTHS = [13, 7, 20, 5, 9, 16, 3, 11]


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def model_and_reference(request):
    """A tiny random model and the losses of each example run alone."""
    model = tiny_model(request.param)
    exs = make_examples(EXAMPLE_LENGTHS, seed=2)
    alone = [token_losses(model, collate([ex], pad_id=3, packed=False))[0] for ex in exs]
    return model, exs, alone


def per_example_losses(rows: list[PackedRow], losses: list[torch.Tensor], exs) -> list[torch.Tensor]:
    """Split each packed row's losses back into its examples (in packing order), matched by ids."""
    out: dict[int, torch.Tensor] = {}
    for row, row_losses in zip(rows, losses):
        start = offset = 0
        for n in _segment_lengths(row.position_ids):
            ids = row.input_ids[start : start + n]
            k = next(i for i, e in enumerate(exs) if e.input_ids == ids)
            n_targets = sum(1 for label in row.labels[start + 1 : start + n] if label != IGNORE)
            out[k] = row_losses[offset : offset + n_targets]
            start, offset = start + n, offset + n_targets
        assert offset == len(row_losses)  # no loss term crosses an example boundary
    return [out[k] for k in range(len(exs))]


def _segment_lengths(positions: list[int]) -> list[int]:
    starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
    return [b - a for a, b in zip(starts, starts[1:])]


def test_packed_losses_equal_unpacked(model_and_reference):
    model, exs, alone = model_and_reference
    rows = pack_examples(exs, max_len=32)
    assert any(len(r.sources) > 1 for r in rows) and len({len(r) for r in rows}) > 1  # packing + padding
    packed = per_example_losses(rows, token_losses(model, collate(rows, pad_id=3, packed=True)), exs)
    for got, want in zip(packed, alone):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_padded_batch_losses_equal_unpacked(model_and_reference):
    model, exs, alone = model_and_reference
    losses = token_losses(model, collate(exs, pad_id=3, packed=False))
    for got, want in zip(losses, alone):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_the_comparison_detects_leakage(model_and_reference):
    """Positions 0..L-1 over a whole row (no per-example restart) let examples attend to each
    other: the same comparison must then fail, or the test above proves nothing."""
    model, exs, alone = model_and_reference
    rows = pack_examples(exs, max_len=32)
    batch = collate(rows, pad_id=3, packed=True)
    batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
    leaked = per_example_losses(rows, token_losses(model, batch), exs)
    worst = max((got - want).abs().max().item() for got, want in zip(leaked, alone) if len(want))
    assert worst > 1e-2
