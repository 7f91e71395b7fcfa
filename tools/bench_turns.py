#!/usr/bin/env python3
"""Turning and flipping frames (``--rotate``, ``--mirror``, phone clips' rotation tags), in one run.

    python tools/bench_turns.py --size 1280x720 --size 1920x1080

Every turn and flip of an I420 frame, interleaved: numpy's strided copies (``np.rot90``
and a reversed slice per plane, then the planes joined, which is what the decode thread
did before) against OpenCV writing each plane into the output
(``p3m_live/video/frames.py``, ``rotate_planes``). Median milliseconds per frame.
"""

from __future__ import annotations

import argparse
import platform
import sys
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.timing import time_calls  # noqa: E402
from p3m_live.video.frames import rotate_planes  # noqa: E402

CASES = [(1, False), (2, False), (3, False), (0, True), (1, True)]  # (quarter turns ccw, mirror)


def numpy_turn(data: np.ndarray, k: int, mirror: bool) -> np.ndarray:
    """The baseline: each I420 plane turned by numpy, then the three joined."""
    rows, w = data.shape
    h = rows * 2 // 3
    flat, n, q = data.reshape(-1), h * w, h * w // 4
    planes = [flat[:n].reshape(h, w), flat[n : n + q].reshape(h // 2, w // 2), flat[n + q :].reshape(h // 2, w // 2)]
    moved = [np.rot90(p, k)[:, ::-1] if mirror else np.rot90(p, k) for p in planes]
    nh, nw = moved[0].shape
    return np.concatenate([p.reshape(-1) for p in moved]).reshape(nh * 3 // 2, nw)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH")
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    sizes = args.size or [(1280, 720), (1920, 1080)]
    rng = np.random.default_rng(0)
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}; median of {args.rounds}\n")
    print("| frame | turn | numpy ms | OpenCV ms | OpenCV / numpy | same pixels |")
    print("| --- | --- | --- | --- | --- | --- |")
    for w, h in sizes:
        data = rng.integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)
        for k, mirror in CASES:
            same = np.array_equal(numpy_turn(data, k, mirror), rotate_planes(data, "i420", k, mirror))
            a = b = 0.0
            for _ in range(3):  # interleaved, so both see the same machine
                a += time_calls(partial(numpy_turn, data, k, mirror), args.rounds).p50 / 3
                b += time_calls(partial(rotate_planes, data, "i420", k, mirror), args.rounds).p50 / 3
            turn = f"{(4 - k) % 4 * 90} cw" + (" + mirror" if mirror else "") if k else "mirror"
            print(f"| {w}x{h} | {turn} | {a:.2f} | {b:.2f} | {b / a:.2f} | {'yes' if same else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
