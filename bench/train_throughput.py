"""Training throughput: tunelab's loop vs TRL's SFTTrainer, same model, data and LoRA settings.

    python bench/train_throughput.py [--model builtin:tiny-code] [--steps 40] [--batch-size 8] [--bf16]

Each variant (tunelab padded/packed, TRL padded/packed) runs in its own subprocess so that
peak RSS is its own, one after the other in this one invocation. Both sides get the same
pre-tokenized examples (tunelab's chat template and assistant-only labels; TRL receives them as
`input_ids` + `completion_mask`, so it trains on exactly the same tokens), the same LoRA
(r, alpha, target modules, no dropout), batch size, learning rate, schedule and step count.
Afterwards every adapter is scored by the same function on the same validation examples.
`--bf16` runs both sides with bf16 autocast over float32 weights (tunelab
`train.mixed_precision: bf16`, TRL `bf16=True`).

Printed: tokens/s (non-padding input tokens per second of the training loop), peak RSS, final
validation loss, and the ratios tunelab / TRL.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [("tunelab", False), ("tunelab", True), ("trl", False), ("trl", True)]


def experiment(args, packed: bool):
    from tunelab.config import validate_config

    return validate_config({
        "name": "bench",
        "seed": 0,
        "model": {"name": args.model, "dtype": "float32"},
        "lora": {"r": args.rank, "alpha": 2 * args.rank, "dropout": 0.0, "target_modules": "auto"},
        "data": {
            "sources": [{"builtin": "stdlib-instruct", "max_examples": args.examples}],
            "split": {"val": 0.1, "test": 0.0001},
            "max_seq_len": args.seq_len,
            "packing": packed,
        },
        "train": {
            "max_steps": args.steps, "batch_size": args.batch_size, "lr": 5e-4, "warmup_steps": 4,
            "scheduler": "cosine", "log_every": args.steps, "eval_every": 10**6, "save_every": 10**6,
            "keep_last": 1, "max_eval_examples": args.val_examples,
            "mixed_precision": "bf16" if args.bf16 else "no",
        },
    })


def val_loss(model, val, pad_id: int) -> float:
    """Mean next-token loss over the validation examples: one definition for both sides."""
    import torch

    from tunelab.training.batches import make_batch
    from tunelab.training.metrics import token_stats

    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(val), 8):
            batch = make_batch(val[i : i + 8], pad_id, packed=False)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
            loss_sum, _, n_tok = token_stats(logits, batch["labels"], accuracy=False)
            total += loss_sum.item()
            n += int(n_tok)
    return total / n


def run_tunelab(args, packed: bool, out: Path) -> dict:
    from peft import PeftModel

    from tunelab.models.loading import load_base
    from tunelab.training.loop import train

    exp = experiment(args, packed)
    summary = train(exp, out / "run")
    base, tok = load_base(exp.model)
    model = PeftModel.from_pretrained(base, out / "run" / "final")
    val = _val_examples(args, tok)
    return {"tokens_per_s": summary["tokens_per_s"], "tokens": summary["tokens_seen"],
            "train_time_s": summary["train_time_s"], "val_loss": val_loss(model, val, tok.pad_token_id)}


def _val_examples(args, tok):
    from tunelab.data.pipeline import prepare

    prepared = prepare(experiment(args, packed=False), tok)
    return prepared.val[: args.val_examples]


def run_trl(args, packed: bool, out: Path) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from tunelab.data.pipeline import prepare
    from tunelab.models.loading import load_base
    from tunelab.models.lora import target_modules_for

    exp = experiment(args, packed=False)
    model, tok = load_base(exp.model)
    prepared = prepare(exp, tok)
    rows = [{"input_ids": e.input_ids, "completion_mask": [int(l != -100) for l in e.labels]} for e in prepared.train]
    timer: dict = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, *a, **k):
            timer["start"] = time.perf_counter()

        def on_train_end(self, *a, **k):
            timer["end"] = time.perf_counter()

    cfg = SFTConfig(
        output_dir=str(out / "trl"), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=5e-4, lr_scheduler_type="cosine", warmup_steps=4, logging_steps=args.steps,
        save_strategy="no", eval_strategy="no", report_to="none", use_cpu=True, seed=0,
        completion_only_loss=True, packing=packed, padding_free=packed, max_length=args.seq_len,
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0, bf16=bool(args.bf16),
    )
    lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                      target_modules=target_modules_for(model, exp.lora), task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         peft_config=lora, callbacks=[Timer()])
    trainer.train()
    elapsed = timer["end"] - timer["start"]
    tokens = int(trainer.state.num_input_tokens_seen)
    return {"tokens_per_s": tokens / elapsed, "tokens": tokens, "train_time_s": elapsed,
            "val_loss": val_loss(trainer.model, prepared.val[: args.val_examples], tok.pad_token_id)}


def worker(args) -> None:
    out = Path(tempfile.mkdtemp(prefix="tunelab-bench-"))
    fn = run_tunelab if args.worker == "tunelab" else run_trl
    result = fn(args, bool(args.packed), out)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="builtin:tiny-code")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--val-examples", type=int, default=64)
    ap.add_argument("--only", choices=["tunelab", "trl"], default=None)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast over float32 weights on both sides")
    ap.add_argument("--worker", choices=["tunelab", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--packed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    results = {}
    for name, packed in VARIANTS:
        if args.only and name != args.only:
            continue
        cmd = [sys.executable, __file__, "--worker", name, "--packed", str(int(packed)), "--model", args.model,
               "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
               "--rank", str(args.rank), "--examples", str(args.examples), "--val-examples", str(args.val_examples),
               *(["--bf16"] if args.bf16 else [])]
        label = f"{name} {'packed' if packed else 'padded'}"
        print(f"running {label} ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            raise SystemExit(f"{label} failed")
        results[label] = json.loads(line[-1][len("RESULT "):])
    print(f"\nmodel {args.model}, LoRA r={args.rank}, batch {args.batch_size}, max_seq_len {args.seq_len}, "
          f"{args.steps} steps, {os.cpu_count()} CPU cores, {'bf16 autocast' if args.bf16 else 'float32'}")
    print(f"{'variant':<18}{'tokens/s':>10}{'peak RSS MB':>13}{'val loss':>10}")
    for label, r in results.items():
        print(f"{label:<18}{r['tokens_per_s']:>10.0f}{r['peak_rss_mb']:>13.0f}{r['val_loss']:>10.4f}")
    for mode in ("padded", "packed"):
        a, b = results.get(f"tunelab {mode}"), results.get(f"trl {mode}")
        if a and b:
            print(f"ratio tunelab/TRL ({mode}): tokens/s {a['tokens_per_s'] / b['tokens_per_s']:.2f}x, "
                  f"peak RSS {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}x, val loss {a['val_loss'] - b['val_loss']:+.4f}")
    a, b = results.get("tunelab packed"), results.get("trl padded")
    if a and b:
        print(f"ratio tunelab packed / TRL padded: tokens/s {a['tokens_per_s'] / b['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
