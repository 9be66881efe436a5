"""What crosses between the two sides of the sandbox, written once for both.

Standard library only: imported by the tunelab process (`parent.py`, `proc.py`) and by the
child interpreter (`child.py`, `harness.py`).

- The fork server's requests: a header (op, int64), answered by one int64 (`HEADER`, `REPLY`).
- The harness's records: JSON lines tagged with the run's nonce on a private pipe (`Reporter`
  writes them, `read_records` keeps only those of this run).
- Capped streams: the first `cap` bytes of a stream, and a count of the rest (`Capped`).
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
from typing import Any

OP_START, OP_WAIT = 1, 2
# OP_START: the payload's length (a JSON job follows, 3 fds attached) -> the launcher's pid;
# OP_WAIT: a launcher's pid (its group was killed) -> its raw wait status.
HEADER = struct.Struct("<Bq")
REPLY = struct.Struct("<q")


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly `n` bytes from `sock`.

    Raises:
        EOFError: the other side closed the connection first.
    """
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("sandbox fork server connection closed")
        buf += chunk
    return bytes(buf)


class Reporter:
    """Writes nonce-tagged JSON lines to the private result pipe (the harness's side)."""

    def __init__(self, fd: int, nonce: str) -> None:
        self.fd, self.nonce = fd, nonce
        # Bound now, before the program runs: a program that replaces json.dumps or os.write
        # (by accident or not) does not change what we report.
        self._dumps, self._write = json.dumps, os.write

    def send(self, event: str, **fields: object) -> None:
        """Write one record; a closed pipe loses it (the parent then sees no "done": no pass)."""
        line = self._dumps({"nonce": self.nonce, "event": event, **fields}) + "\n"
        data = line.encode("utf-8", "replace")
        try:
            while data:
                data = data[self._write(self.fd, data):]
        except OSError:
            pass


def read_records(raw: bytes, nonce: str) -> list[dict[str, Any]]:
    """The harness's records: JSON lines carrying this run's nonce (anything else is ignored)."""
    out = []
    for line in bytes(raw).split(b"\n"):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("nonce") == nonce and isinstance(rec.get("event"), str):
            out.append(rec)
    return out


class Capped(io.RawIOBase):
    """A write-only sink that keeps the first `cap` bytes and counts the rest: a pipe the parent
    reads, or the stdout of one stdio case in the harness."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap, self.data, self.total = cap, bytearray(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        n = len(b)
        if len(self.data) < self.cap:
            self.data += bytes(b[: self.cap - len(self.data)])
        self.total += n
        return n

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    def text(self) -> str:
        """What was kept, decoded, with a note of how many bytes were cut."""
        more = self.total - len(self.data)
        return self.data.decode("utf-8", "replace") + (f"\n[... {more} more bytes cut]" if more else "")
