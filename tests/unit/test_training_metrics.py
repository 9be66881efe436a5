"""token_stats is the one loss definition; TokenLossModel's label-only logits must equal it."""

import math

import pytest
import torch
import torch.nn.functional as F

from tunelab.data.packing import PackedRow
from tunelab.data.types import TokenizedExample
from tunelab.training.batches import make_batch
from tunelab.training.metrics import TokenLossModel, loss_positions, same_stats, token_stats, verify_fast_path


@pytest.fixture(scope="module")
def tiny_lora_model():
    """builtin:tiny-random-qwen2 with LoRA; B is randomised so the adapter changes outputs."""
    from tunelab.config import LoraConfig, ModelConfig
    from tunelab.models.loading import load_model
    from tunelab.models.lora import attach_lora

    torch.manual_seed(0)
    model = attach_lora(load_model(ModelConfig(name="builtin:tiny-random-qwen2", dtype="float32"), "cpu"),
                        LoraConfig(r=4))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return model.eval()


def test_token_stats_shifts_and_ignores_masked_labels():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[-100, 1, 2, -100, 4], [-100, -100, 6, 0, -100]])
    loss_sum, n_correct, n_tokens = token_stats(logits, labels)
    # By hand: logits[b, t] predicts labels[b, t + 1].
    pairs = [(b, t) for b in range(2) for t in range(4) if labels[b, t + 1] != -100]
    expected = sum(F.cross_entropy(logits[b, t][None], labels[b, t + 1][None]).item() for b, t in pairs)
    correct = sum(int(logits[b, t].argmax() == labels[b, t + 1]) for b, t in pairs)
    assert int(n_tokens) == len(pairs) == 5
    assert loss_sum.item() == pytest.approx(expected, rel=1e-6)
    assert int(n_correct) == correct


def test_token_stats_pre_shifted_equals_unshifted():
    torch.manual_seed(1)
    logits = torch.randn(3, 6, 11)
    labels = torch.randint(0, 11, (3, 6))
    labels[:, :2] = -100
    index, targets = loss_positions(labels)
    gathered = logits[:, :-1].reshape(-1, 11).index_select(0, index)
    a = token_stats(logits, labels)
    b = token_stats(gathered, targets, shifted=True)
    assert a[0].item() == pytest.approx(b[0].item(), rel=1e-6)
    assert int(a[1]) == int(b[1]) and int(a[2]) == int(b[2]) == targets.numel()
    assert token_stats(logits, labels, accuracy=False)[1] is None


def test_token_stats_all_masked_is_zero_not_nan():
    loss_sum, n_correct, n_tokens = token_stats(torch.randn(1, 4, 5), torch.full((1, 4), -100))
    assert loss_sum.item() == 0.0 and int(n_tokens) == 0 and int(n_correct) == 0


def _examples():
    g = torch.Generator().manual_seed(0)
    out = []
    for n, prompt in ((9, 4), (5, 2), (12, 7), (3, 1)):
        ids = torch.randint(10, 8000, (n,), generator=g).tolist()
        out.append(TokenizedExample(ids, [-100] * prompt + ids[prompt:], source="s"))
    return out


def test_label_only_logits_equal_full_logits_and_grads(tiny_lora_model):
    model = tiny_lora_model
    lm = TokenLossModel(model)
    assert lm.fast
    batch = make_batch(_examples(), pad_id=3, packed=False)
    fast = lm(**batch, accuracy=True)
    full_logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    full = token_stats(full_logits, batch["labels"])
    assert fast[0].item() == pytest.approx(full[0].item(), rel=1e-5)
    assert int(fast[1]) == int(full[1]) and int(fast[2]) == int(full[2])
    # Gradients of the trainable (LoRA) weights agree too.
    params = [p for p in model.parameters() if p.requires_grad]
    g_fast = torch.autograd.grad(fast[0], params, allow_unused=True)
    full_logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    g_full = torch.autograd.grad(token_stats(full_logits, batch["labels"])[0], params, allow_unused=True)
    for a, b in zip(g_fast, g_full):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert verify_fast_path(lm, batch) and lm.fast


def test_packed_and_padding_free_batches_equal_padded(tiny_lora_model):
    """Examples packed into one row (position_ids restart) score exactly as when run alone."""
    lm = TokenLossModel(tiny_lora_model)
    examples = _examples()
    padded = make_batch(examples, pad_id=3, packed=False)
    free = make_batch(examples, pad_id=3, packed=False, pack_to=64)
    assert "position_ids" in free and free["input_ids"].shape[0] == 1
    row = PackedRow()
    for ex in examples:
        row.add(ex)
    packed = make_batch([row], pad_id=3, packed=True)
    assert same_stats(lm, padded, free, rtol=1e-5)
    assert same_stats(lm, padded, packed, rtol=1e-5)
    # Without the per-example restart the loss would differ: the check has teeth.
    leaky = dict(packed, position_ids=torch.arange(packed["input_ids"].shape[1])[None])
    assert not same_stats(lm, padded, leaky, rtol=1e-5)


def test_unusual_model_falls_back_to_full_logits(tiny_lora_model):
    """A model whose logits are not lm_head(decoder(x)) is detected and run with full logits."""
    lm = TokenLossModel(tiny_lora_model)
    batch = make_batch(_examples(), pad_id=3, packed=False)
    head = lm._parts[1]
    lm._parts = (lm._parts[0], lambda h: 2.0 * head(h))  # e.g. a logit scale the wrapper misses
    assert not verify_fast_path(lm, batch)
    assert not lm.fast
    loss, _, n = lm(**batch)
    assert math.isfinite(loss.item()) and int(n) > 0
