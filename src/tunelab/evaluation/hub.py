"""Benchmark rows for the evaluation tasks: a local file, a saved `datasets` folder, a dataset
folder or a Hugging Face hub id, with a record of exactly what was read.

    load_benchmark("math-word", dataset="openai/gsm8k", subset="main", split="test")
    load_benchmark("math-word", path="gsm8k.jsonl")      # .jsonl/.json/.csv/.parquet: data.sources.read_rows
    load_benchmark("math-word", path="gsm8k-saved")      # a Dataset(Dict).save_to_disk folder: load_from_disk
    load_benchmark("stdio", dataset="livecodebench/code_generation_lite", files=("test.jsonl", "test2.jsonl"))

A hub id and a local dataset folder (data files laid out as in the hub repository, configs in
its README.md) take the same path, `datasets.load_dataset(id or folder, subset, split=...,
revision=...)`; with `files` (repositories whose loading script `datasets` no longer runs, such
as LiveCodeBench's), the named data files are fetched from the repository (`hf_hub_download`,
which an offline run answers from the hub cache) or taken from the folder, and read with
`load_dataset("json" | "parquet" | "csv", data_files=...)`.

`Benchmark.provenance` says where the rows came from, for the task summary's `data`: the
source, dataset id or path, config, split, the requested `revision`, the hub `commit` that was
read where it is known (the snapshot folder of fetched files; the commit folder of the
`datasets` cache, which is the repository commit for data-file repositories and the
parquet-export commit for converted ones), the dataset's `fingerprint` (`datasets`' hash of its
content and history), the `sha256` of a local file, and the row count.

Anything that cannot be loaded is an `EvalError` naming the task, the dataset and what to do:
an unreachable hub or offline mode (`HF_HUB_OFFLINE`, `HF_DATASETS_OFFLINE`) for data that is
not cached says how to bring it here (save it to disk on a machine with network, then `path`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import EvalError, TunelabError

_SHA = re.compile(r"^[0-9a-f]{40}$")
_NETWORK = {"ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError", "TransportError",
            "ConnectError", "NetworkError", "TimeoutException", "TimeoutError", "ConnectTimeout", "ReadTimeout"}
_BUILDERS = {".jsonl": "json", ".json": "json", ".ndjson": "json", ".parquet": "parquet", ".csv": "csv"}


@dataclass
class Benchmark:
    """The rows of one benchmark split, each with its origin (`id[i]`, `path:line`), and where
    they came from."""

    rows: list[dict[str, Any]]
    origins: list[str]
    index: list[int]  # each row's position in the file or dataset split (before `keep`)
    provenance: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # short name for sample ids: `gsm8k` for openai/gsm8k, its folder or a saved one's dataset


def load_benchmark(task: str, *, path: str | None = None, dataset: str | None = None, subset: str | None = None,
                   split: str = "test", revision: str | None = None, files: Sequence[str] | None = None,
                   keep: Callable[[dict[str, Any]], bool] | None = None,
                   keep_columns: Sequence[str] = ()) -> Benchmark:
    """The rows of `split` of a benchmark, from `path` (a file or a saved folder) or `dataset`
    (a hub id or a local folder; a saved folder works there too).

    Args:
        task: the task asking (for messages: `eval.task_options.TASK.OPTION`).
        subset: the `datasets` config name (None: the dataset's only one).
        split: the dataset's split to read (not used for a single file or `files`).
        revision: a hub branch, tag or commit (hub ids only).
        files: data files of the repository or folder to read instead of its configs.
        keep: a filter applied before rows are materialised (large benchmarks keep a few);
            it sees only `keep_columns` where they are given.

    Raises:
        EvalError: nothing at `path`, an unreachable hub, a missing config or split, ...
    """
    if path and dataset:
        raise EvalError(f"task '{task}': set either path or dataset, not both (path={path!r}, dataset={dataset!r})")
    if not (path or dataset):
        raise EvalError(f"task '{task}': no data source (set eval.task_options.{task}.path or .dataset)")
    where = Path(str(path or dataset)).expanduser()
    if where.is_file():
        if revision or files:
            raise EvalError(f"task '{task}': {where} is a file; revision and data files apply to datasets only")
        return _from_file(task, where, keep)
    if where.is_dir() and _saved_kind(where):
        if revision:
            raise EvalError(f"task '{task}': {where} is a saved dataset folder; revision applies to hub ids only")
        return _from_saved(task, where, split, keep, keep_columns)
    if path is not None and not where.is_dir():
        hint = (f"; for a hub dataset set eval.task_options.{task}.dataset: {path}"
                if re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) else "")
        raise EvalError(f"task '{task}': data file not found: {path}{hint}")
    if where.is_dir() and revision:
        raise EvalError(f"task '{task}': {where} is a local folder; revision applies to hub ids only")
    return _from_datasets(task, str(path or dataset), subset, split, revision, files, keep, keep_columns)


# ---- the sources ---------------------------------------------------------------------------------


def _from_file(task: str, path: Path, keep: Callable[[dict[str, Any]], bool] | None) -> Benchmark:
    from tunelab.config import SourceConfig
    from tunelab.data.sources import read_rows, shown_path

    try:
        pairs = read_rows(SourceConfig(path=str(path)))
    except TunelabError as e:
        raise EvalError(f"task '{task}': {e}") from None
    kept = [(i, r, o) for i, (r, o) in enumerate(pairs) if keep is None or keep(r)]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    prov = {"source": "file", "path": str(shown_path(path)), "sha256": digest, "rows": len(pairs)}
    return Benchmark([r for _, r, _ in kept], [o for _, _, o in kept], [i for i, _, _ in kept], prov, path.stem)


def _saved_kind(folder: Path) -> str | None:
    """'dict' for a DatasetDict.save_to_disk folder, 'dataset' for a Dataset's, else None."""
    if (folder / "dataset_dict.json").is_file():
        return "dict"
    if (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file():
        return "dataset"
    return None


def _from_saved(task: str, folder: Path, split: str, keep: Callable[[dict[str, Any]], bool] | None,
                keep_columns: Sequence[str]) -> Benchmark:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as e:  # a damaged or foreign folder: the user's to fix
        raise EvalError(f"task '{task}': cannot read the saved dataset {folder}: {type(e).__name__}: {e}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise EvalError(f"task '{task}': the saved dataset {folder} has no split '{split}'; it has: "
                            f"{', '.join(loaded)} (map splits with eval.task_options.{task}.split_map)")
        ds, used = loaded[split], split
    else:
        ds, used = loaded, None  # one saved split: it is the data, whatever split is asked
    bench = _materialise(ds, str(folder), keep, keep_columns)
    bench.provenance = {"source": "saved", "path": str(folder), "dataset": ds.info.dataset_name,
                        "config": ds.info.config_name, "split": used, **_identity(ds), "rows": len(ds)}
    bench.name = ds.info.dataset_name or folder.name
    return bench


def _from_datasets(task: str, name: str, subset: str | None, split: str, revision: str | None,
                   files: Sequence[str] | None, keep: Callable[[dict[str, Any]], bool] | None,
                   keep_columns: Sequence[str]) -> Benchmark:
    import datasets

    local = Path(name).expanduser().is_dir()
    commit = revision if revision and _SHA.match(revision) else None
    try:
        if files:
            paths = [_data_file(task, name, f, revision, local) for f in files]
            commits = {Path(p).parent.name for p in paths if Path(p).parent.parent.name == "snapshots"}
            commit = next(iter(commits)) if len(commits) == 1 else commit
            builder = _BUILDERS.get(Path(files[0]).suffix.lower())
            if builder is None or any(_BUILDERS.get(Path(f).suffix.lower()) != builder for f in files):
                raise EvalError(f"task '{task}': data files must all be one of {', '.join(_BUILDERS)}: {list(files)}")
            ds = datasets.load_dataset(builder, data_files=paths, split="train")
        else:
            ds = datasets.load_dataset(name, subset, split=split, revision=revision)
    except TunelabError:
        raise
    except Exception as e:  # noqa: BLE001 - network, auth, config, split: explained for a person
        raise explain_failure(task, name, subset, split, revision, files, e) from None
    bench = _materialise(ds, name, keep, keep_columns)
    ident = _identity(ds)
    bench.provenance = {"source": "folder" if local else "hub", "dataset": name,
                        "config": None if files else (ds.info.config_name or subset),
                        "split": None if files else split, "revision": revision,
                        "commit": commit or ident.pop("commit", None), **ident, "rows": len(ds)}
    if files:
        bench.provenance["files"] = list(files)
    bench.name = Path(name).name
    return bench


def _data_file(task: str, name: str, filename: str, revision: str | None, local: bool) -> str:
    """A data file of a local folder or a hub dataset repository (fetched into the hub cache)."""
    if local:
        path = Path(name).expanduser() / filename
        if not path.is_file():
            present = sorted(p.name for p in Path(name).expanduser().iterdir() if p.is_file())
            raise EvalError(f"task '{task}': {name} has no data file {filename}; it has: {', '.join(present) or 'none'}")
        return str(path)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(name, filename, repo_type="dataset", revision=revision)


def _materialise(ds: Any, label: str, keep: Callable[[dict[str, Any]], bool] | None,
                 keep_columns: Sequence[str]) -> Benchmark:
    """Rows as dicts with origins `label[i]` (i: the row's index in the dataset), filtered on
    the cheap columns first so that large columns are decoded only for the rows kept."""
    if keep is None:
        index = list(range(len(ds)))
    else:
        cols = [c for c in keep_columns if c in ds.column_names]
        view = ds.select_columns(cols) if cols else ds
        index = [i for i, row in enumerate(view) if keep(row)]
        ds = ds.select(index)
    return Benchmark([dict(r) for r in ds], [f"{label}[{i}]" for i in index], index)


def _identity(ds: Any) -> dict[str, Any]:
    """The dataset's fingerprint, version and the hub commit its cache folder is named by."""
    out: dict[str, Any] = {"fingerprint": getattr(ds, "_fingerprint", None)}
    version = getattr(ds.info, "version", None)
    if version is not None and str(version) != "0.0.0":
        out["version"] = str(version)
    for entry in getattr(ds, "cache_files", None) or []:
        parts = Path(str(entry.get("filename", ""))).parts
        shas = [p for p in parts if _SHA.match(p)]
        if shas:
            out["commit"] = shas[-1]
            break
    return out


# ---- failures, for people ----------------------------------------------------------------------------


def _is_network(e: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (ConnectionError, TimeoutError)) or {c.__name__ for c in type(cur).__mro__} & _NETWORK:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def offline_mode() -> bool:
    """Whether `datasets` / `huggingface_hub` were told not to use the network."""
    try:
        import datasets.config
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(datasets.config.HF_HUB_OFFLINE or constants.HF_HUB_OFFLINE)


def offline_recipe(task: str, name: str, subset: str | None, revision: str | None,
                   files: Sequence[str] | None) -> str:
    """How to bring a dataset to a machine without network: save it where there is network,
    then point the task at the folder."""
    folder = Path(name).name or "data"
    if files:
        patterns = ", ".join(repr(f) for f in files)
        rev = f", revision={revision!r}" if revision else ""
        get = (f"python -c \"from huggingface_hub import snapshot_download; snapshot_download({name!r}, "
               f"repo_type='dataset', allow_patterns=[{patterns}], local_dir={folder!r}{rev})\"")
        option = "dataset"
    else:
        args = ", ".join([repr(name), *([repr(subset)] if subset else []), *([f"revision={revision!r}"] if revision else [])])
        get = f"python -c \"import datasets; datasets.load_dataset({args}).save_to_disk({folder!r})\""
        option = "path"
    return (f"on a machine with network run `{get}`, copy the folder {folder}/ here and set "
            f"eval.task_options.{task}.{option}: {folder} (or run once with network, so that the hub cache "
            "under HF_HOME holds it, and copy that cache)")


def explain_failure(task: str, name: str, subset: str | None, split: str, revision: str | None,
                    files: Sequence[str] | None, e: BaseException) -> EvalError:
    """The EvalError for a dataset that `datasets` could not load."""
    what = f"files {', '.join(files)}" if files else ", ".join(
        x for x in (f"config '{subset}'" if subset else "", f"split '{split}'",
                    f"revision '{revision}'" if revision else "") if x)
    head = f"task '{task}': cannot load dataset '{name}' ({what})"
    kind = {c.__name__ for c in type(e).__mro__}
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if _is_network(e):
        why = ("offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)" if offline_mode()
               else f"the hub cannot be reached ({type(e).__name__})")
        return EvalError(f"{head}: {why}, and the data is not in the local cache. To get it: "
                         f"{offline_recipe(task, name, subset, revision, files)}")
    if kind & {"RevisionNotFoundError"}:
        return EvalError(f"{head}: the hub repository has no revision '{revision}'")
    if kind & {"DatasetNotFoundError", "RepositoryNotFoundError", "GatedRepoError"}:
        return EvalError(f"{head}: no such dataset on the hub, or it is gated or private (log in with "
                         f"`hf auth login`); a local folder or file works too ({text})")
    if kind & {"EntryNotFoundError", "RemoteEntryNotFoundError"}:
        return EvalError(f"{head}: a data file is not in the repository ({text})")
    if "Dataset scripts are no longer supported" in str(e):
        return EvalError(f"{head}: it is defined by a loading script, which `datasets` no longer runs; "
                         "point the task at a folder of its data files or a save_to_disk folder")
    if isinstance(e, ValueError) and re.search(r"BuilderConfig|Config name is missing|Unknown split|split", str(e)):
        full = " ".join(str(e).split())
        return EvalError(f"{head}: {full} (set eval.task_options.{task}.subset, or split_map for splits)")
    return EvalError(f"{head}: {type(e).__name__}: {text}")
