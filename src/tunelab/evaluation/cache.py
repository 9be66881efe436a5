"""The shared evaluation cache: a record computed once serves every run that asks the same thing.

Every run and sweep trial that evaluates the same base model on the same task, items and
settings would generate and score the same records again. They are kept here instead, under a
key that hashes everything that decides a record:

    $TUNELAB_CACHE/eval/<key>/entry.json         what the key stands for (for people; never read)
    $TUNELAB_CACHE/eval/<key>/<item hash>.json   one record per item, as the engine wrote it

The key is the record `fingerprint` of the engine (task name, version and options, split,
prompt options, generation settings with seed and sample count, the variant's weights identity
with its adapter, chat template mode and backend, the judge) plus what a run fixes but that
fingerprint leaves out: how the weights are run (device type and GPU, dtype, 4-bit, attention
implementation), the text of the chat template in use (the base's tokenizer and config files,
tunelab's ChatML and plain templates), the few-shot examples, the sandbox limits of
code-executing tasks and the versions of tunelab, torch and transformers. The item hash (id and
content) names the file, so re-shipped data is never served. A variant served by an HTTP
endpoint (`eval.backend: openai`) is not cached here: a name on a server is no weights identity.

No work twice at once: an evaluation that computes records of an entry holds the entry's lock
(`flock` on `<key>/.lock`) from reading what is there until its last record is stored. A second
evaluation of the same key (a sweep trial on the same base, started beside the first) waits for
it and is then served what the first computed, instead of generating the same records beside it.
The lock dies with its process, so a killed evaluation never leaves a stale one; a holder that
hangs for `LOCK_WAIT_S` (an hour) is given up on, and the waiter computes the records itself.

Safety: each record is written to a temporary file of its own in the entry folder and renamed
over the record's name, so concurrent writers of one entry (sweep trials evaluating the same
base at once) never tear each other's files and a reader sees a whole record or none. A record
that does not parse or does not match its key, item and fields is ignored, computed again and
overwritten. The cache only ever saves work: a failure to read or write it is a warning.

Each run still copies the records it uses into its own `eval/<variant>/<task>/samples.jsonl`
(marked `"shared_cache": <key>`), so a run directory stays self-contained. Switch the cache off
with `eval.shared_cache: false` or `TUNELAB_SHARED_CACHE=0`; move it with `TUNELAB_EVAL_CACHE`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from tunelab.models.paths import eval_cache_dir
from tunelab.runs import fingerprint as hash_json
from tunelab.runs import atomic_write_text, json_safe

log = logging.getLogger(__name__)
ENV_SWITCH = "TUNELAB_SHARED_CACHE"
_OFF = ("0", "false", "no", "off")
_FIELDS = {"generations": list, "scores": list, "values": dict, "timing": dict}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
LOCK_WAIT_S = 3600.0  # a holder silent this long is taken for hung: the waiter computes itself
LOCK_POLL_S = 0.2
_MAX_HASHED_BYTES = 64 << 20  # model-folder files above this are weights, not template or config


def shared_cache_enabled(cfg: Any) -> bool:
    """Whether evaluations read and fill the shared cache: `eval.shared_cache`, unless the
    environment variable TUNELAB_SHARED_CACHE says 0/false/no/off."""
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF:
        return False
    return bool(getattr(cfg, "shared_cache", True))


class SharedCache:
    """The shared cache of one evaluation (see the module docstring).

    Args:
        root: where entries live; default `$TUNELAB_EVAL_CACHE`, else `$TUNELAB_CACHE/eval`.

    Attributes:
        hits: records served since the last `take_hits()`.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else eval_cache_dir()
        self.hits = 0
        self._folders: dict[str, str | None] = {}  # base model name -> hash of its non-weight files
        self._warned = False

    @classmethod
    def open(cls, cfg: Any) -> SharedCache | None:
        """The shared cache, or None when `cfg` (or the environment) switches it off."""
        return cls() if shared_cache_enabled(cfg) else None

    def take_hits(self) -> int:
        """Records served since the last call (for the console line)."""
        hits, self.hits = self.hits, 0
        return hits

    def entry(self, fp: str, task: Any, session: Any, sandbox: Any = None,
              shots: Sequence[Any] = ()) -> CacheEntry | None:
        """The entry of records with fingerprint `fp` of `task` on `session`'s variant, or None
        when the variant has no weights identity to key on (an HTTP endpoint)."""
        if getattr(session, "backend", None) == "openai":
            return None
        parts = {
            "record": fp,
            "task": task.name,
            "variant": getattr(session, "identity", None),
            "runtime": _runtime(getattr(session, "model_ref", None)),
            "template": {"mode": getattr(session, "chat_template", None), "files": self._folder_hash(session),
                         "builtin": _builtin_templates()},
            "shots": hash_json([{"id": s.id, "data": s.data} for s in shots]) if shots else None,
            "sandbox": _sandbox(sandbox) if getattr(task, "executes_code", False) else None,
            "versions": _versions(getattr(session, "backend", None)),
        }
        return CacheEntry(self, hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32],
                          fp, parts)

    def _folder_hash(self, session: Any) -> str | None:
        ref = getattr(session, "model_ref", None)
        if ref is None:
            return None
        name = ref.base_config().name
        if name not in self._folders:
            self._folders[name] = _non_weight_files_hash(name)
        return self._folders[name]

    def warn(self, what: str, err: Exception) -> None:
        """Log a failed read or write once per evaluation; the evaluation goes on without it."""
        if not self._warned:
            log.warning("shared eval cache %s: %s failed (%s); evaluating without it", self.root, what, err)
            self._warned = True


class CacheEntry:
    """The records of one key: `load` the ones there are, `store` each one computed."""

    def __init__(self, cache: SharedCache, key: str, fp: str, parts: dict[str, Any]) -> None:
        self.cache, self.key, self.fp, self.parts = cache, key, fp, parts
        self.dir = cache.root / key

    @contextlib.contextmanager
    def claim(self, what: str = "", wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
        """Hold this entry's lock: one evaluation at a time reads and fills it (see the module
        docstring). Waiting for another evaluation is said once (`what`: e.g. "base on compose");
        after `wait_s` seconds of waiting (a hung holder) this evaluation computes on its own. A
        lock that cannot be taken (a lock-less filesystem) is a warning, not a failure."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:
            self.cache.warn("locking an entry", e)
            yield
            return
        held = False
        try:
            held = self._lock(fd, what, wait_s)
            yield
        finally:
            if held:  # explicit: a child forked while it was held must not keep it
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _lock(self, fd: int, what: str, wait_s: float) -> bool:
        """Take the lock, waiting at most `wait_s` for another holder; whether it is held."""
        deadline, said = time.monotonic() + wait_s, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if not said:
                    log.warning("%sanother evaluation is computing the same records (shared eval cache %s): "
                                "waiting for it instead of computing them twice", f"{what}: " if what else "",
                                self.key)
                    said = True
                if time.monotonic() >= deadline:
                    log.warning("%sthe other evaluation still holds shared eval cache %s after %.0f s: computing "
                                "the missing records here", f"{what}: " if what else "", self.key, wait_s)
                    return False
                time.sleep(LOCK_POLL_S)
            except OSError as e:
                self.cache.warn("locking an entry", e)
                return False

    def load(self, items: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """Valid records by sample id, for `items` (id -> item hash); others are left out."""
        out: dict[str, dict[str, Any]] = {}
        if not self.dir.is_dir():
            return out
        for sid, item in items.items():
            path = self.dir / f"{item}.json"
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError, ValueError):
                continue  # torn or garbled: computed again and overwritten
            if self._valid(rec, sid, item):
                out[sid] = rec
        self.cache.hits += len(out)
        return out

    def _valid(self, rec: Any, sid: str, item: str) -> bool:
        return (isinstance(rec, dict) and rec.get("id") == sid and rec.get("item") == item
                and rec.get("fingerprint") == self.fp
                and all(isinstance(rec.get(k), t) for k, t in _FIELDS.items())
                and all(isinstance(rec["timing"].get(k), (int, float)) for k in ("generate_s", "score_s")))

    def store(self, rec: dict[str, Any]) -> None:
        """Write one computed record (whole, atomically) under its item hash."""
        clean = {k: v for k, v in rec.items() if k not in ("copied_from", "shared_cache")}
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not (self.dir / "entry.json").is_file():
                atomic_write_text(self.dir / "entry.json", json.dumps({"key": self.key, **self.parts}, indent=1,
                                                                      default=str), durable=False)
            # Temp + rename (the writer's own temporary): concurrent writers of one record never
            # tear it; either whole copy wins.
            atomic_write_text(self.dir / f"{rec['item']}.json", json.dumps(json_safe(clean)), durable=False)
        except OSError as e:
            self.cache.warn("writing a record", e)


# ---- the parts of a key ---------------------------------------------------------------------------


def _runtime(ref: Any) -> dict[str, Any] | None:
    """How the variant's weights are run: device type (and GPU), dtype, 4-bit, attention."""
    if ref is None:
        return None
    from tunelab.errors import ModelError
    from tunelab.models.loading import pick_device, pick_dtype

    cfg = ref.base_config()
    out: dict[str, Any] = {"load_in_4bit": cfg.load_in_4bit, "attn_implementation": cfg.attn_implementation}
    try:
        device = pick_device(cfg.device)
    except ModelError:  # loading the model says what is wrong
        return {**out, "device": cfg.device, "dtype": cfg.dtype}
    out.update(device=device.type, dtype=str(pick_dtype(cfg.dtype, device)).removeprefix("torch."))
    if device.type == "cuda":
        import torch

        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def _non_weight_files_hash(name: str) -> str | None:
    """Hash of the tokenizer, template and config files of a local base model folder (what the
    weights hash leaves out but prompts and generation depend on); None for a hub id, whose
    revision in the weights identity names its files."""
    from tunelab.errors import ModelError
    from tunelab.models.identity import hash_files
    from tunelab.models.loading import resolve_model_path

    try:
        folder = Path(resolve_model_path(name, need_weights=False))
    except ModelError:
        return None
    if not folder.is_dir():
        return None
    files = sorted(f for f in folder.iterdir()
                   if f.is_file() and f.suffix not in _WEIGHT_SUFFIXES and f.stat().st_size <= _MAX_HASHED_BYTES)
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        hash_files(h, [f])
    return h.hexdigest()[:16]


def _builtin_templates() -> str:
    from tunelab.data.tokenize import CHATML_TEMPLATE, PLAIN_TEMPLATE

    return hash_json([CHATML_TEMPLATE, PLAIN_TEMPLATE])


def _sandbox(sandbox: Any) -> Any:
    """The limits code runs under (a timeout decides a verdict), and whether it is isolated."""
    if sandbox is None:
        return None
    limits = getattr(sandbox, "limits", None)
    limits = dataclasses.asdict(limits) if dataclasses.is_dataclass(limits) else repr(limits)
    return {"limits": limits, "isolate": getattr(sandbox, "isolate", None)}


def _versions(backend: str | None) -> dict[str, str | None]:
    import tunelab

    out: dict[str, str | None] = {"tunelab": tunelab.__version__}
    for pkg in ("torch", "transformers", *(("vllm",) if backend == "vllm" else ())):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


# ---- what the judge spent ---------------------------------------------------------------------------


def judge_tokens(judge: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens an API judge has used so far, or None for a judge that does
    not count them (a local model: its cost is device time)."""
    stats = getattr(judge, "stats", None)
    if not isinstance(stats, dict) or "completion_tokens" not in stats:
        return None
    return int(stats.get("prompt_tokens") or 0), int(stats.get("completion_tokens") or 0)


def judge_usage(records: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    """Judge tokens the records computed here cost: records copied from a sibling variant or
    served by the shared cache were paid for once already, elsewhere. None: no judge counted."""
    own = [r["judge_tokens"] for r in records
           if isinstance(r.get("judge_tokens"), dict) and not r.get("copied_from") and not r.get("shared_cache")]
    if not any(isinstance(r.get("judge_tokens"), dict) for r in records):
        return None
    return {k: round(sum(float(t.get(k) or 0.0) for t in own), 3) for k in ("prompt_tokens", "completion_tokens")}
