"""Evaluation-time generation: tunelab's path vs a plain `model.generate` loop, same adapter, one run.

    python bench/eval_throughput.py [--model builtin:tiny-code] [--prompts 32] [--new-tokens 64]

The model is `--model` (default `builtin:tiny-code`) in float32 on the CPU with tunelab's
default LoRA (r 16 on the family preset), initialised non-zero (A and B drawn
from N(0, 0.02)) so that the adapter changes the outputs. Prompts: the first `--prompts`
stdlib-instruct test instructions, chat template, greedy, `--new-tokens` new tokens.

Timed passes, each on the same prompts:

- tunelab merged, sorted: what `tunelab eval` does (`VariantSession`: a merged copy of the
  adapter, `TransformersGenerator` batching prompts longest first), at batch sizes 8/16/32;
- tunelab adapter, sorted: the same generator on the PEFT model (LoRA layers in every forward);
- tunelab merged, unsorted: batches in prompt order (more padding);
- plain loop: `model.generate` one prompt at a time on the PEFT model, what a user writes.

All outputs must be identical (the script exits 1 otherwise). Printed: new tokens/s of each and
the ratios. Nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def load(name: str):
    from peft.tuners.lora import LoraLayer

    from tunelab.config import LoraConfig, ModelConfig
    from tunelab.models.loading import load_base
    from tunelab.models.lora import attach_lora

    model, tok = load_base(ModelConfig(name=name, dtype="float32", device="cpu"))
    torch.manual_seed(0)
    adapter = attach_lora(model, LoraConfig())
    for module in adapter.modules():  # a fresh LoRA has B = 0 (no effect): give it one
        if isinstance(module, LoraLayer):
            for name_, b in module.lora_B.items():
                torch.nn.init.normal_(b.weight, std=0.02)
                torch.nn.init.normal_(module.lora_A[name_].weight, std=0.02)
    return adapter.eval(), tok


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def tunelab_pass(model, tok, prompts, settings, batch_size, sort=True):
    from tunelab.generation import TransformersGenerator

    gen = TransformersGenerator(model, tok, batch_size=batch_size)
    if sort:
        out, t = timed(lambda: gen.generate(prompts, settings))
    else:  # batches in prompt order: each call sorts only within its own batch
        out, t = timed(lambda: [o for i in range(0, len(prompts), batch_size)
                                for o in gen.generate(prompts[i : i + batch_size], settings)])
    return out, t, gen.stats["new_tokens"]


def plain_loop(model, tok, prompts, settings):
    """What a user writes: one `model.generate` per prompt (same eos ids, greedy)."""
    from tunelab.generation import TransformersGenerator

    eos = TransformersGenerator(model, tok)._eos_ids(chat=True)
    outs, n_new = [], 0

    def run():
        nonlocal n_new
        for p in prompts:
            text = tok.apply_chat_template(list(p.messages), tokenize=False, add_generation_prompt=True)
            ids = tok(text, return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                seq = model.generate(**ids, max_new_tokens=settings.max_new_tokens, do_sample=False, top_k=None,
                                     eos_token_id=eos, pad_token_id=tok.pad_token_id)
            new = seq[0, ids["input_ids"].shape[1]:].tolist()
            n_new += next((i + 1 for i, t in enumerate(new) if t in eos), len(new))
            outs.append([tok.decode(new, skip_special_tokens=True)])
        return outs

    out, t = timed(run)
    return out, t, n_new


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:tiny-code")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from tunelab.data.builtin import load_builtin
    from tunelab.evaluation.generation import merged_for_generation
    from tunelab.generation import GenerationSettings, Prompt

    adapter, tok = load(args.model)
    merged = merged_for_generation(adapter, tok)
    if merged is adapter:
        print("the merged copy failed its parity check; nothing to compare", file=sys.stderr)
        return 1
    rows = load_builtin("stdlib-instruct", "test")[: args.prompts]
    prompts = [Prompt(messages=[{"role": "user", "content": r["instruction"]}]) for r in rows]
    settings = GenerationSettings(max_new_tokens=args.new_tokens)  # greedy, as eval's defaults
    print(f"model: {args.model} + LoRA r16 (non-zero), {len(prompts)} prompts x {args.new_tokens} new tokens, "
          f"greedy, float32 CPU, torch threads {torch.get_num_threads()}")
    tunelab_pass(merged, tok, prompts[:2], GenerationSettings(max_new_tokens=4), 2)  # warm-up

    results = {}
    for bs in (8, 16, 32):
        results[f"tunelab merged, sorted, batch {bs}"] = tunelab_pass(merged, tok, prompts, settings, bs)
    results["tunelab adapter, sorted, batch 16"] = tunelab_pass(adapter, tok, prompts, settings, 16)
    results["tunelab merged, unsorted, batch 16"] = tunelab_pass(merged, tok, prompts, settings, 16, sort=False)
    results["plain loop (adapter, one by one)"] = plain_loop(adapter, tok, prompts, settings)

    tps = {}
    for label, (_, t, n) in results.items():
        tps[label] = n / t
        print(f"{label:38s}: {n:6d} tokens in {t:7.2f} s = {n / t:8.1f} tokens/s")
    ref = "tunelab merged, sorted, batch 16"
    print(f"merged / adapter (batch 16): {tps[ref] / tps['tunelab adapter, sorted, batch 16']:.2f}x")
    print(f"sorted / unsorted (merged, batch 16): {tps[ref] / tps['tunelab merged, unsorted, batch 16']:.2f}x")
    print(f"tunelab (merged, sorted, batch 16) / plain loop: {tps[ref] / tps['plain loop (adapter, one by one)']:.2f}x")
    outputs = {label: r[0] for label, r in results.items()}
    first = outputs[ref]
    differ = [label for label, out in outputs.items() if out != first]
    print(f"identical outputs: {not differ}")
    if differ:
        print(f"outputs differ from '{ref}' for: {', '.join(differ)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
