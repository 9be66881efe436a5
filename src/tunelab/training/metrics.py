"""Loss and token accuracy: defined once, here.

`token_stats` is the one definition of the loss (sum of next-token cross-entropies over the
tokens that carry a label) and of token accuracy (argmax == label on those tokens). Every
caller (training step, evaluation, benchmarks) sums its three numbers and divides at the end,
so a mean is always "total loss / total label tokens", never a mean of per-batch means.

`TokenLossModel` wraps a causal LM so that its forward returns those sums directly, computing
logits only at the positions that carry a label: the decoder runs on every token, but the
output embedding (hidden -> vocab, the biggest matmul and the softmax of small models) runs on
the N labelled positions only, not on B*T. Prompt tokens and padding never get vocab logits.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_INDEX = -100
log = logging.getLogger(__name__)


def token_stats(
    logits: Tensor, labels: Tensor, shifted: bool = False, accuracy: bool = True
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Sum of next-token losses, number of correct argmax predictions, number of label tokens.

    Args:
        logits: `[B, T, V]` logits of every position (`shifted=False`), or `[N, V]` logits of
            positions already paired with their next-token target (`shifted=True`).
        labels: `[B, T]` token ids aligned with the inputs, -100 where no loss is taken
            (`shifted=False`: the causal shift is applied here, logits[:, t] predicts
            labels[:, t+1]); or `[N]` targets already shifted (`shifted=True`).
        accuracy: also count correct predictions (an argmax over logits computed anyway).

    Returns:
        `(loss_sum, n_correct, n_tokens)` as 0-dim tensors; `loss_sum` is in float32 and keeps
        its graph; `n_correct` is None when `accuracy` is False.
    """
    if not shifted:
        logits = logits[:, :-1, :].reshape(-1, logits.size(-1))
        labels = labels[:, 1:].reshape(-1)
    logits = logits.float()  # [N, V]: bf16 log-softmax over a large vocab loses too much
    loss_sum = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    valid = labels != IGNORE_INDEX
    n_tokens = valid.sum()
    n_correct = None
    if accuracy:
        n_correct = ((logits.detach().argmax(-1) == labels) & valid).sum()
    return loss_sum, n_correct, n_tokens


def loss_positions(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Flat indices into `[B, T-1]` of the positions whose next token carries a label, and
    those targets. Computed on the CPU copy of the batch, so the device never has to sync
    on a boolean mask to learn N."""
    targets = labels[:, 1:].reshape(-1)  # [B*(T-1)]
    index = (targets != IGNORE_INDEX).nonzero().squeeze(1)  # [N]
    return index, targets.index_select(0, index)


class TokenLossModel(nn.Module):
    """A causal LM whose forward returns `token_stats` sums instead of logits.

    Call it with the collated batch plus `loss_index`/`targets` from `loss_positions`. When the
    model is a plain decoder + output embedding (checked numerically by `verify_fast_path`),
    logits are computed at the labelled positions only; otherwise the full-logits forward is
    used. Wrapping the whole computation in one module is what lets DDP see every use of the
    trainable weights through its own forward.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        # Not registered as submodules: they are parts of `self.model` already.
        self._parts = _decoder_and_head(model)

    @property
    def fast(self) -> bool:
        return self._parts is not None

    def disable_fast_path(self) -> None:
        self._parts = None

    def forward(
        self,
        input_ids: Tensor,
        labels: Tensor,
        loss_index: Tensor,
        targets: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        accuracy: bool = False,
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        # use_cache=False always: with a cache object, transformers skips the packed-sequence
        # mask built from position_ids and packed examples would attend to each other.
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask,
                  "position_ids": position_ids, "use_cache": False}
        if self._parts is None:
            logits = self.model(**inputs).logits  # [B, T, V]
            return token_stats(logits, labels, accuracy=accuracy)
        decoder, head = self._parts
        hidden = decoder(**inputs).last_hidden_state  # [B, T, H]
        hidden = hidden[:, :-1, :].reshape(-1, hidden.size(-1))  # [B*(T-1), H]
        logits = head(hidden.index_select(0, loss_index))  # [N, V]
        return token_stats(logits, targets, shifted=True, accuracy=accuracy)


def _decoder_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """The decoder (returning last_hidden_state) and output embedding of a causal LM, or None.

    Works through a PEFT wrapper: LoRA layers are injected in place, so calling the inner
    decoder runs them too.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    get_decoder = getattr(inner, "get_decoder", None)
    get_head = getattr(inner, "get_output_embeddings", None)
    if get_decoder is None or get_head is None:
        return None
    try:
        decoder, head = get_decoder(), get_head()
    except (AttributeError, NotImplementedError, ValueError):
        return None
    if decoder is None or head is None or decoder is inner:
        return None
    cfg = getattr(inner, "config", None)
    # Models that post-process logits (soft-capping, scaling) need their own forward.
    for attr in ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale"):
        value = getattr(cfg, attr, None)
        if value not in (None, 1, 1.0):
            return None
    return decoder, head


@torch.no_grad()
def _eval_stats(loss_model: TokenLossModel, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    was_training = loss_model.training
    loss_model.eval()  # no dropout: the comparison must be deterministic
    out = loss_model(**batch, accuracy=True)
    loss_model.train(was_training)
    return out


def _close(a: tuple[Tensor, Tensor, Tensor], b: tuple[Tensor, Tensor, Tensor], rtol: float) -> bool:
    """Same loss (to rtol), same token count, accuracy equal up to near-ties (1%)."""
    return (
        bool(torch.isclose(a[0], b[0], rtol=rtol, atol=1e-4))
        and int(a[2]) == int(b[2])
        and abs(int(a[1]) - int(b[1])) <= max(1, int(a[2]) // 100)
    )


def same_stats(loss_model: TokenLossModel, a: dict[str, Tensor], b: dict[str, Tensor], rtol: float = 1e-3) -> bool:
    """Whether two layouts of the same examples (e.g. padded and packed) give the same sums."""
    return _close(_eval_stats(loss_model, a), _eval_stats(loss_model, b), rtol)


def verify_fast_path(loss_model: TokenLossModel, batch: dict[str, Tensor], rtol: float = 1e-3) -> bool:
    """Check once that the labelled-positions-only loss equals the full-logits loss on `batch`;
    switch to full logits (and say so) if it does not. Returns whether the fast path is on."""
    if not loss_model.fast:
        return False
    parts = loss_model._parts
    fast = _eval_stats(loss_model, batch)
    loss_model._parts = None
    full = _eval_stats(loss_model, batch)
    ok = _close(fast, full, rtol)
    if ok:
        loss_model._parts = parts
    else:
        log.warning(
            "this model's logits are not decoder -> output embedding (loss %.6g vs %.6g); "
            "computing full logits instead (slower)", float(fast[0]), float(full[0]),
        )
    return ok
