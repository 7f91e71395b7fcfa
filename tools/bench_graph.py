#!/usr/bin/env python3
"""Time the whole frame graph per backend, side by side in one run, and print a table.

    python tools/bench_graph.py --weights W.pth --size 640x360 --size 1280x720
    python tools/bench_graph.py --backend torch --foreground frame --model-size 128 \
        --background color --background blur --background mix     # what each background costs
    python tools/bench_graph.py --temporal adaptive --temporal motion  # what each filter costs
    python tools/bench_graph.py --model fast --backend onnxruntime --foreground quick --fg-track
        # what --fg-out's colours add: in the graph, and made beside it with PyTorch as before

Without --weights a random checkpoint in the official format is made with
../shared/p3m_reference/make_checkpoint.py (speed does not depend on the values).
The ratio column compares each row with the first one of its frame size, in the same
run, since shared machines are noisy.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.backends import open_backend  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.graph import GraphSpec, frame_shape  # noqa: E402
from p3m_live.model import resolve_model_weights  # noqa: E402
from p3m_live.spec import TEMPORALS  # noqa: E402
from p3m_live.timing import time_calls  # noqa: E402
from tools._common import random_weights  # noqa: E402


def estimated_beside(i420: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """--fg-out's colours as they were made before they were a graph output: the frame to RGB
    with swscale, then the graph's estimate in PyTorch on the CPU (for the comparison only)."""
    import torch

    from p3m_live.graph import estimate_foreground, foreground_params
    from p3m_live.video.frames import planes_to_rgb

    rgb = planes_to_rgb(i420, "i420")
    h, w = alpha.shape
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    with torch.inference_mode():
        fg = estimate_foreground(img, torch.from_numpy(alpha)[None, None].float() / 255.0, *foreground_params(h, w))
        out = torch.clamp(torch.round(fg[0].permute(1, 2, 0) * 255.0), 0, 255).to(torch.uint8).numpy()
    return np.where(alpha[..., None] == 255, rgb, out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights")
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH")
    ap.add_argument("--model", choices=["p3m", "fast"], default="p3m")
    ap.add_argument("--model-size", type=int, default=512, help="P3M-Net's input short side")
    ap.add_argument("--backend", action="append", help="torch, onnxruntime (default: both)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--background", action="append", choices=["image", "color", "blur", "mix"],
                    help="background input (repeat to compare; default image)")  # fmt: skip
    ap.add_argument("--temporal", action="append", choices=TEMPORALS,
                    help="temporal filter (repeat to compare; default adaptive)")  # fmt: skip
    ap.add_argument("--foreground", choices=["estimate", "quick", "frame"], default="estimate",
                    help="quick, frame: composited on the YUV planes (quick: the CPU's default)")  # fmt: skip
    ap.add_argument("--fg-track", action="store_true",
                    help="each row also with --fg-out's colours: in the graph, and made beside it")  # fmt: skip
    args = ap.parse_args()
    sizes = args.size or [(640, 360)]
    names = args.backend or ["torch", "onnxruntime"]
    kinds = args.background or ["image"]
    tracks = ["-", "in the graph", "beside"] if args.fg_track else ["-"]
    rows = [(kind, f, track) for kind in kinds for f in args.temporal or ["adaptive"] for track in tracks]
    values = {"image": np.zeros((1, 1, 3), np.uint8), "color": (0, 177, 64), "blur": None, "mix": (0, 177, 64)}
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or (None if args.model == "fast" else random_weights(Path(tmp), seed=1))
        print(
            f"# frame graph, {platform.processor() or platform.machine()}, device {args.device}, "
            f"{'fast model' if args.model == 'fast' else f'model short side {args.model_size}'}, "
            f"I420 in/out, guided upsampling, foreground {args.foreground}"
        )
        print("| frame | model | backend | background | temporal | fg colours | p50 ms | p95 ms | fps | vs first |")
        print("| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
        for w, h in sizes:
            path = resolve_model_weights(args.model, weights, h, w) if args.model == "fast" else weights
            frame = np.random.default_rng(0).integers(0, 256, frame_shape("i420", 1, h, w), dtype=np.uint8)
            base = None
            for name in names:
                for kind, temporal, track in rows:
                    spec = GraphSpec(h, w, "i420", "i420", model_short_side=args.model_size, model=args.model,
                                     background=kind, temporal=temporal, foreground=args.foreground,
                                     foreground_track=track == "in the graph")  # fmt: skip
                    with open_backend(name, spec, path, device=args.device) as be:
                        value = values[kind]
                        if value is not None:
                            be.set_background(np.broadcast_to(value, (h, w, 3)) if kind == "image" else value)

                        def call(be=be, frame=frame, beside=track == "beside"):
                            out = be.process(frame)
                            if beside:
                                estimated_beside(frame[0], out[1][0])

                        t = time_calls(call, args.iters)
                    base = base or t.p50
                    mh, mw = spec.model_hw
                    print(
                        f"| {w}x{h} | {mw}x{mh} | {name} | {kind} | {temporal} | {track} | {t.p50:.1f} | {t.p95:.1f} "
                        f"| {t.fps:.2f} | {t.p50 / base:.2f} |"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
