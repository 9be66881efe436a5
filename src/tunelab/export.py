"""`tunelab export`: merge a LoRA adapter into its base and prove the merged model is the adapter.

Users report adapters that silently do nothing and merged models that answer differently from
the adapter they came from (USERS.md 5 and 6). So an export is only kept when these checks pass
on held-out prompts (`--prompts`, else the run's test split, else built-in probes), comparing
next-token logits at every position:

1. **the merge is faithful**: merged in float32, it matches base + adapter within 1e-3 x the
   largest |logit| (`--atol` sets an absolute bound, then also on the saved model);
2. **the files hold the merge**: the model reloaded from disk, as a user loads it, matches the
   merged weights in memory (after rounding to the saved dtype) up to arithmetic noise;
3. **the adapter does something**: base + adapter differs from the base (an untrained LoRA,
   B = 0, changes nothing), and by more than four times the export's own error: rounding to
   bfloat16 can erase a small adapter's effect, and then the export says so;
4. **the tokenizer round-trips**: the saved tokenizer tokenizes the prompts the same way and
   carries the training chat template;
5. **plain transformers sees the same model**: a fresh Python process that imports no tunelab
   loads the folder the way a user, vLLM or TGI does (`AutoTokenizer`, `AutoModelForCausalLM`, no
   trust_remote_code) and must give the training tokenizer's ids on probe texts (code with
   digits, whitespace runs, the chat-templated prompt) and the greedy reply `tunelab generate`
   gives. transformers swaps in its own tokenizer class for some model types (Qwen2Tokenizer
   rebuilds the pre-tokenizer), so a custom tokenizer.json can tokenize differently there;
   `--allow-tokenizer-mismatch` exports anyway and records `tokenizer_parity: false` with the
   first differing token.

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
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import torch
from rich.console import Console

from tunelab.config import ModelConfig, load_config
from tunelab.data.mixing import build_splits
from tunelab.data.tokenize import end_of_turn, resolve_chat_template
from tunelab.errors import ModelError, TunelabError
from tunelab.generation import GenerationSettings, Prompt, TransformersGenerator
from tunelab.models.loading import load_model, load_tokenizer
from tunelab.models.ref import ModelRef
from tunelab.progress import Progress

MAX_PROMPTS = 6
EXPORT_STAGES = 5  # load, adapter vs base, merge, save, reload and check
MAX_TOKENS = 128  # per prompt: enough positions to see a divergence, small enough for 150k vocabularies
MERGE_RTOL = 1e-3  # float32 merge vs adapter: max |logit difference| / max(1, largest |logit|)
SAVE_RTOL = 1e-4  # reloaded files vs the merged weights in memory (only arithmetic noise allowed)
NOOP_ATOL = 1e-6  # an adapter that moves no logit more than this does nothing
EFFECT_FACTOR = 4.0  # the export's mean error must stay under a quarter of the adapter's mean effect
FALLBACK_PROMPTS = (
    "Write a Python function that returns the factorial of n.",
    "A shop sells pens at 3 dollars each. How much do 7 pens cost?",
    "Fix the bug: def add(a, b): return a - b",
    "Explain what a linked list is in one sentence.",
)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# What a custom tokenizer gets wrong first: digits, whitespace runs and tabs, non-ASCII letters.
PARITY_TEXTS = (
    "x = 123 + 4567",
    "def f(a, b):\n    return a  *  b   # 2 spaces\n\n\n\tpass",
    "caf\u00e9 na\u00efve \u00c5 2024-01-31 3.14159",
)
PARITY_CHAT = ({"role": "user", "content": "Write a function add(a, b); add(12, 30) should be 42."},)
PARITY_NEW_TOKENS = 24
# Run with `python -c` in a fresh process: only transformers, as a user, vLLM or TGI loads a model.
_PLAIN_LOAD = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder, probe = sys.argv[1], json.loads(sys.stdin.read())
tok = AutoTokenizer.from_pretrained(folder)
prompt = tok.apply_chat_template(probe["messages"], tokenize=False, add_generation_prompt=True)
enc = tok(prompt, add_special_tokens=False, return_tensors="pt")
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
with torch.inference_mode():
    gen = model.generate(**enc, max_new_tokens=probe["max_new_tokens"], do_sample=False, pad_token_id=pad)
new = gen[0, enc["input_ids"].shape[1]:].tolist()
print(json.dumps({
    "tokenizer_class": type(tok).__name__, "ids": [tok(t)["input_ids"] for t in probe["texts"]],
    "prompt": prompt, "prompt_ids": enc["input_ids"][0].tolist(),
    "greedy": tok.decode(new, skip_special_tokens=True),
    "tunelab_imported": any(m == "tunelab" or m.startswith("tunelab.") for m in sys.modules),
}))
"""


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


def _cast_parameters(model: Any, dtype: torch.dtype) -> None:
    """Cast the weights only: buffers such as RoPE's inv_freq stay float32, as from_pretrained
    recomputes them on load (model.to(bfloat16) would round them too)."""
    for p in model.parameters():
        p.data = p.data.to(dtype)


def _stop_on_end_of_turn(model: Any, tok: Any) -> None:
    """Let `generate` (and vLLM) stop at the template's end-of-turn token, as chat replies must."""
    eot = end_of_turn(tok)
    eot_id = tok.convert_tokens_to_ids(eot) if eot else None
    if not isinstance(eot_id, int) or eot_id < 0 or eot_id == tok.unk_token_id:
        return  # a multi-token marker: nothing generation_config can say
    gen = model.generation_config
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    gen.eos_token_id = sorted({i for i in [*eos, tok.eos_token_id, eot_id] if isinstance(i, int)})


def _greedy(model: Any, tok: Any, mode: str) -> tuple[str, str]:
    """The parity probe's prompt text and greedy reply, exactly as `tunelab generate --chat` makes them."""
    gen, probe = TransformersGenerator(model, tok, batch_size=1, chat_template=mode), Prompt(messages=PARITY_CHAT)
    return gen.render(probe), gen.generate([probe], GenerationSettings(max_new_tokens=PARITY_NEW_TOKENS))[0][0]


def plain_transformers_view(folder: Path, texts: list[str]) -> dict[str, Any]:
    """Load `folder` in a fresh process with plain transformers; its ids, prompt and greedy reply.

    Raises:
        ModelError: that process could not load the folder (the last line of its error).
    """
    probe = {"texts": texts, "messages": list(PARITY_CHAT), "max_new_tokens": PARITY_NEW_TOKENS}
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
    res = subprocess.run([sys.executable, "-c", _PLAIN_LOAD, str(folder)], input=json.dumps(probe),
                         capture_output=True, text=True, env=env, cwd=folder)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
        raise ModelError(f"plain transformers cannot load the export (AutoTokenizer + AutoModelForCausalLM, "
                         f"no trust_remote_code): {last}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def first_difference(tok: Any, text: str, trained: list[int], plain: list[int]) -> dict[str, Any]:
    """Where two tokenizations of `text` part: the token index and both token lists around it."""
    i = next((k for k, (a, b) in enumerate(zip(trained, plain)) if a != b), min(len(trained), len(plain)))
    lo = max(0, i - 4)
    return {"text": text, "position": i, "trained_tokens": tok.convert_ids_to_tokens(trained[lo:i + 12]),
            "plain_tokens": tok.convert_ids_to_tokens(plain[lo:i + 12]), "from_token": lo}


def _mismatch_message(m: dict[str, Any], cls: str) -> str:
    got = m["plain_tokens"][m["position"] - m["from_token"]:][:1]
    want = m["trained_tokens"][m["position"] - m["from_token"]:][:1]
    return (f"plain AutoTokenizer ({cls}) tokenizes {m['text'][:60]!r} differently from the tokenizer the adapter "
            f"was trained with: token {m['position']} is {got[0] if got else '<end>'!r} instead of "
            f"{want[0] if want else '<end>'!r} (trained: {' '.join(m['trained_tokens'])} | plain: "
            f"{' '.join(m['plain_tokens'])}), so transformers, vLLM and TGI generate different text "
            f"from tunelab's")


def parity_check(folder: Path, tok: Any, texts: list[str], prompt: str, reference: str) -> dict[str, Any]:
    """Compare plain transformers' view of `folder` with tunelab's: token ids, template, greedy reply."""
    try:
        plain = plain_transformers_view(folder, texts)
    except ModelError as e:
        return {"loads": False, "error": str(e), "tokenizer_parity": False, "template_parity": False,
                "greedy_parity": False, "mismatch": None}
    trained = [tok(t)["input_ids"] for t in texts]
    pairs = [(t, a, b) for t, a, b in zip(texts, trained, plain["ids"], strict=True)]
    pairs.append((prompt, tok(prompt, add_special_tokens=False)["input_ids"], plain["prompt_ids"]))
    bad = next(((t, a, b) for t, a, b in pairs if a != b), None)
    return {
        "loads": True, "error": None, "tokenizer_class": plain["tokenizer_class"], "texts": len(pairs),
        "tokenizer_parity": bad is None, "mismatch": first_difference(tok, *bad) if bad else None,
        "template_parity": plain["prompt"] == prompt, "greedy_parity": plain["greedy"] == reference,
        "greedy": {"tunelab": reference, "plain": plain["greedy"]}, "tunelab_imported": plain["tunelab_imported"],
    }


def _parity_problems(parity: dict[str, Any], allow_mismatch: bool) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a parity check; an allowed tokenizer mismatch is a loud warning."""
    if not parity["loads"]:
        return [parity["error"]], []
    problems, warnings = [], []
    if not parity["template_parity"]:
        problems.append("plain transformers renders the chat template differently from training")
    if not parity["tokenizer_parity"]:
        msg = _mismatch_message(parity["mismatch"], parity["tokenizer_class"])
        if allow_mismatch:
            warnings.append(f"TOKENIZER MISMATCH (exported anyway: --allow-tokenizer-mismatch): {msg}")
        else:
            problems.append(f"{msg}; re-pretrain the base with a tokenizer that round-trips, or export anyway "
                            f"with --allow-tokenizer-mismatch")
    elif not parity["greedy_parity"]:  # same ids but another reply: the model files or generation config
        g = parity["greedy"]
        problems.append(f"plain transformers generates {g['plain']!r} where tunelab generates {g['tunelab']!r}")
    return problems, warnings


def export_adapter(ref: str, out: Path, run_dir: Path | None = None, dtype: str = "auto", atol: float | None = None,
                   prompts: Path | None = None, force: bool = False,
                   allow_tokenizer_mismatch: bool = False,
                   done: Callable[[str], None] = lambda stage: None) -> dict[str, Any]:
    """Merge `ref`'s adapter into its base, save it to `out`, check it; returns the check.

    `done(stage)` is called after each of the `EXPORT_STAGES` stages (for progress).

    Args:
        allow_tokenizer_mismatch: keep an export that plain `AutoTokenizer` tokenizes differently
            from training (recorded as `tokenizer_parity: false` with the example, and warned).

    Raises:
        ModelError: `ref` is no adapter, `out` holds something else, or the check failed
            (without `force`); `out/export_check.json` says what was measured.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "export_check.json").is_file():
        raise ModelError(f"{out} exists and is not an earlier export; choose an empty or new folder")
    if dtype not in ("auto", *_DTYPES):
        raise ModelError(f"unknown dtype '{dtype}'; use auto, float32, bfloat16 or float16")
    parsed = ModelRef.parse(ref, run_dir)
    # The merge is done in float32 on the CPU: merging in half precision adds its own error.
    model, tok, mode = parsed.load(device="cpu")
    if not hasattr(model, "merge_and_unload"):
        raise ModelError(f"'{ref}' is not a LoRA adapter (nothing to merge); it is already a whole model")
    model = model.float()
    run = parsed.run_dir
    template = resolve_chat_template(tok, mode)
    save_dtype = _stored_dtype(model) if dtype == "auto" else dtype
    ids, source = held_out_prompts(run, tok, prompts)
    done("load")

    adapter_logits = _logits(model, ids)
    prompt_text, adapter_greedy = _greedy(model, tok, mode)  # what `tunelab generate` answers with the adapter
    with model.disable_adapter():
        effect = compare(_logits(model, ids), adapter_logits)
    done("adapter vs base")
    merged = _merge(model)
    merged_logits = _logits(merged, ids)
    merge_math = compare(adapter_logits, merged_logits)  # float32: the merge itself
    done("merge")
    _stop_on_end_of_turn(merged, tok)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    _cast_parameters(merged, _DTYPES[save_dtype])
    merged.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    # Upcasting the saved-dtype weights is lossless: these are the weights the files must hold.
    rounded, reference = merged_logits, adapter_greedy
    if save_dtype != "float32":
        _cast_parameters(merged, torch.float32)
        rounded = _logits(merged, ids)
        # The files hold rounded weights: plain transformers must reply as tunelab does with
        # those; whether rounding itself matters is the logit checks' call.
        reference = _greedy(merged, tok, mode)[1]
    del model, merged
    gc.collect()
    done("save")

    # Reload exactly what was written, as a user would, and compute in float32.
    reloaded = load_model(ModelConfig(name=str(tmp), dtype="float32", device="cpu"), "cpu").eval()
    saved = _logits(reloaded, ids)
    del reloaded
    tok2 = load_tokenizer(ModelConfig(name=str(tmp)))
    texts = [tok.decode(p) for p in ids]
    parity = parity_check(tmp, tok, [*PARITY_TEXTS, *texts], prompt_text, reference)
    parity["greedy"] = {**parity.get("greedy", {}), "adapter": adapter_greedy}
    tokenizer_ok = all(tok2(t, add_special_tokens=False)["input_ids"] == tok(t, add_special_tokens=False)["input_ids"]
                       for t in texts) and tok2.chat_template == tok.chat_template

    done("reload and check")
    scale = max(max(float(x.abs().max()) for x in adapter_logits), 1.0)
    tol = atol if atol is not None else MERGE_RTOL * scale
    end_to_end = compare(adapter_logits, saved)
    save = compare(rounded, saved)
    problems = []
    if merge_math["max_abs_diff"] > tol or (atol is not None and end_to_end["max_abs_diff"] > atol):
        worst = max(merge_math["max_abs_diff"], end_to_end["max_abs_diff"] if atol is not None else 0.0)
        problems.append(f"the merged model diverges from the adapter: max |logit difference| {worst:.3g} > "
                        f"tolerance {tol:.3g}")
    if save["max_abs_diff"] > SAVE_RTOL * scale:
        problems.append(f"the saved files do not hold the merged weights: reloaded vs merged max |logit "
                        f"difference| {save['max_abs_diff']:.3g}")
    if effect["max_abs_diff"] <= NOOP_ATOL:
        problems.append(f"the adapter does not change the base model's output (max |logit change| "
                        f"{effect['max_abs_diff']:.3g}); is it trained?")
    elif effect["mean_abs_diff"] <= EFFECT_FACTOR * end_to_end["mean_abs_diff"]:
        problems.append(f"the adapter's effect (mean |logit change| {effect['mean_abs_diff']:.3g}) is lost in the "
                        f"export's error ({end_to_end['mean_abs_diff']:.3g}, {save_dtype}); export in float32")
    if not tokenizer_ok:
        problems.append("the saved tokenizer or chat template differs from the one the adapter was used with")
    parity_problems, warnings = _parity_problems(parity, allow_tokenizer_mismatch)
    problems += parity_problems
    check = {
        "passed": not problems, "problems": problems, "adapter": str(ref), "run_dir": str(run) if run else None,
        "dtype": save_dtype, "chat_template": template, "prompts": source, "n_prompts": len(ids),
        "tolerance": tol, "logit_scale": scale, "merge_float32_vs_adapter": merge_math,
        "saved_vs_merged": save, "merged_vs_adapter": end_to_end, "adapter_vs_base": effect, "tokenizer_roundtrip": tokenizer_ok,
        "tokenizer_parity": parity["tokenizer_parity"], "tokenizer_mismatch": parity["mismatch"],
        "greedy_parity": parity["greedy_parity"], "plain_transformers": parity, "warnings": warnings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
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
                   prompts: Path | None = None, force: bool = False, allow_tokenizer_mismatch: bool = False,
                   console: Console | None = None) -> dict[str, Any]:
    """`tunelab export`: merge, save, check, and print what the check measured."""
    console = console or Console()
    with Progress(console) as bar:
        tid = bar.add_task("export", total=EXPORT_STAGES)
        check = export_adapter(ref, out, run_dir=run_dir, dtype=dtype, atol=atol, prompts=prompts, force=force,
                               allow_tokenizer_mismatch=allow_tokenizer_mismatch,
                               done=lambda stage: (bar.update(tid, description=f"export: {stage}"), bar.advance(tid)))
    f32, m, e = check["merge_float32_vs_adapter"], check["merged_vs_adapter"], check["adapter_vs_base"]
    p = check["plain_transformers"]
    plain = (f"tokenizer ids {'identical' if p['tokenizer_parity'] else 'DIFFERENT'} on {p['texts']} texts, "
             f"greedy reply {'identical' if p['greedy_parity'] else 'DIFFERENT'}" if p["loads"] else "does not load")
    status = "passed" if check["passed"] else "FAILED (kept because of --force)"
    lines = [
        f"merged {ref} -> {out} ({check['dtype']}); check {status} on {check['n_prompts']} prompts ({check['prompts']})",
        f"  merge (float32) vs adapter: max |dlogit| {f32['max_abs_diff']:.3g} (tolerance {check['tolerance']:.3g})",
        f"  saved model vs adapter:     max |dlogit| {m['max_abs_diff']:.3g}, mean {m['mean_abs_diff']:.3g}, "
        f"top-1 agreement {m['top1_agreement']:.3f}",
        f"  adapter vs base:            max |dlogit| {e['max_abs_diff']:.3g}, mean {e['mean_abs_diff']:.3g}, "
        f"top-1 agreement {e['top1_agreement']:.3f}",
        f"  plain transformers (fresh process, AutoTokenizer + AutoModelForCausalLM): {plain}",
        f"  written to {out / 'export_check.json'}",
    ]
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    for w in check["warnings"]:
        console.print(f"WARNING: {w}", style="bold red", markup=False, highlight=False, soft_wrap=True)
    for p in check["problems"]:
        console.print(f"warning: {p}", markup=False, highlight=False, soft_wrap=True)
    return check
