"""Normalise raw rows (alpaca, messages, prompt/completion) into chat messages.

Every error names the row's origin (file:line) and the field, lists the columns the row does
have, and suggests a `columns:` mapping when one of them looks like the missing field, because
the usual cause is a dataset that names its fields differently (question/answer, conversations).
"""

from __future__ import annotations

import difflib
from typing import Any

from tunelab.config import SourceConfig
from tunelab.data.types import ChatExample
from tunelab.errors import DataError, did_you_mean

# Field names a row may use, and the names `src.columns` may map. `role`/`content` map the keys
# inside each message (e.g. {role: from, content: value} for ShareGPT, which is also auto-detected).
FIELDS = ("instruction", "input", "output", "system", "messages", "prompt", "completion", "id", "role", "content")

# Common names for our fields in public datasets, used only to suggest a `columns:` mapping.
_SYNONYMS = {
    "instruction": ("question", "query", "prompt", "problem", "task", "text"),
    "output": ("answer", "response", "completion", "solution", "target", "reply"),
    "input": ("context", "inputs"),
    "prompt": ("question", "query", "instruction", "problem", "input"),
    "completion": ("answer", "response", "output", "solution", "target"),
    "messages": ("conversations", "conversation", "dialog", "dialogue", "chat", "turns"),
}

# Role spellings seen in the wild, mapped to ours. human/gpt are ShareGPT's.
_ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}


def to_chat(row: dict[str, Any], origin: str, src: SourceConfig) -> ChatExample:
    """Turn one raw row into a `ChatExample`.

    Formats: alpaca (`instruction`, optional `input`, `output`, optional `system`), messages (a
    list of {role, content} or ShareGPT {from, value}), prompt_completion (`prompt`,
    `completion`). `src.format: auto` picks by the fields present. `src.system_prompt` is added as
    a system message when the row has none of its own (a row's own system message wins, since two
    system messages break most chat templates).

    Raises:
        DataError: naming `origin` and the field at fault.
    """
    _check_columns(src)
    fmt = src.format if src.format != "auto" else detect_format(row, origin, src)
    if fmt == "messages":
        messages = _messages(row, origin, src)
    elif fmt == "alpaca":
        prompt = _text(row, "instruction", origin, src)
        extra = _text(row, "input", origin, src, required=False)
        user = f"{prompt}\n\n{extra}" if extra.strip() else prompt
        messages = _with_system(row, origin, src, user, _text(row, "output", origin, src))
    else:
        prompt = _text(row, "prompt", origin, src)
        messages = _with_system(row, origin, src, prompt, _text(row, "completion", origin, src))
    if src.system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": src.system_prompt})
    row_id = _get(row, "id", src)
    return ChatExample(messages=messages, source=src.label, origin=origin, id="" if row_id is None else str(row_id))


def detect_format(row: dict[str, Any], origin: str, src: SourceConfig) -> str:
    """Pick alpaca / messages / prompt_completion from the (mapped) fields the row has."""
    if _get(row, "messages", src) is not None:
        return "messages"
    if _has(row, "instruction", src) or _has(row, "output", src):
        return "alpaca"
    if _has(row, "prompt", src) or _has(row, "completion", src):
        return "prompt_completion"
    pair = [h for h in (_suggest(row, "instruction", src), _suggest(row, "output", src)) if h]
    hint = "{" + ", ".join(h.strip("{}") for h in pair) + "}" if pair else _suggest(row, "messages", src)
    raise DataError(
        f"{origin}: cannot tell the data format (columns present: {_present(row)}); expected "
        f"'messages', 'instruction' + 'output', or 'prompt' + 'completion'"
        + (f"; map yours with {hint}" if hint else "; set format: and columns: in the source")
    )


# --------------------------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------------------------


def _check_columns(src: SourceConfig) -> None:
    for ours in src.columns:
        if ours not in FIELDS:
            raise DataError(
                f"columns: unknown field '{ours}'{did_you_mean(ours, FIELDS)}; the keys of columns: are "
                f"tunelab's names ({', '.join(FIELDS)}) and the values are yours"
            )


def _get(row: dict[str, Any], field: str, src: SourceConfig) -> Any:
    """The row's value for one of our field names, through the `columns` mapping."""
    if field in src.columns:
        return row.get(src.columns[field])
    value = row.get(field)
    if value is None and field == "messages":
        value = row.get("conversations")  # ShareGPT's name, common enough to accept unmapped
    return value


def _has(row: dict[str, Any], field: str, src: SourceConfig) -> bool:
    return src.columns.get(field, field) in row


def _text(row: dict[str, Any], field: str, origin: str, src: SourceConfig, required: bool = True) -> str:
    """A text field: numbers become text (math answers), missing/empty/other types are errors."""
    value = _get(row, field, src)
    name = src.columns.get(field, field)
    shown = f"'{field}'" if name == field else f"'{name}' (mapped from {field})"
    if value is None:
        if not required:
            return ""
        if name in row:
            raise DataError(f"{origin}: field {shown} is null")
        hint = _suggest(row, field, src)
        raise DataError(
            f"{origin}: field {shown} is missing (columns present: {_present(row)}"
            + (f"; map them with columns: {hint})" if hint else ")")
        )
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{origin}: field {shown} must be text, got {type(value).__name__}")
    text = str(value)
    if required and not text.strip():
        raise DataError(f"{origin}: field {shown} is empty")
    return text


def _with_system(row: dict[str, Any], origin: str, src: SourceConfig, user: str, answer: str) -> list[dict[str, str]]:
    system = _text(row, "system", origin, src, required=False)
    messages = [{"role": "system", "content": system}] if system.strip() else []
    return messages + [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def _present(row: dict[str, Any]) -> str:
    return ", ".join(str(k) for k in row) or "none"


def _suggest(row: dict[str, Any], field: str, src: SourceConfig) -> str:
    """'{output: answer}' if an unmapped column of the row looks like `field`, else ''."""
    taken = set(src.columns.values())
    free = [str(k) for k in row if k not in taken and k not in FIELDS]
    for name in _SYNONYMS.get(field, ()):
        for col in free:
            if col.lower() == name:
                return f"{{{field}: {col}}}"
    close = difflib.get_close_matches(field, free, n=1, cutoff=0.6)
    return f"{{{field}: {close[0]}}}" if close else ""


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def _messages(row: dict[str, Any], origin: str, src: SourceConfig) -> list[dict[str, str]]:
    """Validate and normalise a messages list: known roles, system first, user/assistant alternate."""
    raw = _get(row, "messages", src)
    name = src.columns.get("messages", "messages")
    if raw is None:
        hint = _suggest(row, "messages", src)
        raise DataError(
            f"{origin}: field '{name}' is missing (columns present: {_present(row)}"
            + (f"; map them with columns: {hint})" if hint else ")")
        )
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{origin}: field '{name}' must be a non-empty list of messages, got {type(raw).__name__}")
    role_key = src.columns.get("role", "role")
    content_key = src.columns.get("content", "content")
    out: list[dict[str, str]] = []
    for i, msg in enumerate(raw):
        where = f"{origin}: {name}[{i}]"
        if not isinstance(msg, dict):
            raise DataError(f"{where}: expected an object with role and content, got {type(msg).__name__}")
        # ShareGPT rows use {from, value}; accept them without a mapping.
        role = msg.get(role_key, msg.get("from"))
        content = msg.get(content_key, msg.get("value"))
        if role is None:
            raise DataError(f"{where}: no 'role' (keys present: {_present(msg)})")
        norm = _ROLES.get(str(role).lower())
        if norm is None:
            raise DataError(
                f"{where}: unsupported role '{role}'{did_you_mean(str(role), _ROLES)}; "
                f"use system, user or assistant (or human/gpt)"
            )
        if isinstance(content, list):  # OpenAI-style content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise DataError(f"{where}: 'content' must be text, got {type(content).__name__}")
        if norm != "system" and not content.strip():
            raise DataError(f"{where}: {norm} message is empty")
        out.append({"role": norm, "content": content})
    _check_order(out, origin, name)
    return out


def _check_order(messages: list[dict[str, str]], origin: str, name: str) -> None:
    """System only first; then user, assistant, user, ...; ends with the assistant (the target)."""
    expected = "user"
    for i, msg in enumerate(messages):
        role = msg["role"]
        if role == "system":
            if i != 0:
                raise DataError(f"{origin}: {name}[{i}]: a system message may only come first")
            continue
        if role != expected:
            first = i == 0 or messages[i - 1]["role"] == "system"
            after = "at the start" if first else f"after '{messages[i - 1]['role']}'"
            raise DataError(
                f"{origin}: {name}[{i}]: role '{role}' {after}; "
                f"messages must alternate user/assistant, starting with user"
            )
        expected = "assistant" if role == "user" else "user"
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{origin}: field '{name}' has no assistant message, so nothing to learn")
    if messages[-1]["role"] != "assistant":
        raise DataError(
            f"{origin}: field '{name}' ends with a {messages[-1]['role']} message; "
            f"the last message must be the assistant's reply"
        )
