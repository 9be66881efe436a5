"""Token-by-token decoding with logprobs and stop handling, for one sequence or a batch of them.

The server, `tunelab chat` and nothing else generate through `decode_batch` (`stream_tokens` is
its one-sequence form): a batch of prompts, left-padded under an attention mask, one forward pass
per token for every unfinished row over the model's KV cache. Each row samples with its own
settings and random state and stops on its own end-of-sequence ids, stop strings or max_tokens;
a finished row leaves the batch (its cache rows are dropped), so it never touches the others.
Greedy decoding picks the same tokens as `TransformersGenerator` (transformers' `generate`), so
the server answers what `tunelab eval` would see in-process.

Text is released in pieces that can never turn into a stop string later: the tail of the
decoded text that is a prefix of some stop string is held back until the next token decides it,
and a tail that decodes to U+FFFD (half of a multi-byte character) waits for the rest. So a
streamed answer, concatenated, equals the non-streamed one, and neither contains the stop text.

The queue and the thread that call this live in `serve.worker`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens. temperature 0 = greedy; logprobs are of the model's own distribution."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)


@dataclass
class TokenInfo:
    """One generated token: its text, logprob, and the `top_logprobs` best alternatives."""

    id: int
    text: str
    logprob: float
    top: list[tuple[str, float]]


@dataclass
class Delta:
    """A piece of released text with the tokens it came from; the last one has `finish_reason`."""

    text: str
    tokens: list[TokenInfo]
    finish_reason: str | None = None  # "stop", "length" or "cancelled"
    completion_tokens: int = 0  # set on the last delta: tokens generated, stop token included


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of `text` that is a proper prefix of a stop string."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best


def _find_stop(text: str, stops: Sequence[str], start: int) -> int:
    """Index of the earliest stop string that ends after `start`, or -1."""
    hits = [i for s in stops if (i := text.find(s, max(0, start - len(s) + 1))) >= 0]
    return min(hits) if hits else -1


class _TokenText:
    """Cache of single-token texts (for logprob entries): decode each vocabulary id once."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok, self.cache = tokenizer, {}

    def __call__(self, tid: int) -> str:
        if tid not in self.cache:
            self.cache[tid] = self.tok.decode([tid], skip_special_tokens=False)
        return self.cache[tid]


def _pick(logits: torch.Tensor, s: Sampling, counts: dict[int, int], gen: torch.Generator | None) -> int:
    """Choose the next token from `logits` [V] after bias, penalties, temperature and top-p."""
    if s.logit_bias or (counts and (s.presence_penalty or s.frequency_penalty)):
        logits = logits.clone()
        for tid, bias in s.logit_bias.items():
            logits[tid] += bias
        if counts and (s.presence_penalty or s.frequency_penalty):
            ids = torch.tensor(list(counts), device=logits.device)
            n = torch.tensor(list(counts.values()), dtype=logits.dtype, device=logits.device)
            logits[ids] -= s.frequency_penalty * n + s.presence_penalty
    if s.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / s.temperature, dim=-1)
    if s.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        drop = torch.cumsum(sorted_p, dim=-1) - sorted_p >= s.top_p
        sorted_p[drop] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=gen))


@dataclass
class Seq:
    """One answer to decode: its prompt, how to pick tokens, and what ends it."""

    prompt_ids: Sequence[int]
    sampling: Sampling
    stop_ids: Sequence[int] = ()  # eos, end-of-turn: end the answer, not part of the text
    generator: torch.Generator | None = None  # random state for sampling (unused when greedy)
    cancelled: Callable[[], bool] | None = None  # polled before every step; True ends it "cancelled"


class _Answer:
    """The decoding state of one row: tokens so far, and how much of their text is final."""

    def __init__(self, seq: Seq, tokenizer: Any, token_text: _TokenText) -> None:
        self.seq, self.tok, self.token_text = seq, tokenizer, token_text
        self.stops = [s for s in seq.sampling.stop if s]
        self.stop_set = set(seq.stop_ids)
        self.generated: list[int] = []
        self.counts: dict[int, int] = {}
        self.pending: list[TokenInfo] = []  # tokens whose text is not released yet
        self.released = 0  # characters of the decoded text already yielded
        self.text = ""
        self.done = False

    def end(self, reason: str, text: str = "") -> Delta:
        self.done = True
        return Delta(text, self.pending, reason, len(self.generated))

    def push(self, logits: torch.Tensor) -> Delta | None:
        """Pick the next token from `logits` [V]; return the text it makes final, if any."""
        s = self.seq.sampling
        tid = _pick(logits, s, self.counts, self.seq.generator)
        self.generated.append(tid)
        if s.logprobs:
            logp = torch.log_softmax(logits, dim=-1)
            top = []
            if s.top_logprobs:
                vals, idx = torch.topk(logp, s.top_logprobs)
                top = [(self.token_text(int(i)), float(v)) for v, i in zip(vals, idx)]
            self.pending.append(TokenInfo(tid, self.token_text(tid), float(logp[tid]), top))
        if tid in self.stop_set:
            # The end-of-sequence token carries no text: release whatever was held back.
            return self.end("stop", self.text[self.released:])
        self.counts[tid] = self.counts.get(tid, 0) + 1
        text = self.text = self.tok.decode(self.generated, skip_special_tokens=True)
        hit = _find_stop(text, self.stops, self.released)
        if hit >= 0:
            return self.end("stop", text[self.released:hit])
        if len(self.generated) >= s.max_tokens:
            return self.end("length", text[self.released:])
        if not text.endswith("\ufffd"):
            safe = len(text) - _held_back(text, self.stops)
            if safe > self.released or (self.pending and safe == len(text)):
                delta = Delta(text[self.released:safe], self.pending)
                self.pending, self.released = [], safe
                return delta
        return None


def _forward_params(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inspect.signature(base.forward).parameters


def _takes_logits_to_keep(model: Any) -> bool:
    return "logits_to_keep" in _forward_params(model)


def _cache_name(model: Any) -> str:
    """The forward keyword (and output field) of the KV cache: `cache` in recent transformers,
    where `past_key_values` still works but warns on every server start; `past_key_values` before."""
    return "cache" if "cache" in _forward_params(model) else "past_key_values"


@torch.inference_mode()
def decode_batch(model: Any, tokenizer: Any, seqs: Sequence[Seq]) -> Iterator[tuple[int, Delta]]:
    """Generate one continuation of each of `seqs` together, yielding text as it becomes final.

    Args:
        model: a causal LM (plain or PEFT) with the wanted adapter already active.
        tokenizer: decodes the generated ids.
        seqs: the answers to generate; prompts may differ in length (they are left-padded).

    Yields:
        (index into `seqs`, `Delta`); each sequence's last delta has `finish_reason` and
        `completion_tokens` set.
    """
    token_text = _TokenText(tokenizer)
    answers = [_Answer(s, tokenizer, token_text) for s in seqs]
    device = model.device
    width = max(len(s.prompt_ids) for s in seqs)
    # Left padding: [B, T] with every prompt flush right, so each row's next token is column -1.
    # The pad id is arbitrary: the mask hides it, and position ids count real tokens only.
    ids = torch.tensor([[0] * (width - len(s.prompt_ids)) + list(s.prompt_ids) for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s.prompt_ids)) + [1] * len(s.prompt_ids) for s in seqs], device=device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]
    live = list(range(len(seqs)))  # the sequence in each batch row
    past = None
    extra = {"logits_to_keep": 1} if _takes_logits_to_keep(model) else {}
    cache_name = _cache_name(model)

    def keep(rows: list[int]) -> None:
        nonlocal ids, mask, pos, live
        if len(rows) == len(live):
            return
        if not rows:  # everyone is done: nothing left to select
            live = []
            return
        idx = torch.tensor(rows, dtype=torch.long, device=device)
        if past is not None:
            past.batch_select_indices(idx)
        ids, mask, pos, live = ids[idx], mask[idx], pos[idx], [live[k] for k in rows]

    while True:
        # Rows whose client gave up (or that may not generate at all) leave before the next step.
        rows = []
        for k, i in enumerate(live):
            s = seqs[i]
            if s.cancelled is not None and s.cancelled():
                yield i, answers[i].end("cancelled")
            elif s.sampling.max_tokens <= 0:
                yield i, answers[i].end("length")
            else:
                rows.append(k)
        keep(rows)
        if not live:
            return
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **{cache_name: past}, **extra)
        past = getattr(out, cache_name)
        logits = out.logits[:, -1].float()  # [B, V]
        rows, nxt = [], []
        for k, i in enumerate(live):
            delta = answers[i].push(logits[k])
            if delta is not None:
                yield i, delta
            if not answers[i].done:
                rows.append(k)
                nxt.append(answers[i].generated[-1])
        keep(rows)
        if not live:
            return
        ids = torch.tensor(nxt, device=device)[:, None]  # [B, 1]
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
        pos = pos[:, -1:] + 1


def stream_tokens(model: Any, tokenizer: Any, prompt_ids: Sequence[int], sampling: Sampling,
                  stop_ids: Sequence[int] = (), cancelled: Callable[[], bool] | None = None,
                  generator: torch.Generator | None = None) -> Iterator[Delta]:
    """Generate one continuation of `prompt_ids` (a batch of one), yielding text as it becomes final.

    Args:
        model: a causal LM (plain or PEFT) with the wanted adapter already active.
        prompt_ids: the prompt's token ids (chat template already applied).
        stop_ids: token ids that end the answer (eos, end-of-turn); not part of the text.
        cancelled: polled before every step; True ends the answer with finish_reason "cancelled".
        generator: random state for sampling (seeded by the caller for reproducibility).

    Yields:
        `Delta`s; the last one has `finish_reason` and `completion_tokens` set.
    """
    for _, delta in decode_batch(model, tokenizer, [Seq(prompt_ids, sampling, stop_ids, generator, cancelled)]):
        yield delta


def make_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A random state for one request: seeded when the client gave a seed, else fresh entropy."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen
