"""`tunelab export`: merge a LoRA adapter into its base and prove the merged model is the adapter.

Users report adapters that silently do nothing and merged models that answer differently from
the adapter they came from (USERS.md 5 and 6). So an export is only kept when two checks pass on
held-out prompts (the run's test split, else `--prompts`, else built-in probes):

1. **the merge is faithful**: the merged model, reloaded from the saved files (so a broken save
   is caught too), gives the same next-token logits as base + adapter: max |difference| within
   a tolerance scaled to the logits' size (float32: 1e-3 x the largest |logit|; bfloat16 and
   float16 weights round, so 3e-2 x);
2. **the adapter does something**: base + adapter differs from the base by clearly more than
   the merge's own error (an untrained LoRA, B = 0, changes nothing).

The result goes to `OUT/export_check.json` in every case. When a check fails the weights are
not kept (unless `--force`) and the command fails. The tokenizer is saved with the training
chat template, and `generation_config.eos_token_id` includes its end-of-turn token, so the
export chats in transformers or vLLM exactly as in training.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from tunelab.errors import ModelError, TunelabError

MAX_PROMPTS = 6
MAX_TOKENS = 128  # per prompt: enough positions to see a divergence, small enough for 150k vocabularies
REL_TOL = {"float32": 1e-3, "bfloat16": 3e-2, "float16": 3e-2}
EFFECT_FACTOR = 10.0  # the adapter's effect must exceed the merge error this many times
FALLBACK_PROMPTS = (
    "Write a Python function that returns the factorial of n.",
    "A shop sells pens at 3 dollars each. How much do 7 pens cost?",
    "Fix the bug: def add(a, b): return a - b",
    "Explain what a linked list is in one sentence.",
)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def held_out_prompts(run: Path | None, tok: Any, prompts_file: Path | None) -> tuple[list[list[int]], str]:
    """Token ids of the check's prompts (chat template applied) and where they came from."""
    if prompts_file is not None:
        lines = [x for x in prompts_file.read_text(encoding="utf-8").splitlines() if x.strip()]
        if not lines:
            raise ModelError(f"{prompts_file} has no prompts (one per line)")
        chats, source = [[{"role": "user", "content": x}] for x in lines], f"file:{prompts_file}"
    else:
        chats, source = _split_chats(run), "run test split"
        if not chats:
            chats, source = [[{"role": "user", "content": x}] for x in FALLBACK_PROMPTS], "built-in probes"
    ids = []
    for messages in chats[:MAX_PROMPTS]:
        # A whole conversation (teacher-forced answer) gives logits where the adapter matters most.
        gen = messages[-1]["role"] != "assistant"
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        ids.append(tok(text, add_special_tokens=False)["input_ids"][:MAX_TOKENS])
    return ids, source


def _split_chats(run: Path | None) -> list[list[dict[str, str]]]:
    """Conversations of the run's test (else val) split; none when the data cannot be read."""
    if run is None:
        return []
    from tunelab.config import load_config
    from tunelab.data.mixing import build_splits

    try:
        exp = load_config(run / "config.yaml")
        splits = build_splits(exp.data, exp.seed)
    except (TunelabError, OSError, ValueError):
        return []
    examples = list(splits.test) or list(splits.val)
    return [list(ex.messages) for ex in examples]


@torch.inference_mode()
def _logits(model: Any, prompts: list[list[int]]) -> list[torch.Tensor]:
    """Next-token logits of every position, one [T, V] float32 CPU tensor per prompt."""
    return [model(input_ids=torch.tensor([p], device=model.device)).logits[0].float().cpu() for p in prompts]


def compare(a: list[torch.Tensor], b: list[torch.Tensor]) -> dict[str, float]:
    """How far logits `b` are from `a`: max/mean |difference|, top-1 agreement, mean KL(a || b)."""
    diffs = [(x - y).abs() for x, y in zip(a, b, strict=True)]
    kl = [torch.sum(torch.softmax(x, -1) * (torch.log_softmax(x, -1) - torch.log_softmax(y, -1)), -1)
          for x, y in zip(a, b, strict=True)]
    n = sum(d.shape[0] for d in diffs)
    return {
        "max_abs_diff": float(max(d.max() for d in diffs)),
        "mean_abs_diff": float(sum(d.mean(-1).sum() for d in diffs) / n),
        "top1_agreement": float(sum((x.argmax(-1) == y.argmax(-1)).sum() for x, y in zip(a, b)) / n),
        "mean_kl": float(sum(k.sum() for k in kl) / n),
        "positions": n,
    }


def _merge(model: Any) -> Any:
    """Fold the LoRA weights into the base weights (W + B A * scale) and drop the PEFT wrapper."""
    return model.merge_and_unload()


def _stored_dtype(model: Any) -> str:
    """The dtype the base model's weights were saved in (its config.json), default float32."""
    base = next(iter(model.peft_config.values())).base_model_name_or_path or ""
    try:
        cfg = json.loads((Path(base) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "float32"
    name = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    return name if name in _DTYPES else "float32"


def export_adapter(ref: str, out: Path, run_dir: Path | None = None, dtype: str = "auto", atol: float | None = None,
                   prompts: Path | None = None, force: bool = False) -> dict[str, Any]:
    """Merge `ref`'s adapter into its base, save it to `out`, check it; returns the check.

    Raises:
        ModelError: `ref` is no adapter, `out` holds something else, or the check failed
            (without `force`); `out/export_check.json` says what was measured.
    """
    from tunelab.config import ModelConfig
    from tunelab.data.tokenize import end_of_turn, resolve_chat_template
    from tunelab.models.adapters import load_variant
    from tunelab.models.loading import load_model, load_tokenizer
    from tunelab.serve.registry import find_run, training_template

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "export_check.json").is_file():
        raise ModelError(f"{out} exists and is not an earlier export; choose an empty or new folder")
    if dtype not in ("auto", *_DTYPES):
        raise ModelError(f"unknown dtype '{dtype}'; use auto, float32, bfloat16 or float16")
    # The merge is done in float32 on the CPU: merging in half precision adds its own error.
    model, tok = load_variant(ref, run_dir=run_dir, device="cpu")
    if not hasattr(model, "merge_and_unload"):
        raise ModelError(f"'{ref}' is not a LoRA adapter (nothing to merge); it is already a whole model")
    model = model.float()
    run = find_run(run_dir, [ref] if Path(ref).is_dir() else [])
    template = resolve_chat_template(tok, training_template(run, [ref] if Path(ref).is_dir() else []))
    save_dtype = _stored_dtype(model) if dtype == "auto" else dtype
    ids, source = held_out_prompts(run, tok, prompts)

    adapter_logits = _logits(model, ids)
    with model.disable_adapter():
        effect = compare(_logits(model, ids), adapter_logits)
    merged = _merge(model).to(_DTYPES[save_dtype])
    eot = end_of_turn(tok)
    eot_id = tok.convert_tokens_to_ids(eot) if eot else None
    gen_cfg = merged.generation_config
    if isinstance(eot_id, int) and eot_id >= 0 and eot_id != tok.unk_token_id:
        eos = gen_cfg.eos_token_id if isinstance(gen_cfg.eos_token_id, list) else [gen_cfg.eos_token_id]
        gen_cfg.eos_token_id = sorted({i for i in [*eos, tok.eos_token_id, eot_id] if isinstance(i, int)})

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    del model, merged
    gc.collect()

    # Reload exactly what was written, as a user would, and compute in float32.
    reloaded = load_model(ModelConfig(name=str(tmp), dtype="float32", device="cpu"), "cpu").eval()
    merge = compare(adapter_logits, _logits(reloaded, ids))
    del reloaded
    tok2 = load_tokenizer(ModelConfig(name=str(tmp)))
    texts = [tok.decode(p) for p in ids]
    tokenizer_ok = all(tok2(t, add_special_tokens=False)["input_ids"] == tok(t, add_special_tokens=False)["input_ids"]
                       for t in texts) and tok2.chat_template == tok.chat_template

    scale = max(float(x.abs().max()) for x in adapter_logits)
    tol = atol if atol is not None else REL_TOL[save_dtype] * max(scale, 1.0)
    need = max(EFFECT_FACTOR * merge["max_abs_diff"], 1e-6)
    problems = []
    if merge["max_abs_diff"] > tol:
        problems.append(f"the merged model diverges from the adapter: max |logit difference| "
                        f"{merge['max_abs_diff']:.3g} > tolerance {tol:.3g}")
    if effect["max_abs_diff"] <= need:
        problems.append(f"the adapter does not change the base model's output: max |logit change| "
                        f"{effect['max_abs_diff']:.3g} (needs > {need:.3g}); is it trained?")
    if not tokenizer_ok:
        problems.append("the saved tokenizer or chat template differs from the one the adapter was used with")
    check = {
        "passed": not problems, "problems": problems, "adapter": str(ref), "run_dir": str(run) if run else None,
        "dtype": save_dtype, "chat_template": template, "prompts": source, "n_prompts": len(ids),
        "tolerance": tol, "logit_scale": scale, "merged_vs_adapter": merge, "adapter_vs_base": effect,
        "tokenizer_roundtrip": tokenizer_ok, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if problems and not force:
        for f in tmp.iterdir():  # a failed export keeps only its check, never weights that look usable
            if f.is_file():
                f.unlink()
    (tmp / "export_check.json").write_text(json.dumps(check, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    if problems and not force:
        raise ModelError(f"export check failed ({out / 'export_check.json'}): " + "; ".join(problems))
    return check


def export_command(ref: str, out: Path, run_dir: Path | None = None, dtype: str = "auto", atol: float | None = None,
                   prompts: Path | None = None, force: bool = False, console: Console | None = None) -> dict[str, Any]:
    """`tunelab export`: merge, save, check, and print what the check measured."""
    console = console or Console()
    check = export_adapter(ref, out, run_dir=run_dir, dtype=dtype, atol=atol, prompts=prompts, force=force)
    m, e = check["merged_vs_adapter"], check["adapter_vs_base"]
    status = "passed" if check["passed"] else "FAILED (kept because of --force)"
    console.print(f"merged {ref} -> {out} ({check['dtype']}); check {status} on {check['n_prompts']} prompts "
                  f"({check['prompts']}):\n  merged vs adapter: max |dlogit| {m['max_abs_diff']:.3g} "
                  f"(tolerance {check['tolerance']:.3g}), top-1 agreement {m['top1_agreement']:.3f}\n"
                  f"  adapter vs base:   max |dlogit| {e['max_abs_diff']:.3g}, top-1 agreement {e['top1_agreement']:.3f}",
                  markup=False, highlight=False, soft_wrap=True)
    for p in check["problems"]:
        console.print(f"warning: {p}", markup=False, highlight=False, soft_wrap=True)
    return check
