#!/usr/bin/env python3
"""The fast model's matte quality on real portraits, raw and with guided upsampling,
and the temporal filters on its own mattes.

    python tools/bench_fast.py [--data ../shared/data/portraits] [--limit N] [--frames 24]

a. For every image in DATA/original with its matte in DATA/alpha (the official P3M-Net's
   mattes for the shared portraits), each fast model (general 256x256, landscape
   144x256) sees the image stretched to its size, as in MediaPipe. The mask is
   brought back to full resolution two ways: bilinear ("raw") and with the frame
   graph's guided upsampling. MAD, SAD and Grad are the official definitions
   (p3m_live.metrics), at full resolution, averaged over the images.
b. Temporal filters on real mattes: each portrait, at 320x240, moves over a striped
   room 0, 1 or 3 pixels a frame, with a webcam's noise (sigma 3 levels) new in every
   frame. The whole frame graph (the landscape model, guided upsampling) runs frame
   by frame with each --temporal filter; MSE and dtSSD of its alpha against the moved
   official matte. Unlike bench_quality's simulated mattes, the flicker here is the
   network's own answer to the noise. With what each filter's graph costs.

Needs `p3m-live weights fetch fast` first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.graph import FrameGraph, GraphSpec, downscale, guided_upsample  # noqa: E402
from p3m_live.metrics import dtssd, gradient_error, mad, sad  # noqa: E402
from p3m_live.model.fast import GENERAL, LANDSCAPE, MODEL_SIZES, fast_variant, load_fast_model  # noqa: E402
from p3m_live.model.fast_weights import resolve_fast_model  # noqa: E402
from p3m_live.spec import TEMPORALS  # noqa: E402


def mattes(net, image: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
    rgb = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    rgb_lo = downscale(rgb, size)
    with torch.inference_mode():
        lo = net.matte(rgb_lo)
        raw = F.interpolate(lo, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        guided = guided_upsample(lo, rgb_lo, rgb)
    return {"raw (bilinear)": raw[0, 0].numpy(), "guided": guided[0, 0].numpy()}


TEMPORAL_SIZE = (240, 320)  # (height, width): a landscape frame, so the landscape model
NOISE = 3.0  # a webcam's sensor noise, in levels of 255


def moving_shot(image: np.ndarray, alpha: np.ndarray, frames: int, speed: float, seed: int):
    """Frames (uint8 RGB, TEMPORAL_SIZE) of the portrait moving ``speed`` pixels a frame
    across a striped room, new noise in each, with the true alpha of each."""
    h, w = TEMPORAL_SIZE
    side = h  # (the square portrait as high as the frame, centred at the middle frame)
    fg = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    a = cv2.resize(alpha, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    room = (0.5 + 0.3 * np.sin(xx / 9.0))[..., None] * np.array([0.9, 0.7, 0.5]) + 0.1 * yy[..., None] / h
    rng = np.random.default_rng(seed)
    out = []
    for i in range(frames):
        x = (w - side) / 2 + speed * (i - frames / 2)
        m = np.float32([[1, 0, x], [0, 1, 0]])
        fi = cv2.warpAffine(fg, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        ai = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        shot = (ai[..., None] * fi + (1 - ai[..., None]) * room) * 255 + rng.normal(0, NOISE, (h, w, 3))
        out.append((np.clip(shot.round(), 0, 255).astype(np.uint8), ai))
    return out


def temporal(portraits, frames: int) -> tuple[dict[tuple[float, str], list[tuple[float, float]]], dict]:
    """MSE and dtSSD of the frame graph's alpha, per (speed, filter), one row a portrait;
    and the seconds each call of the frame graph took, per filter."""
    h, w = TEMPORAL_SIZE
    net = load_fast_model(resolve_fast_model(fast_variant(h, w)))
    rows: dict[tuple[float, str], list] = {}
    seconds: dict[str, list[float]] = {}
    for k, (image, alpha) in enumerate(portraits):
        for speed in (0.0, 1.0, 3.0):
            clip = moving_shot(image, alpha, frames, speed, seed=k)
            truth = np.stack([a for _, a in clip])
            for mode in TEMPORALS:
                spec = GraphSpec(h, w, "rgb", "rgb", background="color", model="fast", temporal=mode)
                graph = FrameGraph(net, spec.with_(foreground="frame")).eval()
                state, bg = torch.full(spec.state_shape, -1.0), torch.zeros(1, 3, dtype=torch.uint8)
                pred = []
                with torch.inference_mode():
                    for shot, _ in clip:
                        started = time.perf_counter()
                        _, a, state = graph(torch.from_numpy(shot)[None], bg, state)
                        seconds.setdefault(mode, []).append(time.perf_counter() - started)
                        pred.append(a[0].numpy().astype(np.float64) / 255)
                pred = np.stack(pred).reshape(truth.shape)
                rows.setdefault((speed, mode), []).append((float(np.mean((pred - truth) ** 2)), dtssd(pred, truth)))
    return rows, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "portraits")
    ap.add_argument("--limit", type=int, help="only the first N portraits")
    ap.add_argument("--frames", type=int, default=24, help="frames of each clip in b")
    args = ap.parse_args()
    pairs = [(p, args.data / "alpha" / f"{p.stem}.png") for p in sorted((args.data / "original").glob("*.jpg"))]
    pairs = [(i, a) for i, a in pairs if a.is_file()][: args.limit]
    if not pairs:
        print(f"no original/*.jpg with alpha/*.png under {args.data}", file=sys.stderr)
        return 2
    portraits = [
        (cv2.cvtColor(cv2.imread(str(i)), cv2.COLOR_BGR2RGB), cv2.imread(str(a), cv2.IMREAD_GRAYSCALE) / 255)
        for i, a in pairs
    ]
    scores: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for variant in (GENERAL, LANDSCAPE):
        net = load_fast_model(resolve_fast_model(variant))
        for image, truth in portraits:
            for way, pred in mattes(net, image, MODEL_SIZES[variant]).items():
                p = pred.astype(np.float64)
                row = (mad(p, truth), sad(p, truth), gradient_error(p, truth))
                scores.setdefault((variant, way), []).append(row)
                if fast_variant(*image.shape[:2]) == variant:  # the model p3m-live picks for this frame
                    scores.setdefault(("by orientation (what p3m-live runs)", way), []).append(row)
    print(f"# a. fast model against the official P3M-Net mattes, {len(pairs)} portraits, full resolution")
    print("| model | upsampling | MAD | SAD | Grad |")
    print("| --- | --- | ---: | ---: | ---: |")
    for (variant, way), rows in sorted(scores.items(), key=lambda kv: kv[0][0].startswith("by")):
        m = np.mean(rows, axis=0)
        print(f"| {variant} | {way} | {m[0]:.4f} | {m[1]:.1f} | {m[2]:.1f} |")
    tm, seconds = temporal(portraits, args.frames)
    n = f"{len(pairs)} portraits x {args.frames} frames"
    print(f"\n# b. temporal filters on the fast model's own mattes, {n}, 320x240")
    print("| pixels a frame | filter | MSE | dtSSD | dtSSD vs off |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for (speed, mode), rows in tm.items():
        m, off = np.mean(rows, axis=0), np.mean(tm[(speed, "off")], axis=0)
        print(f"| {speed:g} | {mode} | {m[0]:.5f} | {m[1]:.4f} | {m[1] / off[1] - 1:+.0%} |")
    print("\n| filter | frame graph, median ms a frame (320x240, torch CPU) |")
    print("| --- | ---: |")
    for mode, times in seconds.items():
        print(f"| {mode} | {1000 * np.median(times):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
