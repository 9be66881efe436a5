"""Export of a pretrained built-in model: the package data tunelab ships, and its model card.

`export` writes bf16 safetensors, the corpus step's tokenizer files, `pretrain_meta.json` (config,
corpus, held-out loss curve, greedy samples) and the `README.md` card that `tunelab models` shows.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch

from tunelab_build.pretrain.config import PretrainConfig
from tunelab_build.pretrain.train import evaluate


def export(work_dir: Path, dest: Path) -> None:
    """Write the shipped model: best weights in bfloat16 safetensors, tokenizer, card metadata."""
    from transformers import AutoModelForCausalLM

    best = work_dir / "best"
    model = AutoModelForCausalLM.from_pretrained(best, dtype=torch.float32)
    model = model.to(torch.bfloat16)
    if dest.exists():
        shutil.rmtree(dest)
    model.save_pretrained(dest, safe_serialization=True)
    # The tokenizer files written by the corpus step (Qwen2Tokenizer with the chat template), the
    # ones whose ids plain AutoTokenizer reproduces.
    tok_src = work_dir / "corpus" / "tokenizer"
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tok_src / name, dest / name)
    meta = json.loads((best / "pretrain_meta.json").read_text())
    corpus = json.loads((work_dir / "corpus" / "corpus.json").read_text())
    history = json.loads((work_dir / "history.json").read_text()) if (work_dir / "history.json").exists() else []
    shipped = model.float().eval()  # what users load: bf16 weights upcast to fp32
    # Only the keys this recipe still knows: a checkpoint's config may predate a removed knob.
    cfg = PretrainConfig(**{k: v for k, v in meta["config"].items() if k in PretrainConfig.model_fields})
    val_data = np.fromfile(work_dir / "corpus" / "val.bin", dtype=np.uint16)
    full = cfg.model_copy(update={"eval_tokens": len(val_data)})
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


def greedy_samples(model: torch.nn.Module, tokenizer_dir: Path, max_new_tokens: int = 64) -> list[dict]:
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
- **Tokenizer**: byte-level BPE, {cfg['vocab_size']} tokens, trained on the training files only with Qwen2's
  pre-tokenizer and normalizer (plain `AutoTokenizer` loads it as `Qwen2Tokenizer` with the same ids); ChatML chat
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
- **Recipe**: `python -m tunelab_build.pretrain configs/pretrain/{cfg['name']}.yaml --work-dir DIR --export DIR/export`
  (resumable: re-run the same command after an interruption).
- **Greedy samples** (64 new tokens; judged on the complete lines, compiled, never run):
{samples}
- **License of the training data**: the Python standard library is distributed under the Python
  Software Foundation License; this model is a research toy for testing fine-tuning pipelines,
  not a coding assistant.
"""
