"""Counters a run reports: each stage's busy time, latency percentiles, rates, progress."""

from __future__ import annotations

import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from .terminal import is_terminal, say


@dataclass
class StageClock:
    """Time a pipeline stage spends working, as opposed to waiting on its queues."""

    name: str
    busy: float = 0.0
    calls: int = 0

    @contextmanager
    def working(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.busy += time.perf_counter() - t0
            self.calls += 1


@dataclass
class Latencies:
    """Capture-to-output latency per frame, in seconds, with percentiles."""

    values: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    def percentile(self, q: float, last: int | None = None) -> float:
        v = self.values[-last:] if last else self.values
        return float(np.percentile(v, q)) if v else float("nan")


class RateMeter:
    """Events per second over a sliding window (the status line's fps)."""

    def __init__(self, window: float = 2.0, start: float | None = None) -> None:
        self.window = window
        self.start = time.monotonic() if start is None else start
        self.times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        self.times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self.times and self.times[0] < now - self.window:
            self.times.popleft()
        span = min(self.window, now - self.start)  # the first seconds of a run are not a full window
        return len(self.times) / span if span > 0 else 0.0


def clock_time(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """A one-line progress bar on stderr: frames, percent, fps and time left."""

    def __init__(self, total: int | None, stream: TextIO | None = None, interval: float | None = None) -> None:
        self.total = total
        stream = stream or sys.stderr  # the one now, not the one at import (redirections)
        self.stream: TextIO | None = stream  # None once a write failed
        tty = is_terminal(stream)
        self.interval = interval if interval is not None else (0.25 if tty else 10.0)
        self.end = "\r" if tty else "\n"
        self.t0 = time.monotonic()
        self._last = 0.0
        self._shown = False

    def line(self, done: int, now: float) -> str:
        elapsed = max(now - self.t0, 1e-9)
        fps = done / elapsed
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 24)
            left = (self.total - done) / fps if fps > 0 else float("inf")
            eta = clock_time(left) if left != float("inf") else "?"
            return f"[{bar:<24}] {done}/{self.total} frames {frac:4.0%}  {fps:5.1f} fps  {eta} left"
        return f"{done} frames  {fps:5.1f} fps  {clock_time(elapsed)}"

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            self._shown = True
            self._write(self.line(done, now) + self.end)

    def finish(self, done: int) -> None:
        self.update(done, force=True)
        if self.end == "\r" and self._shown:
            self._write("\n")

    def _write(self, text: str) -> None:
        """Once a write failed (a terminal that hung up), the bar stops showing."""
        if self.stream is not None and not say(text, self.stream):
            self.stream = None
