"""Load a base model and its tokenizer: built-in, local folder or hub id, on the right device.

Every way a person can name a model goes through `resolve_model_path`, and every load goes
through `load_model` / `load_tokenizer`, so the built-in models and tests use exactly the code
that loads `Qwen/Qwen2.5-0.5B`. Mistakes (a typo in a builtin name, a missing folder, no
network, remote code not allowed) become a `ModelError` that says what to change.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import fcntl
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from tunelab.config import ModelConfig
from tunelab.errors import ModelError, did_you_mean
from tunelab.models import tiny
from tunelab.models.paths import builtin_models_dir, cache_dir

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
PRETRAINED_BUILTINS = ("tiny-code",)
# Random-init test models, built on first use into the cache: name -> architecture.
TINY_RANDOM = {
    "tiny-random-qwen2": "qwen2",
    "tiny-random-llama": "llama",
    "tiny-random-qwen3": "qwen3",
    "tiny-random-phi3": "phi3",
}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


# --------------------------------------------------------------------------------------------
# Naming a model
# --------------------------------------------------------------------------------------------


def has_weights(path: Path) -> bool:
    """Whether a model folder holds weights (single file or sharded)."""
    return any((path / name).is_file() for name in WEIGHT_FILES)


def resolve_model_path(name: str, need_weights: bool = True) -> str:
    """Turn a model name into what `from_pretrained` takes: a local folder or a hub id.

    Args:
        name: `builtin:NAME`, a local model folder, or a hub id (`Qwen/Qwen2.5-0.5B`).
        need_weights: False when only the tokenizer is wanted (a built-in model folder may hold
            a tokenizer before its weights exist).

    Raises:
        ModelError: unknown builtin, a path that does not exist, or a builtin without weights.
    """
    if name.startswith(BUILTIN_PREFIX):
        return str(_resolve_builtin(name[len(BUILTIN_PREFIX):], need_weights))
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelError(f"model '{name}' is a file; give the folder that holds config.json, or a hub id")
    if _looks_like_path(name):
        raise ModelError(
            f"model folder not found: {name}. Give an existing local folder, a hub id such as "
            f"Qwen/Qwen2.5-0.5B, or builtin:NAME ({', '.join(_builtin_names())})"
        )
    return name


def _looks_like_path(name: str) -> bool:
    """A name that cannot be a hub id (`owner/name` or `name`) is meant as a local path."""
    if name.startswith((".", "/", "~", os.sep)) or "\\" in name:
        return True
    return not _HUB_ID.match(name)


def _builtin_names() -> list[str]:
    return [*PRETRAINED_BUILTINS, *TINY_RANDOM]


def _resolve_builtin(short: str, need_weights: bool) -> Path:
    if short in TINY_RANDOM:
        return ensure_tiny_random(short)
    if short not in PRETRAINED_BUILTINS:
        names = _builtin_names()
        raise ModelError(
            f"unknown built-in model 'builtin:{short}'{did_you_mean(short, names)}; "
            f"known: {', '.join(names)} (see `tunelab models`)"
        )
    path = builtin_models_dir() / short
    if need_weights and not has_weights(path):
        raise ModelError(
            f"built-in model 'builtin:{short}' has a tokenizer but no weights yet ({path} has no "
            f"model.safetensors). Rebuild it with `python -m tunelab_build.pretrain configs/pretrain/{short}.yaml "
            f"--work-dir DIR`, or use builtin:tiny-random-qwen2 for a random-init model"
        )
    return path


def ensure_tiny_random(short: str) -> Path:
    """Return the cached folder of a `tiny-random-*` model, building it (seed 0) if needed.

    A folder whose build stamp differs from what this version would build is rebuilt, so the
    same name always means the same weights. Building goes to a temporary folder that is
    renamed into place, so two processes starting at once never see a half-written model.
    """
    arch = TINY_RANDOM[short]
    target = cache_dir() / short
    want = tiny.build_spec(arch, seed=0, **tiny.DEFAULT_SIZES)
    stamp = target / tiny.STAMP_FILE
    if _read_json(stamp) == want:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time (torchrun ranks, parallel test workers): the lock makes
    # check-build-replace atomic, so nobody deletes a folder another process just put in place.
    with open(target.parent / f".{short}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _read_json(stamp) != want:
            tmp = target.parent / f".{short}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tiny.build_tiny_model(arch, tmp, seed=0)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
            log.info("built %s into %s", short, target)
    return target


def list_builtin_models() -> list[dict[str, Any]]:
    """Describe every built-in model for `tunelab models`.

    Returns:
        One dict per model: `name`, `ref` (`builtin:NAME`), `kind` (pretrained / random-init),
        `description` (one line), `card` (README.md text or None), `parameters` (int or None),
        `available` (weights present or buildable).
    """
    out = []
    for short in PRETRAINED_BUILTINS:
        path = builtin_models_dir() / short
        meta = _read_json(path / "pretrain_meta.json") or {}
        card = (path / "README.md").read_text(encoding="utf-8") if (path / "README.md").is_file() else None
        available = has_weights(path)
        params = meta.get("parameters")
        if params is None and available and (path / "config.json").is_file():
            from transformers import AutoConfig

            params = tiny.count_config_parameters(AutoConfig.from_pretrained(path))
        if not available:
            description = "tokenizer only: weights not built yet (python -m tunelab_build.pretrain)"
        elif card:
            description = _first_paragraph(card)
        elif meta:
            description = (
                f"code model pretrained by tunelab ({meta.get('step', '?')} steps, "
                f"held-out loss {meta.get('val_loss', float('nan')):.3f})"
            )
        else:
            description = "pretrained built-in model"
        out.append({"name": short, "ref": BUILTIN_PREFIX + short, "kind": "pretrained",
                    "description": description, "card": card, "parameters": params, "available": available})
    for short, arch in TINY_RANDOM.items():
        params = tiny.count_config_parameters(tiny.tiny_config(arch, **tiny.DEFAULT_SIZES))
        out.append({"name": short, "ref": BUILTIN_PREFIX + short, "kind": "random-init",
                    "description": f"random-init {arch} model for tests and smoke runs (untrained)",
                    "card": None, "parameters": params, "available": True})
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _first_paragraph(text: str) -> str:
    """The first non-heading paragraph of a Markdown card, on one line."""
    for block in text.split("\n\n"):
        block = block.strip()
        if block and not block.startswith("#"):
            return " ".join(block.split())
    return ""


# --------------------------------------------------------------------------------------------
# Device and dtype
# --------------------------------------------------------------------------------------------


def pick_device(pref: str = "auto") -> torch.device:
    """`auto` = cuda if available, else mps, else cpu; an explicit device must exist."""
    if pref not in ("auto", "cpu", "cuda", "mps"):
        raise ModelError(f"unknown device '{pref}'{did_you_mean(pref, ['auto', 'cpu', 'cuda', 'mps'])}; use auto, cpu, cuda or mps")
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if pref == "cuda" and not torch.cuda.is_available():
        raise ModelError("model.device is cuda but no CUDA GPU is visible to torch; use device: auto or cpu")
    if pref == "mps" and not has_mps:
        raise ModelError("model.device is mps but Apple's MPS backend is not available; use device: auto or cpu")
    return torch.device(pref)


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_dtype(pref: str, device: torch.device | str) -> torch.dtype:
    """`auto` = float32 on CPU and MPS, bfloat16 on CUDA when supported, else float16.

    CPUs run bfloat16 matmuls far slower than float32 (about 15x on the machines we measured),
    so `auto` never picks it there even though the weights may be stored in bfloat16.
    """
    device = torch.device(device)
    if pref == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if pref not in _DTYPES:
        raise ModelError(f"unknown dtype '{pref}'; use auto, float32, bfloat16 or float16")
    dtype = _DTYPES[pref]
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ModelError("this GPU does not support bfloat16; use dtype: float16 or auto")
    if device.type == "cpu" and dtype != torch.float32:
        log.warning("dtype %s on CPU is much slower than float32; dtype: auto picks float32", pref)
    return dtype


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_tokenizer(model_cfg: ModelConfig):
    """Load the model's tokenizer, with a pad token and right padding (the training default).

    A tokenizer without a pad token gets its eos token as pad (labels mask padding anyway).
    Generation code sets `padding_side = "left"` itself.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = resolve_model_path(model_cfg.name, need_weights=False)
    # transformers 5 ignores a folder's declared generic class for some model types (qwen2,
    # phi3, ...) and rebuilds the family's own pre-tokenizer, which re-tokenizes a custom
    # tokenizer.json (digits, whitespace runs). A folder that declares the generic class gets
    # exactly its tokenizer.json. (builtin:tiny-code declares Qwen2Tokenizer: it was trained
    # with Qwen2's own pre-tokenizer, so both ways give the same ids.)
    generic = _declared_tokenizer_class(path, model_cfg.revision) in _GENERIC_TOKENIZERS
    loader = PreTrainedTokenizerFast if generic else AutoTokenizer
    try:
        tok = loader.from_pretrained(path, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code)
    except (OSError, ValueError, ImportError) as e:
        raise _explain_load_error(e, model_cfg.name, path, "tokenizer") from e
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ModelError(f"the tokenizer of '{model_cfg.name}' has neither a pad nor an eos token")
        tok.pad_token = tok.eos_token
        log.info("tokenizer of %s has no pad token: using eos %r as pad", model_cfg.name, tok.eos_token)
    tok.padding_side = "right"
    return tok


_GENERIC_TOKENIZERS = ("PreTrainedTokenizerFast", "TokenizersBackend")


def _declared_tokenizer_class(path: str, revision: str | None) -> str | None:
    """`tokenizer_class` from tokenizer_config.json (local or hub cache), if it can be read."""
    if Path(path).is_dir():
        return (_read_json(Path(path) / "tokenizer_config.json") or {}).get("tokenizer_class")
    try:
        from transformers.models.auto.tokenization_auto import get_tokenizer_config

        return get_tokenizer_config(path, revision=revision).get("tokenizer_class")
    except Exception:  # noqa: BLE001 - unreadable here; AutoTokenizer then reports the real error
        return None


def _no_load_bars_off_terminal() -> None:
    """transformers draws a "Loading weights" bar per load; in a log file (CI, a sweep trial's
    log) each is a line of carriage returns, and a run loads many models. Keep it on a terminal."""
    import sys

    if not sys.stderr.isatty():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def load_model(model_cfg: ModelConfig, device: torch.device | str | None = None):
    """Load the causal LM named by `model_cfg` onto `device` (default: `model_cfg.device`).

    Weights are cast to `pick_dtype(model_cfg.dtype, device)` (bfloat16 files are upcast to
    float32 on CPU). With `load_in_4bit` the base is quantised to NF4 for QLoRA and prepared
    for k-bit training (norms in float32, input grads enabled); gradient checkpointing is left
    to the training config.
    """
    from transformers import AutoModelForCausalLM

    _no_load_bars_off_terminal()
    device = pick_device(model_cfg.device) if device is None else torch.device(device)
    dtype = pick_dtype(model_cfg.dtype, device)
    path = resolve_model_path(model_cfg.name)
    _check_local_model_dir(model_cfg.name, path)
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "attn_implementation": model_cfg.attn_implementation,
        "trust_remote_code": model_cfg.trust_remote_code,
        "revision": model_cfg.revision,
    }
    if model_cfg.load_in_4bit:
        kwargs["quantization_config"] = _bnb_config(device)
        # bitsandbytes places weights while quantising; .to() afterwards is not allowed.
        kwargs["device_map"] = {"": device.index if device.index is not None else torch.cuda.current_device()}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError, ImportError) as e:
        raise _explain_load_error(e, model_cfg.name, path, "model") from e
    if model_cfg.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model.to(device)
    return model


def load_base(model_cfg: ModelConfig, device: torch.device | str | None = None):
    """Load `(model, tokenizer)` for `model_cfg`, with the model's pad id matching the tokenizer."""
    tok = load_tokenizer(model_cfg)
    model = load_model(model_cfg, device)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    gen = getattr(model, "generation_config", None)
    if gen is not None and gen.pad_token_id is None:
        gen.pad_token_id = tok.pad_token_id
    return model, tok


def _bnb_config(device: torch.device):
    """NF4 + double quantisation, computing in bfloat16 where the GPU supports it."""
    if device.type != "cuda" or importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(
            "load_in_4bit needs a CUDA GPU and bitsandbytes; "
            f"device is {device.type}"
            + ("" if importlib.util.find_spec("bitsandbytes") else " and bitsandbytes is not installed")
            + ". Install with `pip install tunelab[qlora]` on a CUDA machine, or set model.load_in_4bit: false"
        )
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def _check_local_model_dir(name: str, path: str) -> None:
    """Explain a local folder that is not a model before transformers does it cryptically."""
    p = Path(path)
    if not p.is_dir() or (p / "config.json").is_file():
        return
    if (p / "adapter_config.json").is_file():
        raise ModelError(
            f"'{name}' is a PEFT adapter, not a base model: load it as a model ref "
            f"(e.g. `tunelab generate -m {name}`) or set model.name to its base model"
        )
    raise ModelError(f"'{name}' is not a model folder: it has no config.json")


def _explain_load_error(err: Exception, name: str, path: str, what: str) -> ModelError:
    """Turn a transformers/hub exception into a ModelError that says what to change."""
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, ImportError) and "flash" in str(err).lower():
        return ModelError(
            f"attn_implementation flash_attention_2 is not available here ({msg}); "
            f"set model.attn_implementation: sdpa"
        )
    if "trust_remote_code" in str(err):
        return ModelError(
            f"'{name}' needs its own code from the hub to load; if you trust it, set "
            f"model.trust_remote_code: true ({msg})"
        )
    if Path(path).is_dir():
        return ModelError(f"cannot load the {what} from {path}: {msg}")
    from huggingface_hub.constants import is_offline_mode

    if is_offline_mode():
        return ModelError(
            f"cannot load the {what} '{name}': HF_HUB_OFFLINE is set and it is not in the local "
            f"hub cache. Download it once with network access, or give a local folder ({msg})"
        )
    return ModelError(
        f"cannot load the {what} '{name}' from the Hugging Face hub: {msg}. Check the id and "
        f"revision; the hub may be unreachable (no network): set HF_HUB_OFFLINE=1 to use only "
        f"the local cache, or give a local folder"
    )
