"""Loading a config: YAML, the chosen profile and dotted `--set` overrides -> a validated
`Experiment`, with errors that name the file, the key and the allowed values.

Precedence is CLI overrides > profile > YAML > defaults. Configs are data: YAML is parsed with
`safe_load`, never executed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tunelab.config.schema import Experiment, section_of
from tunelab.errors import ConfigError, did_you_mean


def load_config(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read a YAML experiment, apply its profile and `key.sub=value` overrides, validate.

    A `profile=NAME` override (what `--profile NAME` passes) applies the config's
    `profiles.NAME.set` first, whatever its position, so any other `--set` wins over it. Relative
    data paths are resolved against the config file's folder, so a config works from any
    working directory.
    """
    path = Path(path)
    raw = read_yaml_mapping(path)
    chosen = [o for o in overrides or [] if o.partition("=")[0].strip() == "profile"]
    if chosen:
        apply_profile(raw, parse_override(chosen[-1])[1], str(path))
    for item in overrides or []:
        if item not in chosen:
            apply_override(raw, item)
    exp = validate_config(raw, origin=str(path))
    _resolve_paths(exp, path.parent)
    return exp


def apply_profile(raw: dict[str, Any], name: Any, origin: str = "config") -> None:
    """Apply the settings of `raw["profiles"][name]` in place and record `profile: name`.

    Raises:
        ConfigError: no such profile (the message lists the config's profiles), or one of its
            keys is unknown (named as `profiles.NAME.set.KEY`).
    """
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{origin}: profiles must be a mapping of name -> {{description, set}}")
    if name not in profiles:
        have = ", ".join(map(str, profiles)) or "none"
        raise ConfigError(f"{origin}: --profile {name}: no such profile{did_you_mean(str(name), list(map(str, profiles)))}; "
                          f"this config has: {have}")
    settings = (profiles[name] or {}).get("set") or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"{origin}: profiles.{name}.set must be a mapping of dotted key -> value")
    for key, value in settings.items():
        try:
            apply_value(raw, str(key), copy.deepcopy(value))
        except ConfigError as e:
            raise ConfigError(f"{origin}: profiles.{name}.set: {e}") from None
    raw["profile"] = name


def capped(exp: Experiment, limit: int) -> Experiment:
    """`exp` with every item an eval or compare stage reads capped at the first `limit`
    (`--limit`, a quick look): each eval task's items (`eval.limit`, also checkpoint selection's
    and the prompting baselines') and the compare prompts (`compare.prompts` / `n_prompts`).
    Results of a capped look record it ("first 5 of 60 items") and go beside the run's own."""
    ev, cmp = exp.eval, exp.compare
    return exp.model_copy(update={
        "eval": ev.model_copy(update={"limit": min(ev.limit or limit, limit)}),
        "compare": cmp.model_copy(update={"prompts": cmp.prompts[:limit], "n_prompts": min(cmp.n_prompts, limit)}),
    })


def read_yaml_mapping(path: str | Path, expected: str = "a mapping of sections (model, data, ...)") -> dict[str, Any]:
    """Parse a YAML file (safely, never executed) whose top level must be a mapping.

    Args:
        path: The YAML file.
        expected: What the top level should be, for the error message.

    Raises:
        ConfigError: The file is missing, is not YAML, or its top level is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be {expected}")
    return raw


def validate_config(raw: dict[str, Any], origin: str = "config") -> Experiment:
    """Validate a plain dict into an `Experiment`, turning pydantic errors into `ConfigError`."""
    return validate_section(Experiment, raw, origin)


SectionT = TypeVar("SectionT", bound=BaseModel)


def validate_section(root: type[SectionT], raw: dict[str, Any], origin: str = "config") -> SectionT:
    """Validate a plain dict into any config model (an `Experiment`, or a tool's own `Section`).

    Raises:
        ConfigError: One line per problem, as `format_validation_error` writes them.
    """
    try:
        return root.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, origin, root)) from None


def parse_override(item: str, sections: Sequence[str] | None = None, doing: str = "") -> tuple[str, Any]:
    """One `--set a.b.c=value` as (key, value); the value is parsed as YAML (1e-4, true, [q,v]).

    Args:
        item: the `key=value` text.
        sections: the top-level sections a key may start with (None: any), for commands that
            work on an existing run and can only change some settings.
        doing: what the command does, for the error, e.g. "evaluating an existing run".
    """
    key, eq, text = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(f"--set expects key=value, got '{item}'")
    if sections is not None and key.split(".")[0] not in sections:
        allowed = " and ".join(f"{s}.*" for s in sections)
        raise ConfigError(f"--set {item}: only {allowed} keys can be set" + (f" when {doing}" if doing else ""))
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key, value


def apply_override(raw: dict[str, Any], item: str, root: type[BaseModel] = Experiment,
                   sections: Sequence[str] | None = None, doing: str = "") -> None:
    """Apply one `a.b.c=value` override in place (parsed by `parse_override`).

    Keys are checked against `root` (an `Experiment` unless another config model is given), so
    a misspelt key fails here with the closest valid one; `sections` and `doing` restrict the
    top-level keys as in `parse_override`.
    """
    key, value = parse_override(item, sections, doing)
    apply_value(raw, key, value, root)


def apply_value(raw: dict[str, Any], key: str, value: Any, root: type[BaseModel] = Experiment) -> None:
    """Set dotted `key` to the already-parsed `value` in place, keys checked as in `apply_override`."""
    parts = key.split(".")
    node: Any = raw
    model: type[BaseModel] | None = root
    for i, part in enumerate(parts):
        where = ".".join(parts[:i]) or "the top level"
        if isinstance(node, list):
            # An index into a list of sections, e.g. data.sources.0.weight=2.
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {key}: '{where}' is a list of {len(node)}; use an index 0..{len(node) - 1}")
            if i == len(parts) - 1:
                node[int(part)] = value
                return
            node = node[int(part)]
            continue
        field_names = list(model.model_fields) if model is not None else None
        if field_names is not None and part not in field_names:
            raise ConfigError(
                f"--set {key}: unknown key '{part}' in {where}{did_you_mean(part, field_names)}; "
                f"valid keys: {', '.join(field_names)}"
            )
        if i == len(parts) - 1:
            node[part] = value
            return
        default: Any = [] if isinstance(node.get(part), list) else {}
        child = node.setdefault(part, default)
        sub = _sub_model(model, part) if model is not None else None
        if model is not None and sub is None and isinstance(child, dict) and not _nested_mapping(model, part):
            # A free-form mapping (sweep.grid, sweep.zip, columns) whose keys may hold dots
            # themselves: the rest of the path is one key, so `sweep.grid.lora.r=[4, 8]` sets
            # grid["lora.r"].
            child[".".join(parts[i + 1 :])] = value
            return
        # A mapping of mappings (eval.task_options.TASK.OPTION) is walked level by level.
        node, model = child, sub
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"--set {key}: '{'.'.join(parts[: i + 1])}' is a value, not a section")


def _nested_mapping(model: type[BaseModel], field: str) -> bool:
    """Whether `model.field` is a mapping whose values are mappings (dict[str, dict[...]])."""
    ann = model.model_fields[field].annotation
    args = getattr(ann, "__args__", ())
    return getattr(ann, "__origin__", None) is dict and len(args) == 2 and getattr(args[1], "__origin__", None) is dict


def _sub_model(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    """The Section class of `model.field`, also through `list[Section]` and `X | None`."""
    return section_of(model.model_fields[field].annotation)


def format_validation_error(err: ValidationError, origin: str, root: type[BaseModel] = Experiment) -> str:
    """One line per problem: dotted key, what is wrong, the bad value, the closest valid key.

    `root` is the model that was validated; its fields are where unknown keys get their hint.
    """
    lines = [f"{origin}: invalid config"]
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not str(p).startswith(("function-after", "function-before"))]
        key = ".".join(loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            parent = _section_for(loc[:-1], root)
            choices = list(parent.model_fields) if parent else []
            hint = did_you_mean(loc[-1], choices)
            valid = f"; valid keys: {', '.join(choices)}" if choices else ""
            lines.append(f"  {key}: unknown key{hint}{valid}")
            continue
        msg = e["msg"]
        if e["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
            continue
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"  {key}: {msg}{shown}")
    return "\n".join(lines)


def _section_for(loc: list[str], root: type[BaseModel]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if part.isdigit():
            continue
        if part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        model = None
        stack = [ann]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                model = t
                break
            stack.extend(getattr(t, "__args__", ()))
    return model


def _resolve_paths(exp: Experiment, base: Path) -> None:
    for group in (exp.data.sources, exp.data.val or [], exp.data.test or []):
        for src in group:
            if src.path and not Path(src.path).is_absolute():
                src.path = str((base / src.path).resolve())
