#!/usr/bin/env python3
"""What ``--auto-frame`` adds to a frame, beside the frame graph it follows, in one run.

    python tools/bench_framing.py --size 1280x720 --size 1920x1080

Per frame size: the whole frame graph (the fast model, I420 in and out, a colour
background, on the torch CPU module) and the auto-frame step on its output (finding
the person in the matte, moving the window, cropping the I420 composite and the
alpha and scaling them back up), interleaved. The matte is a person a third of the
frame high, so the window is zoomed in and every frame is cropped and scaled.
Needs the fast model (`p3m-live weights fetch fast`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.framing import AutoFrame  # noqa: E402
from p3m_live.graph import FrameGraph, GraphSpec  # noqa: E402
from p3m_live.model import load_network, resolve_model_weights  # noqa: E402
from p3m_live.timing import time_calls  # noqa: E402


def time_size(w: int, h: int, iters: int, repeat: int) -> tuple[float, float]:
    """Median ms per frame of the frame graph and of the auto-frame step at w x h."""
    net = load_network("fast", resolve_model_weights("fast", None, h, w), portable=True)
    spec = GraphSpec(h, w, "i420", "i420", model="fast", background="color", foreground="frame")
    graph = FrameGraph(net, spec).eval()
    rng = np.random.default_rng(0)
    inputs = {
        "frame": torch.from_numpy(rng.integers(0, 256, (1, h * 3 // 2, w), dtype=np.uint8)),
        "background": torch.tensor([[0, 177, 64]], dtype=torch.uint8),
        "state_alpha": torch.full(spec.state_shape, -1.0),
    }
    composite = rng.integers(0, 256, (1, h * 3 // 2, w), dtype=np.uint8)
    alpha = np.zeros((1, h, w), np.uint8)
    alpha[:, h * 2 // 3 :, w // 5 : w // 5 + h // 4] = 255  # a small person, low on the left
    framer = AutoFrame(w, h, max_zoom=3)
    clock = [0.0]

    def graph_call() -> None:
        with torch.inference_mode():
            graph(*inputs.values())

    def frame_call() -> None:
        clock[0] += 1 / 30
        framer(composite, alpha, [clock[0]])

    ms: dict[str, list[float]] = {"graph": [], "frame": []}
    for _ in range(repeat):
        ms["graph"].append(time_calls(graph_call, iters).p50)
        ms["frame"].append(time_calls(frame_call, iters * 5).p50)
    return statistics.median(ms["graph"]), statistics.median(ms["frame"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH")
    ap.add_argument("--iters", type=int, default=10, help="calls per timing")
    ap.add_argument("--repeat", type=int, default=3, help="timings per step, interleaved; the median is shown")
    args = ap.parse_args()
    sizes = args.size or [(1280, 720), (1920, 1080)]
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; median ms per frame\n")
    print("| frame | frame graph ms | auto-frame ms | auto-frame / graph |")
    print("| --- | ---: | ---: | ---: |")
    for w, h in sizes:
        g, f = time_size(w, h, args.iters, args.repeat)
        print(f"| {w}x{h} | {g:.1f} | {f:.2f} | {f / g:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
