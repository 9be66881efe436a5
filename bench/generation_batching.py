"""Batched vs one-by-one greedy generation with the evaluation backend, same prompts, one run.

    python bench/generation_batching.py [--model builtin:tiny-code] [--prompts 16] [--new-tokens 64]

Both passes go through `TransformersGenerator` (left padding, KV cache) on the same model and
the same prompts (built-in stdlib-instruct instructions, chat template): batch_size = number of
prompts vs batch_size = 1, alternating over `--repeats` passes so a drifting background load hits
both alike (medians reported). The outputs must be identical (the script exits 1 otherwise).
Printed: new tokens/s of each pass and the ratio batched / one-by-one.

The model is `builtin:tiny-code` when it has weights, else a random-init ~8M qwen2 (hidden 256,
8 layers, 8 heads, 4 kv heads, intermediate 768). A random model rarely emits eos, so both
passes generate close to the full `--new-tokens` per prompt.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def load(model_name: str | None):
    from tunelab.config import ModelConfig
    from tunelab.models.loading import has_weights, load_base, resolve_model_path
    from tunelab.models.tiny import build_tiny_model

    if model_name is None:
        path = Path(resolve_model_path("builtin:tiny-code", need_weights=False))
        if has_weights(path):
            model_name = "builtin:tiny-code"
        else:
            out = Path(tempfile.mkdtemp(prefix="bench-gen-"))
            model_name = str(build_tiny_model("qwen2", out, seed=0, hidden_size=256, num_layers=8, num_heads=8,
                                              num_kv_heads=4, intermediate_size=768))
    model, tok = load_base(ModelConfig(name=model_name, dtype="float32", device="cpu"))
    model.eval()
    return model_name, model, tok


def run(gen, prompts, settings) -> tuple[list[list[str]], float, int]:
    gen.stats.update(prompts=0, new_tokens=0, seconds=0.0)
    t0 = time.perf_counter()
    out = gen.generate(prompts, settings)
    return out, time.perf_counter() - t0, gen.stats["new_tokens"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating timed passes of each; medians are printed")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from tunelab.data.builtin import load_builtin
    from tunelab.generation import GenerationSettings, Prompt, TransformersGenerator
    from tunelab.models.lora import count_parameters

    name, model, tok = load(args.model)
    rows = load_builtin("stdlib-instruct", "test")[: args.prompts]
    prompts = [Prompt(messages=[{"role": "user", "content": r["instruction"]}]) for r in rows]
    settings = GenerationSettings(max_new_tokens=args.new_tokens)  # greedy
    print(f"model: {name} ({count_parameters(model)[1] / 1e6:.1f}M params), {len(prompts)} prompts x "
          f"{args.new_tokens} new tokens, greedy, torch threads {torch.get_num_threads()}")

    batched = TransformersGenerator(model, tok, batch_size=len(prompts))
    single = TransformersGenerator(model, tok, batch_size=1)
    run(batched, prompts[:2], GenerationSettings(max_new_tokens=4))  # warm-up (allocator, kernels)
    # Alternate the two passes so that a background load drifting over time hits both alike.
    times_b, times_s = [], []
    for _ in range(args.repeats):
        out_b, t_b, n_b = run(batched, prompts, settings)
        out_s, t_s, n_s = run(single, prompts, settings)
        times_b.append(t_b)
        times_s.append(t_s)
    t_b, t_s = statistics.median(times_b), statistics.median(times_s)

    same = out_b == out_s
    tps_b, tps_s = n_b / t_b, n_s / t_s
    print(f"batched    : {n_b:6d} tokens in {t_b:7.2f} s = {tps_b:8.1f} tokens/s (median of {args.repeats})")
    print(f"one-by-one : {n_s:6d} tokens in {t_s:7.2f} s = {tps_s:8.1f} tokens/s (median of {args.repeats})")
    print(f"ratio batched / one-by-one: {tps_b / tps_s:.2f}x; identical outputs: {same}")
    if not same:
        diff = [i for i, (a, b) in enumerate(zip(out_b, out_s)) if a != b]
        print(f"outputs differ for prompts {diff}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
