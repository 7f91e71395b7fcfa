#!/usr/bin/env python3
"""CPU use of the matting on ONNX Runtime: threads that spin between ops (offline) or not (live).

    python tools/bench_cpu_use.py --size 1280x720 --threads 1 --threads 0

ONNX Runtime's CPU threads spin-wait after each op for the next one. In a live run the
frames come at the camera's pace, and that spinning is CPU the decoder, the encoder and
the call app do not get, so live runs turn it off; offline runs, whose next frame is
always waiting, keep it. For each thread count (0: ONNX Runtime's choice, one per
physical core), both ways side by side in one run, interleaved, the median of
``--repeat`` rounds:
  paced   - frames at ``--fps`` (a live run): the time a frame takes, and the CPU the
            process spends per frame (all threads, user and system, from os.times);
  flat out - frames back to back (an offline run): frames per second and CPU per frame.
The model is the live default on a CPU: the fast model (``p3m-live weights fetch fast``),
the blurred room, composited on the I420 planes; the picture is a shared portrait (noise
without ../shared).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.model import resolve_model_weights  # noqa: E402
from p3m_live.pipeline import graph_spec  # noqa: E402
from p3m_live.spec import rgb_to_planes  # noqa: E402
from p3m_live.video.backgrounds import parse_background  # noqa: E402
from p3m_live.video.frames import Layout  # noqa: E402
from tools._common import portrait_rgb  # noqa: E402


def picture(width: int, height: int) -> np.ndarray:
    """One I420 frame (1, H*3/2, W) of a shared portrait, or of noise."""
    return rgb_to_planes(portrait_rgb(width, height)[None])


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def paced(backend: OnnxRuntimeBackend, frame: np.ndarray, frames: int, fps: float) -> tuple[float, float, float]:
    """(median ms a frame takes, 90th percentile ms, CPU ms per frame) at ``fps``."""
    took = []
    cpu0, start = cpu_seconds(), time.perf_counter()
    for i in range(frames):
        while (wait := start + i / fps - time.perf_counter()) > 0:
            time.sleep(wait)
        t0 = time.perf_counter()
        backend.process(frame)
        took.append(time.perf_counter() - t0)
    cpu = cpu_seconds() - cpu0
    took.sort()
    return statistics.median(took) * 1000, took[int(0.9 * (frames - 1))] * 1000, cpu / frames * 1000


def flat_out(backend: OnnxRuntimeBackend, frame: np.ndarray, frames: int) -> tuple[float, float]:
    """(frames per second, CPU ms per frame) back to back."""
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    for _ in range(frames):
        backend.process(frame)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return frames / wall, cpu / frames * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=(1280, 720), help="frame size (default 1280x720)")
    ap.add_argument("--threads", type=int, action="append", help="0 (ONNX Runtime's choice) and 1 unless given")
    ap.add_argument("--fps", type=float, default=30.0, help="the paced frames' rate (default 30)")
    ap.add_argument("--frames", type=int, default=60, help="frames per timing (default 60)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds, interleaved; the median is shown")
    args = ap.parse_args()
    width, height = args.size
    spec = graph_spec(
        Layout(width, height, "i420", False, "bt601"), parse_background("blur"), model="fast", foreground="frame"
    )
    weights = resolve_model_weights("fast", None, height, width)
    frame = picture(width, height)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, fast model {width}x{height}, "
        f"ONNX Runtime, blurred room; paced at {args.fps:g} fps, {args.frames} frames, median of {args.repeat}"
    )
    print("| threads | spinning | paced: ms a frame | p90 ms | CPU ms a frame | flat out: fps | CPU ms a frame |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for threads in args.threads or [0, 1]:
        ways = {
            spin: OnnxRuntimeBackend(spec, weights, threads=threads or None, spinning=spin) for spin in (True, False)
        }
        rounds: dict[bool, list[tuple[float, ...]]] = {spin: [] for spin in ways}
        for backend in ways.values():
            for _ in range(3):
                backend.process(frame)  # (first calls: allocation, kernel choice)
        for _ in range(args.repeat):
            for spin, backend in ways.items():
                rounds[spin].append(
                    paced(backend, frame, args.frames, args.fps) + flat_out(backend, frame, args.frames)
                )
        for spin, backend in ways.items():
            med = [statistics.median(col) for col in zip(*rounds[spin])]
            label = "on: offline runs (ONNX Runtime's default)" if spin else "off: live runs"
            print(
                f"| {threads or 'auto'} | {label} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | "
                f"{med[3]:.1f} | {med[4]:.1f} |"
            )
            backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
