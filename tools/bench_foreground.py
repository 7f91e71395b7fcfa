#!/usr/bin/env python3
"""The person's edge colours: the frame's, the quick estimate and the full one, quality and time.

    python tools/bench_foreground.py --size 640x360 --size 1280x720 --size 1920x1080

Over a new background, the frame's own colours bring a fringe of the old room into hair
and soft edges; blur fusion estimates the person's colours instead. The full estimate
works on full-size RGB; the quick one on the YUV planes, made 2 or 4 times smaller
(graph.plane_estimate_factor). For each size and each of the three:
  edge error - the shared portraits, each filmed (synthetically) in front of one
               background and put in front of another through the whole frame graph
               (I420 in and out), with the true matte in place of the network, so that
               only the colours differ: mean |error| of the composite in the edge band,
               against the portrait composited onto the new background with its clean
               colours;
  time       - the CPU's frame graph on ONNX Runtime (fast model, image background),
               the three side by side, interleaved, median of 3 timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import platform
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.backends.onnxruntime_backend import export_frame_graph  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.graph import FrameGraph, GraphSpec, downscale, plane_estimate_factor  # noqa: E402
from p3m_live.model import resolve_model_weights  # noqa: E402
from p3m_live.spec import rgb_to_planes  # noqa: E402
from p3m_live.timing import time_calls  # noqa: E402
from p3m_live.video.frames import planes_to_rgb  # noqa: E402
from tools._common import PORTRAITS  # noqa: E402
from tools.bench_onnx import inputs_for  # noqa: E402
from tools.bench_quality import clean_foreground  # noqa: E402

WAYS = ("frame", "quick", "estimate")


class TrueMatte(torch.nn.Module):
    """A stand-in for the network: the true matte at the model size."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = torch.zeros(1, 1, 1, 1)

    def matte(self, rgb_lo: torch.Tensor) -> torch.Tensor:
        return downscale(self.alpha, tuple(rgb_lo.shape[-2:]))


def spec_for(width: int, height: int, way: str, background: str = "image") -> GraphSpec:
    return GraphSpec(height, width, "i420", "i420", model="fast", foreground=way, background=background)


def edge_errors(width: int, height: int, limit: int | None) -> dict[str, float]:
    """Mean |error| in the edge band over the shared portraits, for each way."""
    net = TrueMatte()
    errors: dict[str, list[float]] = {way: [] for way in WAYS}
    yy, xx = np.mgrid[0:height, 0:width]
    old = np.stack([0.2 + 0.6 * xx / width, 0.8 - 0.6 * yy / height, 0.3 + 0 * xx], -1).astype(np.float32)
    new = np.stack([0.9 + 0 * xx, 0.85 - 0.5 * xx / width, 0.2 + 0.6 * yy / height], -1).astype(np.float32)
    new8 = (new * 255 + 0.5).astype(np.uint8)
    graphs = {way: FrameGraph(net, dataclasses.replace(spec_for(width, height, way), temporal="off")) for way in WAYS}
    for path in sorted(PORTRAITS.glob("*.jpg"))[:limit]:
        matte = PORTRAITS.parent / "alpha" / f"{path.stem}.png"
        photo = cv2.resize(cv2.imread(str(path))[..., ::-1], (width, height), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(cv2.imread(str(matte), cv2.IMREAD_GRAYSCALE), (width, height), interpolation=cv2.INTER_AREA)
        alpha = alpha.astype(np.float32) / 255
        rgb = clean_foreground(photo.astype(np.float32) / 255, alpha)
        a = alpha[..., None]
        shot = (np.clip(a * rgb + (1 - a) * old, 0, 1) * 255 + 0.5).astype(np.uint8)  # filmed in front of `old`
        truth = a * rgb + (1 - a) * new
        band = cv2.dilate(((alpha > 0.01) & (alpha < 0.99)).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        net.alpha = torch.from_numpy(alpha)[None, None]
        for way, graph in graphs.items():
            bg = rgb_to_planes(new8[None]) if graph.planar else new8[None]
            with torch.inference_mode():
                comp, _, _ = graph(torch.from_numpy(rgb_to_planes(shot[None])), torch.from_numpy(bg),
                                   graph.example_inputs()["state_alpha"])  # fmt: skip
            out = planes_to_rgb(comp[0].numpy(), "i420", "bt601", False).astype(np.float32) / 255
            errors[way].append(float(np.abs(out - truth)[band].mean()))
    if not errors["frame"]:
        raise SystemExit(f"no portraits under {PORTRAITS}")
    return {way: float(np.mean(e)) for way, e in errors.items()}


def times(width: int, height: int, rounds: int, iters: int) -> dict[str, float]:
    """Median ms a frame of each way's CPU graph on ONNX Runtime, interleaved."""
    import onnxruntime as ort

    weights = resolve_model_weights("fast", None, height, width)
    calls = {}
    for way in WAYS:
        buffer = io.BytesIO()
        export_frame_graph(spec_for(width, height, way), weights, buffer)
        session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
        feed = inputs_for(session)
        calls[way] = lambda s=session, f=feed: s.run(None, f)
    ms: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(rounds):
        for way, call in calls.items():
            ms[way].append(time_calls(call, iters).p50)
    return {way: statistics.median(m) for way, m in ms.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH", help="default 1280x720")
    ap.add_argument("--limit", type=int, help="portraits to score (default: all)")
    ap.add_argument("--iters", type=int, default=15, help="calls a timing (default 15)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timings of each (default 3)")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, ONNX Runtime CPU, fast model, image background")
    print("| frame | foreground | estimated at | edge error | vs frame | ms a frame | vs frame |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for width, height in args.size or [(1280, 720)]:
        err, ms = edge_errors(width, height, args.limit), times(width, height, args.rounds, args.iters)
        factor = {"frame": "-", "quick": f"1/{plane_estimate_factor(height, width)}", "estimate": "1/2"}
        if min(width, height) < 540:
            factor["estimate"] = "1/1"  # (graph.foreground_params)
        for way in WAYS:
            print(f"| {width}x{height} | {way} | {factor[way]} | {err[way]:.4f} | {err[way] / err['frame']:.2f} | "
                  f"{ms[way]:.1f} | {ms[way] / ms['frame']:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
