"""Render chat examples with a chat template, tokenize them, and mask the prompt.

Which tokens carry loss is computed from the template itself, for any template: the assistant
reply of turn i spans the characters between the rendering of messages[:i] with the generation
prompt (which ends with the assistant header) and the rendering of messages[:i+1], minus the
trailing whitespace. So the reply and the template's end-of-turn marker (`<|im_end|>`,
`<|eot_id|>`, eos, ...) carry loss in every assistant turn and the model learns to stop; the
header, system and user turns do not. Character spans are mapped to tokens with the fast
tokenizer's offsets, so no token boundary is guessed. Templates whose prefixes do not render
consistently (e.g. ones that drop earlier reasoning) fall back to locating each reply's text.

Templates with a thinking switch (Qwen3: `enable_thinking`) render the prompt side by the
switch: off, the generation prompt ends with an empty `<think>\n\n</think>\n\n` block, which is
then part of the prompt (no loss), as evaluation asks with the same value; None leaves the
template's default. `template_kwargs(enable_thinking)` is the one translation of the setting.

No eos is appended: the end-of-turn marker the template writes is what a chat model emits to
stop, and generation must stop on it (`end_of_turn(tokenizer)` names it). The `plain` template
for base models ends each reply with the tokenizer's eos for the same reason.
"""

from __future__ import annotations

from typing import Any

from tunelab.config import DataConfig
from tunelab.data.types import ChatExample, TokenizedExample
from tunelab.errors import DataError

IGNORE = -100  # label value that takes no loss (PyTorch cross-entropy's ignore_index)

# ChatML (Qwen, SmolLM, ...); the generation markers let `return_assistant_tokens_mask` work too.
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{%- else -%}{{ message['content'] + '<|im_end|>\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

# For base models without a template or ChatML tokens: readable markers, eos closes each reply.
PLAIN_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{ message['content'] + '\n\n' }}"
    "{%- elif message['role'] == 'user' -%}{{ '### User:\n' + message['content'] + '\n\n' }}"
    "{%- else -%}{{ '### Assistant:\n' }}"
    "{% generation %}{{ message['content'] + (eos_token or '') }}{% endgeneration %}{{ '\n\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '### Assistant:\n' }}{%- endif -%}"
)

_PROBE = "tunelab-probe-reply"


def template_kwargs(enable_thinking: bool | None) -> dict[str, Any]:
    """Extra `apply_chat_template` arguments for the thinking switch (None: the template's default).
    Templates without the switch ignore the argument."""
    return {} if enable_thinking is None else {"enable_thinking": bool(enable_thinking)}


def resolve_chat_template(tokenizer: Any, mode: str) -> str:
    """Set `tokenizer.chat_template` for `mode` and return the name of what is used.

    Args:
        tokenizer: a transformers tokenizer; its `chat_template` may be replaced.
        mode: "auto" (the tokenizer's own template if it has one, else "chatml" if
            `<|im_start|>` and `<|im_end|>` are in its vocabulary, else "plain"), "chatml" or "plain".

    Returns:
        "tokenizer", "chatml" or "plain".
    """
    if mode == "auto":
        if getattr(tokenizer, "chat_template", None):
            return "tokenizer"
        vocab = tokenizer.get_vocab()
        mode = "chatml" if "<|im_start|>" in vocab and "<|im_end|>" in vocab else "plain"
    if mode not in ("chatml", "plain"):
        raise DataError(f"unknown chat_template '{mode}'; use auto, chatml or plain")
    tokenizer.chat_template = CHATML_TEMPLATE if mode == "chatml" else PLAIN_TEMPLATE
    return mode


def end_of_turn(tokenizer: Any) -> str | None:
    """The text the chat template writes after an assistant reply (e.g. "<|im_end|>"), or None.

    Generation should stop on it: for base models with a ChatML template it is not the eos.
    """
    try:
        text = _render(tokenizer, [{"role": "user", "content": "x"}, {"role": "assistant", "content": _PROBE}])
    except Exception:  # a template that rejects the probe chat: no marker known
        return None
    tail = text[text.rfind(_PROBE) + len(_PROBE) :].strip()
    return tail or None


def tokenize_all(
    examples: list[ChatExample], tokenizer: Any, data_cfg: DataConfig, enable_thinking: bool | None = None
) -> tuple[list[TokenizedExample], dict[str, Any]]:
    """Tokenize, label and truncate examples (see `tokenize_with_origins`, which this wraps)."""
    out, _, stats = tokenize_with_origins(examples, tokenizer, data_cfg, enable_thinking)
    return out, stats


def tokenize_with_origins(
    examples: list[ChatExample], tokenizer: Any, data_cfg: DataConfig, enable_thinking: bool | None = None
) -> tuple[list[TokenizedExample], list[str], dict[str, Any]]:
    """Tokenize examples with the tokenizer's chat template, mask labels, apply truncation.

    `enable_thinking` is the thinking switch of templates that have one (`eval.enable_thinking`:
    training renders as evaluation asks); None = the template's default.

    Labels equal input_ids on assistant replies (plus their end-of-turn marker) and -100
    elsewhere, or on every token when `data_cfg.train_on_prompt`. Truncation to
    `data_cfg.max_seq_len`: "right" keeps the start, "left" keeps the end, "drop" removes the
    example. Examples left with no label token are removed too.

    Returns:
        (kept examples, their origins, stats) with stats: n_examples, n_kept, n_truncated (of the
        kept ones), n_dropped (too long, truncation "drop"), n_no_label (no reply token left after
        truncation), so n_kept + n_dropped + n_no_label == n_examples; then tokens_total,
        label_tokens_total, length_mean, length_p50, length_p95, length_max (after truncation,
        over kept examples).
    """
    max_len, policy = data_cfg.max_seq_len, data_cfg.truncation
    kept: list[TokenizedExample] = []
    origins: list[str] = []
    n_truncated = n_dropped = n_no_label = 0
    for ex in examples:
        ids, labels = label_example(ex, tokenizer, data_cfg.train_on_prompt, enable_thinking)
        truncated = len(ids) > max_len
        if truncated:
            if policy == "drop":
                n_dropped += 1
                continue
            cut = slice(None, max_len) if policy == "right" else slice(len(ids) - max_len, None)
            ids, labels = ids[cut], labels[cut]
        # The first token is never predicted (nothing precedes it), so it cannot carry loss.
        if all(label == IGNORE for label in labels[1:]):
            n_no_label += 1
            continue
        n_truncated += truncated
        kept.append(TokenizedExample(input_ids=ids, labels=labels, source=ex.source, truncated=truncated))
        origins.append(ex.origin)
    lengths = sorted(len(t) for t in kept)
    stats: dict[str, Any] = {
        "n_examples": len(examples),
        "n_kept": len(kept),
        "n_truncated": n_truncated,
        "n_dropped": n_dropped,
        "n_no_label": n_no_label,
        "tokens_total": sum(lengths),
        "label_tokens_total": sum(count_label_tokens(t) for t in kept),
        "length_mean": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
        "length_p50": _percentile(lengths, 50),
        "length_p95": _percentile(lengths, 95),
        "length_max": lengths[-1] if lengths else 0,
    }
    return kept, origins, stats


def label_example(ex: ChatExample, tokenizer: Any, train_on_prompt: bool = False,
                  enable_thinking: bool | None = None) -> tuple[list[int], list[int]]:
    """Render and tokenize one example; return (input_ids, labels) before truncation."""
    try:
        text, spans = assistant_spans(ex.messages, tokenizer, enable_thinking)
    except DataError as e:
        raise DataError(f"{ex.origin}: {e}") from None
    except Exception as e:  # a template's raise_exception() or a Jinja error about this row
        raise DataError(f"{ex.origin}: the chat template cannot render this example: {e}") from None
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        # A token carries loss if its characters overlap a reply span (a token straddling the
        # header/reply boundary still contains reply text the model must produce).
        in_reply = [any(s < end and e > start for start, end in spans) for s, e in enc["offset_mapping"]]
    else:  # slow tokenizers have no offsets: tokenize prompt and reply pieces separately
        ids, in_reply = [], []
        cuts = [0] + [c for span in spans for c in span] + [len(text)]
        for k in range(len(cuts) - 1):
            piece = tokenizer(text[cuts[k] : cuts[k + 1]], add_special_tokens=False)["input_ids"]
            ids += piece
            in_reply += [k % 2 == 1] * len(piece)
    labels = list(ids) if train_on_prompt else [t if m else IGNORE for t, m in zip(ids, in_reply)]
    return ids, labels


def assistant_spans(messages: list[dict[str, str]], tokenizer: Any,
                    enable_thinking: bool | None = None) -> tuple[str, list[tuple[int, int]]]:
    """Render `messages` and return (text, [(start, end) character span of each assistant reply])."""
    kw = template_kwargs(enable_thinking)
    full = _render(tokenizer, messages, **kw)
    spans: list[tuple[int, int]] = []
    cursor = 0
    marker: str | None = None
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], add_generation_prompt=True, **kw) if i else ""
        after = _render(tokenizer, messages[: i + 1], **kw)
        if after.startswith(before) and full.startswith(after) and len(before) >= cursor:
            start, end = len(before), len(after)
        else:
            # Prefix renders disagree with the full one: find the reply text itself, then the
            # end-of-turn marker right after it.
            reply = msg["content"].strip()
            start = full.find(reply, cursor)
            if start < 0:
                raise DataError(
                    "cannot locate an assistant reply in the rendered chat template; "
                    "set data.chat_template: chatml (or plain)"
                )
            end = start + len(reply)
            marker = marker if marker is not None else (end_of_turn(tokenizer) or "")
            rest = full[end:]
            if marker and rest.lstrip().startswith(marker):
                end += len(rest) - len(rest.lstrip()) + len(marker)
        while end > start and full[end - 1].isspace():
            end -= 1  # the newline after "<|im_end|>" is layout, not something to learn
        spans.append((start, end))
        cursor = end
    return full, spans


def count_label_tokens(ex: TokenizedExample) -> int:
    """Tokens that take loss: labels != -100, except position 0 which nothing predicts."""
    return sum(1 for label in ex.labels[1:] if label != IGNORE)


def mask_segments(ex: TokenizedExample, tokenizer: Any) -> list[tuple[str, bool]]:
    """Split an example into runs of (decoded text, carries loss) for previews of the label mask."""
    runs: list[tuple[list[int], bool]] = []
    for pos, (tok, label) in enumerate(zip(ex.input_ids, ex.labels)):
        trained = label != IGNORE and pos > 0
        if runs and runs[-1][1] == trained:
            runs[-1][0].append(tok)
        else:
            runs.append(([tok], trained))
    return [(tokenizer.decode(ids, skip_special_tokens=False), trained) for ids, trained in runs]


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False,
            **kwargs: Any) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise DataError("the tokenizer has no chat template; call resolve_chat_template first")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **kwargs)


def _percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return sorted_values[int(rank) - 1]
