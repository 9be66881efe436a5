"""What a model variant's outputs depend on, as a short string: the weights it is made of.

Caches (eval fingerprints, compare views) and the base-weights guards (a finished run under
`tunelab run`, `tunelab train --resume`) compare these strings, so a retrained adapter or a
base model whose files changed under the same name is never mistaken for the old one.

    base:<name>@<revision>[#<hash of the weight files>]    a base model
    <label>:<hash of the base identity and the variant's weight/config files>    a variant

A base in a local folder (built-in models included) is hashed; a hub id is named by its
revision only (its files live in the hub cache, which names them by revision already).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tunelab.config import ModelConfig
from tunelab.errors import ModelError
from tunelab.models import loading

_WEIGHT_SUFFIXES = (".safetensors", ".bin")
# Folder -> ((file, size, mtime) of its weight files, digest): hashing a 1 GB base once per
# process, not once per variant that sits on it. Only large folders are cached: rewriting
# that many bytes takes longer than a file system's timestamp granularity, so (size, mtime)
# tells a changed file; small ones are simply hashed again.
_CACHE_MIN_BYTES = 16 << 20
_DIGESTS: dict[Path, tuple[tuple[tuple[str, int, int], ...], str]] = {}


def hash_files(h: Any, files: Iterable[Path]) -> Any:
    """Feed each file's bytes to the hash object `h`, in 1 MB blocks; returns `h`."""
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h


def base_identity(model_cfg: ModelConfig) -> str:
    """`base:<name>@<revision>`, plus a hash of the weights when they are in a local folder.

    A newer tunelab may ship other built-in weights under the same name, and a user may
    overwrite a local folder: cached results and resumed runs must notice both.
    """
    ident = f"base:{model_cfg.name}@{model_cfg.revision}"
    try:
        folder = Path(loading.resolve_model_path(model_cfg.name))
    except ModelError:  # gone or unknown: nothing to hash; loading it says what is wrong
        return ident
    if folder.is_dir():
        ident += f"#{_weights_digest(folder)}"
    return ident


def folder_identity(label: str, folder: Path, base: str) -> str:
    """`<label>:<hash>` of the base identity `base` and the weight and config files in `folder`.

    Training bookkeeping (`state.json`) and tokenizer files are left out: they do not change the
    outputs of the weights. `label` names the kind of folder, not the variant, so identical
    adapters (`final` and the last `step-N`) get one identity and are scored once.
    """
    h = hashlib.sha256(base.encode())
    for f in sorted(Path(folder).iterdir()):
        if f.suffix in _WEIGHT_SUFFIXES or f.name in _CONFIG_FILES:
            h.update(f.name.encode())
            hash_files(h, [f])
    return f"{label}:{h.hexdigest()[:16]}"


# What decides a folder's outputs besides its weights. Tokenizer files are left out: a variant
# is always run with its run's tokenizer and template (and final/ carries a copy of them that
# checkpoints do not, which would make byte-identical adapters look different).
_CONFIG_FILES = ("adapter_config.json", "config.json", "generation_config.json")


def same_base(recorded: str | None, now: str) -> bool:
    """Whether a recorded base identity names the weights `now` names.

    Nothing recorded (a run from before tunelab recorded it) counts as the same; so does a
    record without a hash for a local folder that tunelab did not hash yet then.
    """
    if recorded is None or recorded == now:
        return True
    return "#" not in recorded and now.split("#", 1)[0] == recorded


def _weights_digest(folder: Path) -> str:
    files = sorted(f for f in folder.iterdir() if f.suffix in _WEIGHT_SUFFIXES and f.is_file())
    stamp = tuple((f.name, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()])
    key = folder.resolve()
    cached = _DIGESTS.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    digest = hash_files(hashlib.sha256(), files).hexdigest()[:16]
    if sum(size for _, size, _ in stamp) >= _CACHE_MIN_BYTES:
        _DIGESTS[key] = (stamp, digest)
    return digest
