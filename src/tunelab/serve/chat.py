"""`tunelab chat`: talk to one model variant in the terminal, or to two side by side.

Each message goes to every variant; each keeps its own history (its own earlier replies), so two
variants hold two real conversations about the same messages. Prompts are rendered with the chat
template the run was trained with, and replies stop at the template's end-of-turn token, as in
the server (both generate through `engine.stream_tokens`). Lines starting with `/` are commands:
`/reset` forgets the conversation, `/system TEXT` sets the system message, `/exit` (or end of
input) quits. Piped input works too, which is how the tests drive it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from tunelab.errors import ModelError
from tunelab.models.ref import ModelRef
from tunelab.serve.engine import Sampling, make_generator, stream_tokens
from tunelab.serve.registry import ModelRegistry, ServedModel, load_registry, parse_adapter

HELP = "/reset: new conversation   /system TEXT: set the system message   /exit: quit"


@dataclass
class Session:
    """One variant in the conversation: where it lives and what it has said."""

    label: str
    registry: ModelRegistry
    served: ServedModel
    history: list[dict[str, str]] = field(default_factory=list)
    generator: Any = None


def load_sessions(refs: list[str], run_dir: Path | None, device: str | None, seed: int) -> list[Session]:
    """Load the variants; refs of one run share one base model in memory (adapters switched)."""
    if not 1 <= len(refs) <= 2:
        raise ModelError(f"give one or two model refs to chat with, got {len(refs)}")
    parsed = [ModelRef.parse(r, run_dir) for r in refs]
    if run_dir is not None and all(p.kind == "base" or p.adapter_dir is not None for p in parsed):
        # One base in memory, the adapters switched on it. Named v0/v1 inside the registry so
        # two refs with the same folder name cannot clash.
        adapters = [f"v{i}={r}" for i, (r, p) in enumerate(zip(refs, parsed)) if p.kind != "base"]
        reg = load_registry("base", adapters, run_dir, device)
        picks = [(r, reg, reg.models["base" if p.kind == "base" else f"v{i}"])
                 for i, (r, p) in enumerate(zip(refs, parsed))]
    else:
        picks = []
        for r, p in zip(refs, parsed):
            reg = load_registry(r, (), run_dir, device)
            picks.append((r, reg, reg.models[parse_adapter(r)[0] if p.adapter_dir is not None else "base"]))
    return [Session(label, reg, served, generator=make_generator(seed, reg.model.device)) for label, reg, served in picks]


def reply(session: Session, sampling: Sampling, on_text: Any = None) -> tuple[str, int]:
    """Generate the session's answer to its history; returns (text, turns dropped to fit)."""
    reg = session.registry
    dropped = 0
    while True:
        ids = reg.encode_chat(session.history)
        if len(ids) + sampling.max_tokens <= reg.max_len:
            break
        # Too long for the context: forget the oldest exchange (a system message stays).
        first = 1 if session.history and session.history[0]["role"] == "system" else 0
        if len(session.history) - first <= 1:
            raise ModelError(f"the message is too long for {session.label} ({len(ids)} tokens; "
                             f"context {reg.max_len}, {sampling.max_tokens} reserved for the reply)")
        del session.history[first:first + 2]
        dropped += 1
    text = ""
    with reg.activate(session.served) as lm:
        for d in stream_tokens(lm, reg.tok, ids, sampling, reg.stop_ids(True), generator=session.generator):
            text += d.text
            if on_text is not None and d.text:
                on_text(d.text)
    return text, dropped


def chat_loop(sessions: list[Session], sampling: Sampling, system: str | None, stdin: TextIO,
              console: Console) -> int:
    """Read messages until /exit or end of input; returns the number of messages answered."""
    interactive = stdin.isatty()

    def reset() -> None:
        for s in sessions:
            s.history = [{"role": "system", "content": system}] if system else []

    reset()
    if interactive:
        console.print(f"chatting with {' and '.join(s.label for s in sessions)}. {HELP}", markup=False, highlight=False)
    answered = 0
    while True:
        if interactive:
            console.print("[bold]you>[/bold] ", end="")
        line = stdin.readline()
        if not line:
            break
        text = line.rstrip("\n")
        if not text.strip():
            continue
        if text.startswith("/"):
            cmd, _, arg = text.partition(" ")
            if cmd in ("/exit", "/quit"):
                break
            if cmd == "/reset":
                reset()
                console.print("(new conversation)", markup=False)
            elif cmd == "/system":
                system = arg.strip() or None
                reset()
                console.print("(system message set; new conversation)", markup=False)
            else:
                console.print(HELP, markup=False)
            continue
        for s in sessions:
            s.history.append({"role": "user", "content": text})
        _answer(sessions, sampling, console)
        answered += 1
    return answered


def _answer(sessions: list[Session], sampling: Sampling, console: Console) -> None:
    if len(sessions) == 1:  # one variant: stream its reply as it is generated
        s = sessions[0]
        console.print(f"{s.label}> ", end="", markup=False, highlight=False)
        text, dropped = reply(s, sampling, lambda t: console.print(t, end="", markup=False, highlight=False, soft_wrap=True))
        console.print()
        s.history.append({"role": "assistant", "content": text})
        _note_dropped(console, s, dropped)
        return
    answers = []
    for s in sessions:
        text, dropped = reply(s, sampling)
        s.history.append({"role": "assistant", "content": text})
        answers.append(text)
        _note_dropped(console, s, dropped)
    if console.is_terminal:
        from rich.table import Table

        table = Table(show_lines=False, expand=True)
        for s in sessions:
            table.add_column(s.label, ratio=1, overflow="fold")
        table.add_row(*answers)
        console.print(table, markup=False)
    else:  # piped: labelled blocks a program (or a test) can split reliably
        for s, text in zip(sessions, answers):
            console.print(f"[{s.label}]\n{text}", markup=False, highlight=False, soft_wrap=True)


def _note_dropped(console: Console, s: Session, dropped: int) -> None:
    if dropped:
        console.print(f"({s.label}: forgot the {dropped} oldest exchange(s) to fit the context)", markup=False)


def chat_command(refs: list[str], run_dir: Path | None, max_new_tokens: int = 256, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, system: str | None = None, device: str | None = None,
                 stdin: TextIO | None = None, console: Console | None = None) -> int:
    """`tunelab chat`: load the variants and talk until /exit or end of input."""
    console = console or Console(highlight=False, emoji=False)  # model text is printed verbatim
    sessions = load_sessions(refs, run_dir, device, seed)  # warns about adapters that change nothing
    sampling = Sampling(max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    return chat_loop(sessions, sampling, system, stdin or sys.stdin, console)
