"""Wall-clock timing of repeated calls, for the benchmark tools and run summaries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Per-call milliseconds: median, 95th percentile, mean, and the number of calls."""

    p50: float
    p95: float
    mean: float
    n: int

    @property
    def fps(self) -> float:
        return 1000.0 / self.p50 if self.p50 > 0 else float("inf")

    @classmethod
    def of(cls, ms: list[float]) -> Timing:
        a = np.asarray(ms, dtype=float)
        return cls(float(np.median(a)), float(np.percentile(a, 95)), float(a.mean()), len(a))


def time_calls(fn: Callable[[], object], n: int, warmup: int = 2) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``n`` times timed."""
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000.0)
    return Timing.of(ms)
