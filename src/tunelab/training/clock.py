"""What a training run costs, in measures machine load does not decide, with wall time beside them.

Wall time grows when other work shares the machine (trials side by side, other users); a sweep
that ranks trials by it ranks the machine's load as much as the settings. `CostClock` also keeps

    cpu_s     CPU seconds of the training process (user + system, all its threads)
    device_s  on a CUDA device: GPU seconds of the training steps and in-training evaluations,
              timed by CUDA events on the stream (None elsewhere)

each summed over every session of a resumed run: a checkpoint stores the totals so far (as it
stores the wall time), and a resumed session adds its own. Work after the last checkpoint of an
interrupted session is not counted, exactly as the steps it did are done again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


class CostClock:
    """Wall, CPU and device seconds since the run first started, across resumes.

    Args:
        device: the training device (CUDA events are recorded only on a CUDA device).
        started: (time.time(), time.process_time()) when this session started; default: now.
    """

    def __init__(self, device: Any, started: tuple[float, float] | None = None) -> None:
        self.t_wall, self.t_cpu = started or (time.time(), time.process_time())
        self.wall0 = self.cpu0 = self._device = 0.0  # earlier sessions (`add_earlier`)
        self.cuda = getattr(device, "type", str(device)) == "cuda"
        self._pending: list[tuple[Any, Any]] = []  # (start, end) events not read yet

    def add_earlier(self, wall0: float, cpu0: float, device0: float) -> None:
        """Count on from the totals of the checkpoint resumed (this session's time so far stays)."""
        self.wall0 += wall0
        self.cpu0 += cpu0
        self._device += device0

    def wall(self) -> float:
        return self.wall0 + time.time() - self.t_wall

    def cpu(self) -> float:
        return self.cpu0 + time.process_time() - self.t_cpu

    @contextmanager
    def span(self) -> Iterator[None]:
        """Time the device work queued inside the block (no synchronisation here)."""
        if not self.cuda:
            yield
            return
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        try:
            yield
        finally:
            end.record()
            self._pending.append((start, end))

    def device(self) -> float | None:
        """GPU seconds so far (waits for the timed work to finish); None off CUDA."""
        if not self.cuda:
            return None
        if self._pending:
            self._pending[-1][1].synchronize()
            self._device += sum(s.elapsed_time(e) for s, e in self._pending) / 1000.0
            self._pending = []
        return self._device

    def totals(self) -> dict[str, Any]:
        """The summary fields: `wall_time_s`, `cpu_time_s`, `device_time_s` (None off CUDA)."""
        dev = self.device()
        return {"wall_time_s": round(self.wall(), 2), "cpu_time_s": round(self.cpu(), 2),
                "device_time_s": round(dev, 3) if dev is not None else None}
