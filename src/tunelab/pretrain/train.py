"""Pretraining recipe for the built-in code model: a small Qwen2 LM on the standard library.

    tunelab pretrain configs/pretrain/tiny-code.yaml --work-dir .pretrain/tiny-code

Stages: build the corpus and tokenizer (once), then train with resumable checkpoints
(`state.pt` holds model, optimizer, step and RNG-free sampling state: batch `i` is drawn from
a generator seeded by (seed, i), so a resumed run sees exactly the batches an uninterrupted one
would), keep the checkpoint with the best held-out loss in `best/`, and `export` writes the
shipped package data (bf16 safetensors, tokenizer, model card).

Needs only torch, transformers, tokenizers, numpy and pyyaml, so it runs on a bare GPU box.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from tunelab_build.pretrain.corpus import build_corpus


PRECISIONS = ("fp32", "bf16")


@dataclass
class PretrainConfig:
    """Every knob of the recipe. Unknown keys in the YAML are errors."""

    name: str = "tiny-code"
    # corpus / tokenizer
    vocab_size: int = 8192
    held_out_percent: int = 4
    # model (transformers Qwen2 architecture)
    hidden_size: int = 256
    num_layers: int = 8
    num_heads: int = 8
    num_kv_heads: int = 4
    intermediate_size: int = 768
    max_position_embeddings: int = 2048
    # optimisation
    seq_len: int = 512
    batch_size: int = 8
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    max_steps: int = 8000
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_tokens: int = 262_144
    save_every: int = 250
    seed: int = 0
    compile: bool = False
    # "bf16": autocast matmuls to bfloat16 with fp32 master weights and optimizer state (on a
    # CPU with AVX512-BF16/AMX this trains ~1.7x faster than fp32: 3,200 vs 1,880 tokens/s on
    # 2 cores for the shipped model); "fp32": no autocast.
    precision: str = "fp32"

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> PretrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        raw.update(overrides or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        if raw.get("precision", "fp32") not in PRECISIONS:
            raise SystemExit(f"{path}: precision must be one of {', '.join(PRECISIONS)}, got {raw['precision']!r}")
        for key in raw:
            if key not in names:
                import difflib

                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise SystemExit(f"{path}: unknown pretrain key '{key}'{hint}")
        return cls(**{k: type(names[k].default)(v) for k, v in raw.items()})


def build_model(cfg: PretrainConfig):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    mc = Qwen2Config(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=3,
    )
    torch.manual_seed(cfg.seed)
    return Qwen2ForCausalLM(mc)


def lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def get_batch(data: np.ndarray, step: int, cfg: PretrainConfig, device: torch.device) -> torch.Tensor:
    """Random windows of seq_len+1 tokens; a pure function of (seed, step) so resume is exact."""
    g = np.random.default_rng([cfg.seed, step])
    starts = g.integers(0, len(data) - cfg.seq_len - 1, size=cfg.batch_size)
    rows = np.stack([data[s : s + cfg.seq_len + 1] for s in starts]).astype(np.int64)
    return torch.from_numpy(rows).to(device, non_blocking=True)


@torch.no_grad()
def evaluate(model, data: np.ndarray, cfg: PretrainConfig, device: torch.device, autocast) -> float:
    """Mean next-token loss over fixed, non-overlapping held-out windows."""
    model.eval()
    n_windows = max(1, min(cfg.eval_tokens, len(data) - 1) // cfg.seq_len)
    losses = []
    for i in range(0, n_windows, cfg.batch_size):
        idx = range(i, min(i + cfg.batch_size, n_windows))
        rows = np.stack([data[j * cfg.seq_len : j * cfg.seq_len + cfg.seq_len + 1] for j in idx]).astype(np.int64)
        x = torch.from_numpy(rows).to(device)
        with autocast():
            logits = model(input_ids=x[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="sum"
        )
        losses.append((loss.item(), x[:, 1:].numel()))
    model.train()
    return sum(l for l, _ in losses) / sum(n for _, n in losses)


def make_autocast(cfg: PretrainConfig, device: torch.device):
    """A context-manager factory for the forward passes: bf16 autocast or nothing."""
    import contextlib

    if cfg.precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def pretrain(cfg: PretrainConfig, work_dir: Path, log=print, time_budget: float | None = None) -> dict:
    """Build the corpus if needed, then train (resuming from `work_dir/state.pt` if present).

    `time_budget` (seconds) shortens `max_steps` to what fits, measured after 30 steps, so one
    lease of a GPU machine finishes a whole cosine schedule; the chosen value is saved with
    the checkpoint and the model card, so the run stays reproducible.
    """
    from transformers import PreTrainedTokenizerFast

    work_dir.mkdir(parents=True, exist_ok=True)
    corpus_dir = work_dir / "corpus"
    if not (corpus_dir / "corpus.json").exists():
        log(f"building corpus and tokenizer in {corpus_dir} ...")
        stats = build_corpus(corpus_dir, cfg.vocab_size, cfg.held_out_percent)
        log(f"corpus: {stats['tokens']} tokens, {stats['files']} files")
    train_data = np.fromfile(corpus_dir / "train.bin", dtype=np.uint16)
    val_data = np.fromfile(corpus_dir / "val.bin", dtype=np.uint16)
    if len(val_data) <= cfg.seq_len or len(train_data) <= cfg.seq_len:
        raise SystemExit(f"corpus too small for seq_len {cfg.seq_len}: {len(train_data)} train / {len(val_data)} "
                         "held-out tokens (raise held_out_percent or lower seq_len)")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    autocast = make_autocast(cfg, device)
    model = build_model(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        fused=device.type == "cuda",
    )
    step, best, history, budgeted = 0, float("inf"), [], None
    state_path = work_dir / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, best, history = state["step"], state["best"], state["history"]
        budgeted = state.get("budgeted_max_steps")
        if budgeted:
            cfg.max_steps = budgeted
            time_budget = None
        log(f"resumed at step {step} (best held-out loss {best:.4f})")
    fwd = torch.compile(model) if cfg.compile else model
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters on {device}; {len(train_data):,} train tokens")

    def save_state() -> None:
        tmp = work_dir / "state.pt.tmp"
        torch.save(
            {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
             "history": history, "config": dataclasses.asdict(cfg), "budgeted_max_steps": budgeted},
            tmp,
        )
        tmp.replace(state_path)

    model.train()
    t0, tokens = time.time(), 0
    while step < cfg.max_steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x = get_batch(train_data, step, cfg, device)
        with autocast():
            logits = fwd(input_ids=x[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens += x[:, 1:].numel()
        if time_budget and tokens == 30 * x[:, 1:].numel():
            per_step = (time.time() - t0) / 30
            # Leave 10% for evaluations and checkpoints.
            fit = int(0.9 * time_budget / per_step)
            if fit < cfg.max_steps:
                cfg.max_steps = budgeted = max(fit, cfg.warmup_steps + 1)
                log(f"time budget {time_budget:.0f}s: max_steps set to {cfg.max_steps}")
        if step % 50 == 0:
            rate = tokens / (time.time() - t0)
            log(f"step {step}/{cfg.max_steps} loss {loss.item():.4f} lr {lr_at(step, cfg):.2e} {rate:,.0f} tok/s")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            val = evaluate(model, val_data, cfg, device, autocast)
            history.append({"step": step, "train_loss": loss.item(), "val_loss": val, "time": time.time() - t0})
            log(f"step {step}: held-out loss {val:.4f} (ppl {math.exp(val):.1f})")
            if val < best:
                best = val
                model.save_pretrained(work_dir / "best", safe_serialization=True)
                PreTrainedTokenizerFast.from_pretrained(corpus_dir / "tokenizer").save_pretrained(work_dir / "best")
                (work_dir / "best" / "pretrain_meta.json").write_text(
                    json.dumps({"step": step, "val_loss": val, "config": dataclasses.asdict(cfg),
                                "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"},
                               indent=2)
                )
        if step % cfg.save_every == 0 or step == cfg.max_steps:
            save_state()
    (work_dir / "history.json").write_text(json.dumps(history, indent=2))
    return {"step": step, "best_val_loss": best, "history": history}


def export(work_dir: Path, dest: Path) -> None:
    """Write the shipped model: best weights in bfloat16 safetensors, tokenizer, card metadata."""
    from transformers import AutoModelForCausalLM

    best = work_dir / "best"
    model = AutoModelForCausalLM.from_pretrained(best, dtype=torch.float32)
    model = model.to(torch.bfloat16)
    if dest.exists():
        shutil.rmtree(dest)
    model.save_pretrained(dest, safe_serialization=True)
    # The tokenizer files written by the corpus step, not the ones save_pretrained rewrote:
    # they declare the generic PreTrainedTokenizerFast, so transformers does not swap in
    # Qwen2Tokenizer (whose own pre-tokenizer would re-tokenize our BPE differently).
    tok_src = work_dir / "corpus" / "tokenizer"
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tok_src / name, dest / name)
    meta = json.loads((best / "pretrain_meta.json").read_text())
    corpus = json.loads((work_dir / "corpus" / "corpus.json").read_text())
    history = json.loads((work_dir / "history.json").read_text()) if (work_dir / "history.json").exists() else []
    shipped = model.float().eval()  # what users load: bf16 weights upcast to fp32
    cfg = PretrainConfig(**{k: v for k, v in meta["config"].items() if k in PretrainConfig.__dataclass_fields__})
    val_data = np.fromfile(work_dir / "corpus" / "val.bin", dtype=np.uint16)
    full = dataclasses.replace(cfg, eval_tokens=len(val_data))
    import contextlib

    meta.update({"corpus": {k: v for k, v in corpus.items() if k != "held_out_modules"},
                 "held_out_modules": corpus["held_out_modules"], "history": history,
                 "parameters": sum(p.numel() for p in model.parameters()),
                 "held_out_loss_all": evaluate(shipped, val_data, full, torch.device("cpu"), contextlib.nullcontext),
                 "samples": greedy_samples(shipped, tok_src)})
    (dest / "pretrain_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    (dest / "README.md").write_text(model_card(meta))


# No trailing newline: the BPE merges a newline with the next indentation (one "\n    " token), so
# a prompt ending in a bare newline is a token boundary the model never saw in training.
SAMPLE_PROMPTS = ("def fibonacci(n):", "class Stack:")


def python_status(text: str) -> str:
    """"parses" when the complete lines of `text` are a valid program, "prefix" when they are
    not yet one but could become one (an unclosed string, bracket or block: what a generation cut
    at a token limit looks like), else "error". The code is only compiled, never run."""
    import ast
    import codeop
    import warnings

    complete = text[: text.rfind("\n") + 1] if "\n" in text else text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings about odd escapes in generated strings
        try:
            ast.parse(complete)
            return "parses"
        except SyntaxError:
            pass
        try:  # None = incomplete input, as the interactive interpreter decides
            return "prefix" if codeop.compile_command(complete, "<sample>", "exec") is None else "parses"
        except (SyntaxError, ValueError, OverflowError):
            return "error"


def greedy_samples(model, tokenizer_dir: Path, max_new_tokens: int = 64) -> list[dict]:
    """Greedy continuations of a few prompts and their `python_status`."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    out = []
    for prompt in SAMPLE_PROMPTS:
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id)
        text = prompt + tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
        status = python_status(text)
        out.append({"prompt": prompt, "text": text, "parses": status == "parses", "python": status})
    return out


def model_card(meta: dict) -> str:
    """The model card shipped beside the weights (shown by `tunelab models`)."""
    cfg, corpus = meta["config"], meta["corpus"]
    val = meta["val_loss"]
    precision = ("bf16 autocast with fp32 master weights" if cfg.get("precision") == "bf16" else "fp32")
    hist = meta.get("history") or []
    every = max(1, len(hist) // 10)
    shown = [h for i, h in enumerate(hist) if i % every == every - 1 or i == len(hist) - 1]
    curve = ", ".join(f"{h['step']}: {h['val_loss']:.3f}" for h in dict((h["step"], h) for h in shown).values())
    verdict = {"parses": "parses", "prefix": "a valid unfinished prefix (an open string, bracket or block)",
               "error": "syntax error"}
    samples = "\n".join(
        f"  - `{s['prompt'].strip()}` -> {verdict.get(s.get('python'), 'parses' if s['parses'] else 'syntax error')}"
        "\n\n    ```python\n"
        + "\n".join("    " + line for line in s["text"].splitlines()) + "\n    ```" for s in meta.get("samples", []))
    return f"""# builtin:{cfg['name']}

A small code language model pretrained by tunelab on the Python standard library, so that the
quickstart, the docs and the tests fine-tune a genuinely pretrained model offline.

- **Architecture**: Qwen2 (transformers `Qwen2ForCausalLM`), {meta['parameters'] / 1e6:.1f}M parameters,
  hidden {cfg['hidden_size']}, {cfg['num_layers']} layers, {cfg['num_heads']} heads ({cfg['num_kv_heads']} key/value heads),
  context trained at {cfg['seq_len']} tokens, tied embeddings; weights stored in bfloat16.
- **Tokenizer**: byte-level BPE, {cfg['vocab_size']} tokens, trained on the training files only; ChatML chat
  template (`<|im_start|>`, `<|im_end|>`), end of text `<|endoftext|>`.
- **Data**: {corpus['source']}: {corpus['files']['train']} files / {corpus['tokens']['train']:,} tokens for training,
  {corpus['files']['val']} files / {corpus['tokens']['val']:,} tokens held out by module ({corpus['held_out_percent']}% of
  module keys by hash; listed in `pretrain_meta.json`).
- **Training**: {meta['step']} steps of {cfg['batch_size']} x {cfg['seq_len']} tokens, AdamW (lr {cfg['lr']}, warmup
  {cfg['warmup_steps']}, cosine to {cfg['min_lr_ratio']} x lr, weight decay {cfg['weight_decay']}), {precision} on {meta.get('device', 'cpu')}.
- **Held-out loss**: {val:.4f} nats/token (perplexity {math.exp(val):.1f}) on the first {cfg['eval_tokens']:,} held-out
  tokens (used to pick the checkpoint, step {meta['step']}); {meta['held_out_loss_all']:.4f} (perplexity
  {math.exp(meta['held_out_loss_all']):.1f}) on all {corpus['tokens']['val']:,} held-out tokens with the shipped bf16 weights.
- **Held-out loss by step** (first {cfg['eval_tokens']:,} held-out tokens): {curve or 'not recorded'}.
- **Recipe**: `tunelab pretrain configs/pretrain/{cfg['name']}.yaml --work-dir DIR --export DIR/export`
  (resumable: re-run the same command after an interruption).
- **Greedy samples** (64 new tokens; judged on the complete lines, compiled, never run):
{samples}
- **License of the training data**: the Python standard library is distributed under the Python
  Software Foundation License; this model is a research toy for testing fine-tuning pipelines,
  not a coding assistant.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Pretrain tunelab's built-in code model.")
    ap.add_argument("config")
    ap.add_argument("--work-dir", required=True, type=Path)
    ap.add_argument("--set", action="append", default=[], help="key=value override")
    ap.add_argument("--export", type=Path, default=None, help="after training, export the best model here")
    ap.add_argument("--corpus-only", action="store_true")
    ap.add_argument("--time-budget", type=float, default=None, help="seconds; shortens max_steps to fit")
    args = ap.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = PretrainConfig.from_yaml(args.config, overrides)
    if args.corpus_only:
        stats = build_corpus(args.work_dir / "corpus", cfg.vocab_size, cfg.held_out_percent)
        print(json.dumps({k: v for k, v in stats.items() if k != "held_out_modules"}, indent=2))
        return
    pretrain(cfg, args.work_dir, log=lambda m: print(m, flush=True), time_budget=args.time_budget)
    if args.export:
        export(args.work_dir, args.export)


if __name__ == "__main__":
    main(sys.argv[1:])
