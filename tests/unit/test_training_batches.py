"""Data order: seeded, complete per epoch, disjoint across ranks, resumable at any position."""

import torch

from tunelab.data.types import TokenizedExample
from tunelab.training.batches import DataOrder, DataPosition, make_batch, row_tokens


def walk(order: DataOrder, pos: DataPosition, n: int):
    out = []
    for _ in range(n):
        idx, pos = order.take(pos)
        out.append(idx)
    return out, pos


def test_each_epoch_visits_every_row_once_in_a_new_order():
    order = DataOrder(n=10, batch_size=3, seed=7)
    assert order.per_epoch == 4
    batches, pos = walk(order, DataPosition(), 8)
    epoch0 = [i for b in batches[:4] for i in b]
    epoch1 = [i for b in batches[4:] for i in b]
    assert sorted(epoch0) == sorted(epoch1) == list(range(10))
    assert epoch0 != epoch1
    assert pos == DataPosition(2, 0)
    assert order.epoch_float(DataPosition(1, 2)) == 1.5


def test_same_seed_same_order_and_resume_mid_epoch():
    a, _ = walk(DataOrder(20, 4, seed=1), DataPosition(), 9)
    b, _ = walk(DataOrder(20, 4, seed=2), DataPosition(), 9)
    assert a != b
    first, pos = walk(DataOrder(20, 4, seed=1), DataPosition(), 6)
    rest, _ = walk(DataOrder(20, 4, seed=1), pos, 3)  # a new object, as after a restart
    assert first + rest == a


def test_ranks_get_disjoint_full_shards_of_the_global_batch():
    n, bs = 11, 2
    single = DataOrder(n, bs * 2, seed=3)
    r0, r1 = DataOrder(n, bs, 3, world_size=2, rank=0), DataOrder(n, bs, 3, world_size=2, rank=1)
    assert r0.per_epoch == r1.per_epoch == 3
    pos = DataPosition()
    seen = []
    for _ in range(3):
        a, _ = r0.take(pos)
        b, nxt = r1.take(pos)
        assert len(a) == len(b) == bs  # wrap-around keeps every rank's batch full
        assert not set(a) & set(b) or pos.index == 2
        seen += a + b
        # The two ranks together see what one process with the doubled batch sees.
        if pos.index < 2:
            assert a + b == single.take(pos)[0]
        pos = nxt
    assert set(seen) == set(range(n))


def test_make_batch_adds_loss_positions_and_masks_packed_starts():
    rows = [TokenizedExample([5, 6, 7, 8], [-100, -100, 7, 8], "s"), TokenizedExample([9, 10], [9, 10], "s")]
    b = make_batch(rows, pad_id=3, packed=False)
    assert b["input_ids"].tolist() == [[5, 6, 7, 8], [9, 10, 3, 3]]
    # Flat positions in [B, T-1] whose next token has a label, and those labels.
    assert b["loss_index"].tolist() == [1, 2, 3] and b["targets"].tolist() == [7, 8, 10]
    assert row_tokens(rows) == 6
    free = make_batch(rows, pad_id=3, packed=False, pack_to=8)
    assert free["input_ids"].shape == (1, 6) and "attention_mask" not in free
    assert free["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1]]
    # The second example's first token is never a target of the first example's last token.
    assert sorted(free["targets"].tolist()) == [7, 8, 10]
    assert torch.equal(free["labels"][0, 4], torch.tensor(-100))
