"""Next-token view: what each variant would say first, and how far apart the variants are.

For each prompt, rendered with the run's chat template exactly as in training (the text before
the reply, generation prompt included, tokenized without extra special tokens), the
distribution of the first reply token: top-k tokens with probabilities per variant, entropy,
and KL / Jensen-Shannon divergence to the reference variant, in bits. Beyond the first token,
one reply per prompt is scored token by token by every variant (teacher-forced): the case's
reference reply when it has one, else the tuned variant's greedy output. That gives each
variant's probability of every reply token and its own top-1 token there, which shows where in
an answer fine-tuning moved the model, not only how it starts. Each prompt is also
looked up in the run's training split (exact, or a near duplicate by character 5-gram Jaccard),
because a "changed" answer on a prompt the model trained on shows memorisation, not transfer.

`print_next_token` shows the same numbers on the console, one table per prompt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tunelab.errors import ConfigError, did_you_mean

LOG2 = 0.6931471805599453  # ln 2: nats -> bits


@dataclass
class PromptCase:
    """One prompt to compare on: chat messages before the reply, and the reference reply if known."""

    id: str
    messages: list[dict[str, str]]
    reference: str | None = None
    origin: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def readable_token(token: str, limit: int | None = None) -> str:
    """A token as readable text: newlines and tabs as `\\n` / `\\t`, spaces as `␣` where they
    lead or trail, the empty token as `∅`; beyond `limit` characters cut with a visible `…`."""
    shown = token.replace("\n", "\\n").replace("\t", "\\t")
    if shown.strip() != shown or not shown:
        shown = shown.replace(" ", "␣")
    shown = shown or "∅"
    return shown if limit is None or len(shown) <= limit else shown[: limit - 1] + "…"


def prob_text(p: float) -> str:
    """A probability for a label: three decimals, or two significant digits below 0.001."""
    return f"{p:.3f}" if p >= 0.001 or p == 0 else f"{p:.1e}"


def prompt_cases(exp: Any, splits: Any | None) -> list[PromptCase]:
    """`compare.prompts` as user messages (after the first source's system prompt, as training
    adds it), then `compare.prompt_ids`: the run's examples with those ids or origins (looked up in test,
    val, then train), with their reference replies. With neither, the first `compare.n_prompts`
    of the test split (val, then train, if empty).

    Raises:
        ConfigError: an id that no example of the run's splits has (with the closest id).
    """
    cfg = exp.compare
    cases = []
    if cfg.prompts:
        system = exp.data.sources[0].system_prompt
        pre = [{"role": "system", "content": system}] if system else []
        cases = [PromptCase(f"prompt-{i}", pre + [{"role": "user", "content": p}], None, "compare.prompts")
                 for i, p in enumerate(cfg.prompts)]
    if (cases and not cfg.prompt_ids) or splits is None:
        return cases
    names = ("test", "val", "train")
    if cfg.prompt_ids:
        by_id: dict[str, tuple[Any, str]] = {}
        for name in names:
            for ex in getattr(splits, name):
                by_id.setdefault(ex.id, (ex, name))
                by_id.setdefault(ex.origin, (ex, name))  # rows without ids: `hub-id[17]`, `file.jsonl:3`
        for wanted in cfg.prompt_ids:
            if wanted not in by_id:
                raise ConfigError(f"compare.prompt_ids: no example of this run's splits has id '{wanted}'"
                                  f"{did_you_mean(wanted, [i for i in by_id if i])}")
            cases.append(_case(*by_id[wanted], wanted))
        return cases
    pool, name = next(((getattr(splits, s), s) for s in names if getattr(splits, s)), ([], ""))
    return [_case(ex, name, ex.id or f"{name}-{i}") for i, ex in enumerate(pool[: cfg.n_prompts])]


def _case(ex: Any, split: str, case_id: str) -> PromptCase:
    """A ChatExample as a case: the messages before its last reply, and that reply."""
    last = max(j for j, m in enumerate(ex.messages) if m["role"] == "assistant")
    return PromptCase(case_id, ex.messages[:last], ex.messages[last]["content"], ex.origin,
                      {"split": split, "source": ex.source})


# ---- does the prompt occur in training? --------------------------------------------------------


def prompt_key(messages: Sequence[dict[str, str]]) -> str:
    """The prompt part of a chat (everything but assistant turns), lower-cased, whitespace collapsed."""
    text = " ".join(m["content"] for m in messages if m["role"] != "assistant")
    return re.sub(r"\s+", " ", text).strip().lower()


def shingles(text: str, n: int = 5) -> set[str]:
    """Character n-grams of a normalised text (the whole text if shorter)."""
    return {text[i : i + n] for i in range(max(1, len(text) - n + 1))}


def training_overlap(cases: Sequence[PromptCase], train: Sequence[Any], threshold: float) -> list[dict[str, Any]]:
    """For each case: "exact", "near" (Jaccard >= threshold) or "no", with the closest training
    prompt's similarity and origin. `train` holds ChatExamples of the training split; the
    prompt of a training example is every non-assistant message before its last reply."""
    keys = []
    for ex in train:
        last = max((j for j, m in enumerate(ex.messages) if m["role"] == "assistant"), default=len(ex.messages))
        keys.append((prompt_key(ex.messages[:last]), ex.origin))
    exact = {k: o for k, o in keys}
    grams = [(shingles(k), k, o) for k, o in keys]
    out = []
    for case in cases:
        key = prompt_key(case.messages)
        if key in exact:
            out.append({"status": "exact", "similarity": 1.0, "origin": exact[key]})
            continue
        mine = shingles(key)
        best, origin, text = 0.0, None, ""
        for g, k, o in grams:
            union = len(mine | g)
            sim = len(mine & g) / union if union else 0.0
            if sim > best:
                best, origin, text = sim, o, k
        out.append({"status": "near" if best >= threshold else "no", "similarity": round(best, 4),
                    "origin": origin, "closest": text[:200]})
    return out


# ---- distributions --------------------------------------------------------------------------------


@torch.no_grad()
def next_token_logprobs(model: Any, tokenizer: Any, texts: Sequence[str]) -> torch.Tensor:
    """[len(texts), vocab] log-probabilities (float64, CPU) of the token after each text.

    One prompt per forward pass: no padding, so nothing about batching can move the numbers.
    Texts are rendered chat prompts, tokenized like training (`add_special_tokens=False`).
    """
    rows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
        logits = model(input_ids=ids).logits[0, -1].float()  # [vocab]
        rows.append(torch.log_softmax(logits.double(), dim=-1).cpu())
    return torch.stack(rows) if rows else torch.zeros(0, 0, dtype=torch.float64)


@torch.no_grad()
def reply_token_probs(model: Any, tokenizer: Any, prompt_text: str, reply: str, max_tokens: int) -> dict[str, Any]:
    """Teacher-forced scoring of `reply` after the rendered `prompt_text`.

    The prompt is tokenized as in `next_token_logprobs` and the reply on its own (both without
    extra special tokens), at most `max_tokens` reply tokens. One forward pass over prompt + reply.

    Returns:
        {"ids": reply token ids, "prob": probability of each reply token given everything before
        it, "top1": the variant's most likely token id at each reply position}.
    """
    p_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(reply, add_special_tokens=False)["input_ids"][:max_tokens]
    if not r_ids or not p_ids:
        return {"ids": [], "prob": [], "top1": []}
    ids = torch.tensor([p_ids + r_ids], device=model.device)
    logits = model(input_ids=ids).logits[0, len(p_ids) - 1 : -1].float()  # [len(reply), vocab]
    logp = torch.log_softmax(logits, dim=-1)
    target = torch.tensor(r_ids, device=logp.device)[:, None]
    probs = logp.gather(-1, target).squeeze(-1).double().exp()
    return {"ids": r_ids, "prob": [float(x) for x in probs.cpu()], "top1": [int(x) for x in logp.argmax(-1).cpu()]}


def reply_view(tokenizer: Any, source: str, scored: dict[str, dict[str, Any]], reference: str) -> dict[str, Any]:
    """The per-token view of one reply scored by every variant (`scored`: variant -> the output of
    `reply_token_probs`): decoded tokens, each variant's probabilities and top-1 tokens, its mean
    negative log-likelihood in bits per token, how often its top-1 is the reply's token, and the
    tokens whose probability moved most against `reference`."""
    ids = next(iter(scored.values()))["ids"]
    if any(r["ids"] != ids for r in scored.values()):
        return {"source": source, "skipped": "the variants tokenize this reply differently; no per-token comparison"}
    dec = [tokenizer.decode([i]) for i in ids]
    view: dict[str, Any] = {"source": source, "tokens": dec, "prob": {}, "top1": {}, "mean_nll_bits": {},
                            "top1_agreement": {}, "largest_changes": {}}
    for v, r in scored.items():
        view["prob"][v] = [round(p, 6) for p in r["prob"]]
        view["top1"][v] = [tokenizer.decode([i]) for i in r["top1"]]
        n = max(1, len(ids))
        view["mean_nll_bits"][v] = sum(-math.log(max(p, 1e-300)) for p in r["prob"]) / n / LOG2 if ids else None
        view["top1_agreement"][v] = sum(a == b for a, b in zip(r["top1"], ids)) / n if ids else None
    for v in scored:
        if v == reference:
            continue
        ref_p, p = scored[reference]["prob"], scored[v]["prob"]
        order = sorted(range(len(ids)), key=lambda j: -abs(p[j] - ref_p[j]))[:5]
        view["largest_changes"][v] = [{"position": j, "token": dec[j], "prob_reference": round(ref_p[j], 6),
                                       "prob": round(p[j], 6)} for j in order]
    return view


def top_k(logp: torch.Tensor, tokenizer: Any, k: int) -> list[dict[str, Any]]:
    """The k most likely tokens of one distribution: id, decoded text, probability."""
    values, ids = torch.topk(logp, min(k, logp.numel()))
    return [{"id": int(i), "token": tokenizer.decode([int(i)]), "prob": float(v.exp())}
            for v, i in zip(values, ids)]


def entropy_bits(logp: torch.Tensor) -> float:
    """Shannon entropy of one distribution, in bits."""
    p = logp.exp()
    return float(-(p * torch.where(p > 0, logp, torch.zeros_like(logp))).sum() / LOG2)


def divergences(ref: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """KL both ways and Jensen-Shannon divergence of two log-prob vectors, in bits.

    Vocabularies of different length (padded embedding rows) are compared over the shared
    prefix, each renormalised. JS is symmetric and bounded by 1 bit; KL is not bounded.
    """
    n = min(ref.numel(), other.numel())
    lp = torch.log_softmax(ref[:n].double(), -1)
    lq = torch.log_softmax(other[:n].double(), -1)
    p, q = lp.exp(), lq.exp()
    lm = torch.log(0.5 * (p + q))

    def kl(pa: torch.Tensor, la: torch.Tensor, lb: torch.Tensor) -> float:
        # 0 * log(0 / x) = 0: drop zero-probability terms instead of producing nan.
        return float(torch.where(pa > 0, pa * (la - lb), torch.zeros_like(pa)).sum() / LOG2)

    return {"kl_ref_to_variant": kl(p, lp, lq), "kl_variant_to_ref": kl(q, lq, lp),
            "js": 0.5 * kl(p, lp, lm) + 0.5 * kl(q, lq, lm)}


# ---- on the console ---------------------------------------------------------------------------------


def next_token_tables(nt: dict[str, Any], plain: bool = False) -> list[Any]:
    """Per prompt of a compare/next_token.json, a rich Table (rank, then each variant's token and
    probability side by side) followed by a line of entropies and KL / JS to the reference.

    Args:
        nt: the parsed next_token.json.
        plain: no box characters or styles (output that is not a terminal: logs, pipes).
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    # The report's token display, so console and report show a token the same way.

    ref, tables = nt.get("reference"), []
    for p in nt.get("prompts") or []:
        top = p.get("top") or {}
        status = (p.get("in_train") or {}).get("status", "-")
        table = Table(title=Text(f"next token: {p['id']} (in training: {status})"), title_justify="left",
                      box=None if plain else box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("#", justify="right")
        for v in top:
            table.add_column(Text(v), no_wrap=True)
            table.add_column("p", justify="right")
        for r in range(max((len(t) for t in top.values()), default=0)):
            row = [Text(str(r + 1))]
            for toks in top.values():
                t = toks[r] if r < len(toks) else None
                row += [Text(readable_token(t["token"], 24)), Text(prob_text(t["prob"]))] if t else [Text(""), Text("")]
            table.add_row(*row)
        notes = [f"entropy {v} {p['entropy_bits'][v]:.3f}" for v in top if v in (p.get("entropy_bits") or {})]
        for v, d in (p.get("divergence") or {}).items():
            notes.append(f"KL({ref}‖{v}) {d['kl_ref_to_variant']:.3f}, KL({v}‖{ref}) {d['kl_variant_to_ref']:.3f}, "
                         f"JS {d['js']:.3f}")
        tables.append(Group(table, Text("; ".join(notes) + " (bits)")))
    return tables


def print_next_token(nt: dict[str, Any], console: Any) -> None:
    """`next_token_tables` on `console`: boxed on a terminal, plain text otherwise."""
    for table in next_token_tables(nt, plain=not console.is_terminal):
        console.print(table)
