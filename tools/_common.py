"""Helpers shared by the scripts in tools/."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAKE_CKPT = ROOT.parent / "shared" / "p3m_reference" / "make_checkpoint.py"
PORTRAITS = ROOT.parent / "shared" / "data" / "portraits" / "original"


def portrait_rgb(width: int, height: int) -> np.ndarray:
    """The first shared portrait as RGB at ``width`` x ``height`` (area-scaled), or, where
    there is no ../shared (a GPU machine), seeded noise: the picture a timing is made on."""
    paths = sorted(PORTRAITS.glob("*.jpg"))
    if not paths:
        return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rgb = cv2.resize(cv2.imread(str(paths[0]))[..., ::-1], (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def interleaved(ways: dict[str, Callable[[], object]], iters: int, repeat: int) -> dict[str, float]:
    """Median ms per call of each way, timed in turn ``repeat`` times over ``iters`` calls
    (side by side, so that a noisy neighbour hits every way alike; warm them up first)."""
    ms: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeat):
        for name, call in ways.items():
            t0 = time.perf_counter()
            for _ in range(iters):
                call()
            ms[name].append((time.perf_counter() - t0) * 1000 / iters)
    return {name: statistics.median(times) for name, times in ms.items()}


def random_weights(folder: Path, seed: int = 32) -> Path:
    """A random checkpoint in the official format (timings do not depend on the values).

    Uses ../shared/p3m_reference/make_checkpoint.py where it exists; a GPU machine
    may not have ../shared, so then a seeded randomly initialised network is saved.
    """
    path = folder / "random.pth"
    if MAKE_CKPT.is_file():
        subprocess.run([sys.executable, str(MAKE_CKPT), "--seed", str(seed), str(path)], check=True)
        return path
    import torch

    from p3m_live.model import P3MNet

    torch.manual_seed(seed)
    torch.save({"state_dict": P3MNet().state_dict()}, path)
    return path
