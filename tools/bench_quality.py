#!/usr/bin/env python3
"""Matte quality beyond the network: upsampling, temporal filters, foreground estimation, the blur.

    python tools/bench_quality.py [--data ../shared/data/portraits] [--frames 24]

DATA holds original/*.jpg and alpha/*.png (real portraits with their mattes).
  a. upsampling: image and matte shrunk 4x, the matte brought back bilinearly and
     with the frame graph's guided filter; SAD, MSE and Grad at full resolution.
  b. temporal: for each portrait, a clip of its foreground over a background, still
     and moving along a known path; the network's alpha is simulated as the true
     alpha at model size, degraded independently each frame (noise in the edge
     band, a jittered edge); each filter of the frame graph (--temporal) runs on it; MSE and
     dtSSD against the truth. Two offline filters the graph does not have are measured
     beside them, for what they would gain: a one-frame look-ahead and the adaptive
     filter run forwards and backwards.
  c. compositing: each portrait's foreground (its colours spread into the soft edge,
     so that they hold none of the original background) over a known background,
     re-composited onto a new one with the frame's colours or with the estimated
     foreground; mean error against the true composite in the edge band.
  d. blur: the same synthetic shots in front of a room with detail, blurred as the
     blur background is (strength 16), of the whole frame and of the room alone (the
     frame graph's, with the true alpha); mean error in the band of room 40 pixels
     around the person, against the blur of the room with nobody in it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.graph import (  # noqa: E402
    ADAPTIVE_MOVING,
    ADAPTIVE_NOISE,
    ADAPTIVE_STILL,
    FrameGraph,
    GraphSpec,
    blur_background,
    blur_size,
    box,
    downscale,
    estimate_foreground,
    foreground_params,
    guided_upsample,
    luma_of,
    resize,
)
from p3m_live.metrics import dtssd, gradient_error, mse, sad  # noqa: E402
from p3m_live.spec import TEMPORALS  # noqa: E402


def load(data: Path, limit: int | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for img in sorted((data / "original").glob("*.jpg"))[:limit]:
        a = data / "alpha" / f"{img.stem}.png"
        if a.is_file():
            rgb = cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
            out.append((img.stem, rgb, cv2.imread(str(a), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255))
    return out


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(2, 0, 1)[None] if x.ndim == 3 else torch.from_numpy(x)[None, None]


def upsampling(portraits) -> dict[str, list[tuple[float, float, float]]]:
    rows: dict[str, list] = {"bilinear": [], "guided": []}
    for _, rgb, alpha in portraits:
        h, w = alpha.shape
        img, a = t(rgb), t(alpha)
        lo = (h // 4, w // 4)
        img_lo, a_lo = downscale(img, lo), downscale(a, lo)
        ups = {
            "bilinear": F.interpolate(a_lo, size=(h, w), mode="bilinear", align_corners=False),
            "guided": guided_upsample(a_lo, img_lo, img),
        }
        for name, up in ups.items():
            p = up[0, 0].double().numpy()
            rows[name].append((sad(p, alpha), mse(p, alpha), gradient_error(p, alpha)))
    return rows


def simulated_network(alpha_lo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The true alpha, degraded the way per-frame mattes flicker: noise in the edge band and
    an edge that jitters by a fraction of a pixel, independently each frame."""
    band = (alpha_lo > 0.02) & (alpha_lo < 0.98)
    band = cv2.dilate(band.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    dy, dx = rng.uniform(-0.75, 0.75, 2)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    jittered = cv2.warpAffine(alpha_lo, m, alpha_lo.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    noisy = jittered + band * rng.normal(0, 0.08, alpha_lo.shape).astype(np.float32)
    return np.clip(noisy, 0, 1)


def clip_frames(rgb, alpha, background, frames: int, speed: float, size: tuple[int, int]):
    """Frames (model size) of the portrait's foreground moving ``speed`` pixels a frame over
    ``background``, with the true alpha of each."""
    h, w = size
    fg = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    a = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    out = []
    for i in range(frames):
        m = np.float32([[1, 0, speed * i - speed * frames / 2], [0, 1, 0]])
        fi = cv2.warpAffine(fg, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        ai = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out.append((ai[..., None] * fi + (1 - ai[..., None]) * background, ai))
    return out


class NoNetwork(torch.nn.Module):
    def matte(self, rgb):  # pragma: no cover - only smooth() is used
        raise AssertionError


def temporal(portraits, frames: int) -> dict[tuple[str, str], list[tuple[float, float]]]:
    rows: dict[tuple[str, str], list] = {}
    size = (192, 256)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    background = np.stack([xx / size[1], yy / size[0], 0.5 + 0 * xx], -1).astype(np.float32)
    for k, (_, rgb, alpha) in enumerate(portraits):
        for motion, speed in (("still", 0.0), ("moving", 3.0)):
            clip = clip_frames(rgb, alpha, background, frames, speed, size)
            rng = np.random.default_rng(k)
            truth = np.stack([a for _, a in clip])
            raw = np.stack([simulated_network(a, rng) for _, a in clip])
            luma = torch.stack([luma_of(t(f))[0] for f, _ in clip])
            graphs = {
                mode: FrameGraph(NoNetwork(), GraphSpec(size[0], size[1], temporal=mode, model_short_side=192))
                for mode in TEMPORALS
            }
            preds = {mode: _smoothed(g, raw, luma) for mode, g in graphs.items()}
            preds.update(_offline_studies(graphs["adaptive"], raw, luma, preds["adaptive"]))
            for mode, pred in preds.items():
                rows.setdefault((motion, mode), []).append((float(np.mean((pred - truth) ** 2)), dtssd(pred, truth)))
    return rows


def _smoothed(g: FrameGraph, raw: np.ndarray, luma: torch.Tensor) -> np.ndarray:
    """The frame graph's temporal filter over a clip's per-frame mattes, frame by frame."""
    state = torch.full(g.spec.state_shape, -1.0)
    out = []
    for i in range(len(raw)):
        o, state = g.smooth(torch.from_numpy(raw[i])[None, None], state, luma[i : i + 1])
        out.append(o[0, 0].numpy())
    return np.stack(out)


def _offline_studies(g: FrameGraph, raw: np.ndarray, luma: torch.Tensor, adaptive: np.ndarray) -> dict:
    """Two offline filters the frame graph does not have, measured for what they would
    gain. Look-ahead: the adaptive output blended with the next frame's raw matte where
    the picture does not change between them, as much as the adaptive filter weighs a new
    matte there (ADAPTIVE_STILL), not at all where it moves. Forward-backward: the mean of
    the adaptive filter run forwards and backwards over the whole clip."""
    ahead = adaptive.copy()
    for i in range(len(raw) - 1):
        motion = box((luma[i + 1 : i + 2] - luma[i : i + 1]).abs(), 2)[0, 0].numpy()
        moving = np.clip((motion - ADAPTIVE_NOISE) / (ADAPTIVE_MOVING - ADAPTIVE_NOISE), 0, 1)
        w = ADAPTIVE_STILL * (1 - moving)
        ahead[i] = (1 - w) * adaptive[i] + w * raw[i + 1]
    backwards = _smoothed(g, raw[::-1].copy(), luma.flip(0))[::-1]
    return {"look-ahead 1 (study)": ahead, "forward-backward (study)": (adaptive + backwards) / 2}


def clean_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours without the original background in them: the colours of nearly
    opaque pixels, spread outwards into the soft edge by normalised Gaussian blurs."""
    solid = (alpha > 0.95).astype(np.float32)
    fg = rgb.copy()
    for sigma in (2, 8, 32):
        num = cv2.GaussianBlur(rgb * solid[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(solid, (0, 0), sigma)[..., None]
        fill = num / np.maximum(den, 1e-6)
        soft = (alpha <= 0.95)[..., None] & (den > 1e-3)
        fg = np.where(soft & (fg == rgb), fill, fg)
    return fg


def compositing(portraits) -> dict[str, list[float]]:
    rows: dict[str, list] = {"frame colours": [], "estimated foreground": []}
    for _, photo, alpha in portraits:
        rgb = clean_foreground(photo, alpha)  # the true foreground colours of the synthetic shot
        h, w = alpha.shape
        yy, xx = np.mgrid[0:h, 0:w]
        old = np.stack([0.2 + 0.6 * xx / w, 0.8 - 0.6 * yy / h, 0.3 + 0 * xx], -1).astype(np.float32)
        new = np.stack([0.9 + 0 * xx, 0.85 - 0.5 * xx / w, 0.2 + 0.6 * yy / h], -1).astype(np.float32)
        a = alpha[..., None]
        shot = a * rgb + (1 - a) * old  # the portrait filmed in front of a known background
        truth = a * rgb + (1 - a) * new
        band = cv2.dilate(((alpha > 0.01) & (alpha < 0.99)).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        est = estimate_foreground(t(shot), t(alpha), *foreground_params(h, w))  # as the frame graph does
        est = est[0].permute(1, 2, 0).numpy()
        for name, fg in (("frame colours", shot), ("estimated foreground", est)):
            comp = a * fg + (1 - a) * new
            rows[name].append(float(np.abs(comp - truth)[band].mean()))
    return rows


def blur_glow(portraits, strength: int = 16) -> dict[str, list[float]]:
    rows: dict[str, list] = {"whole frame": [], "room alone": []}
    for _, photo, alpha in portraits:
        rgb = clean_foreground(photo, alpha)
        h, w = alpha.shape
        yy, xx = np.mgrid[0:h, 0:w]
        stripes = 0.5 + 0.3 * np.sin(xx / 23.0)[..., None] * np.array([1.0, 0.6, 0.2])  # a room with detail
        room = np.clip(stripes * np.array([0.5, 0.7, 0.9]) + 0.2 * yy[..., None] / h, 0, 1).astype(np.float32)
        a = alpha[..., None]
        shot = a * rgb + (1 - a) * room
        size, none = blur_size(h, w, strength), torch.zeros(1, 1, h, w)
        truth = resize(blur_background(t(room), none, size), (h, w))[0].permute(1, 2, 0).numpy()
        near = cv2.dilate((alpha > 0.01).astype(np.uint8), np.ones((81, 81), np.uint8)) > 0
        band = near & (alpha <= 0.01)  # the room within 40 pixels of the person
        for name, mask in (("whole frame", none), ("room alone", t(alpha))):
            got = resize(blur_background(t(shot), mask, size), (h, w))[0].permute(1, 2, 0).numpy()
            rows[name].append(float(np.abs(got - truth)[band].mean()))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "portraits")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    portraits = load(args.data, args.limit)
    if not portraits:
        print(f"no original/*.jpg with alpha/*.png under {args.data}", file=sys.stderr)
        return 2
    n = len(portraits)
    up = upsampling(portraits)
    print(f"# a. upsampling from 1/4 size, {n} portraits, full resolution (means)")
    print("| upsampling | SAD | MSE | Grad |")
    print("| --- | ---: | ---: | ---: |")
    for name, rows in up.items():
        m = np.mean(rows, axis=0)
        print(f"| {name} | {m[0]:.1f} | {m[1]:.5f} | {m[2]:.1f} |")
    gain = 1 - np.mean([r[1] for r in up["guided"]]) / np.mean([r[1] for r in up["bilinear"]])
    print(f"guided against bilinear: MSE {gain:+.0%} lower\n")

    tm = temporal(portraits, args.frames)
    print(f"# b. temporal filters, {n} portraits x {args.frames} frames at 256x192, simulated per-frame mattes")
    print("| subject | filter | MSE | dtSSD |")
    print("| --- | --- | ---: | ---: |")
    for (motion, mode), rows in tm.items():
        m = np.mean(rows, axis=0)
        print(f"| {motion} | {mode} | {m[0]:.5f} | {m[1]:.4f} |")
    for mode in TEMPORALS[1:]:
        still = 1 - np.mean([r[1] for r in tm[("still", mode)]]) / np.mean([r[1] for r in tm[("still", "off")]])
        moving = np.mean([r[0] for r in tm[("moving", mode)]]) / np.mean([r[0] for r in tm[("moving", "off")]]) - 1
        print(f"{mode}: still dtSSD {still:+.0%} lower; moving MSE {moving:+.0%} higher than off")
    for mode in ("motion", "look-ahead 1 (study)", "forward-backward (study)"):
        gains = [
            1 - np.mean([r[1] for r in tm[(motion, mode)]]) / np.mean([r[1] for r in tm[(motion, "adaptive")]])
            for motion in ("still", "moving")
        ]
        print(f"{mode}: dtSSD {gains[0]:+.0%} lower still, {gains[1]:+.0%} lower moving than adaptive")
    print()
    comp = _error_table(
        f"c. re-compositing onto a new background, {n} portraits, mean |error| in the edge band",
        ("foreground colours", "edge error"), compositing(portraits),
    )  # fmt: skip
    print(f"foreground estimation: edge error {1 - comp['estimated foreground'] / comp['frame colours']:+.0%} lower\n")
    glow = _error_table(
        f"d. the blur background, {n} portraits, mean |error| in the room 40 px around the person",
        ("blur of", "error"), blur_glow(portraits),
    )  # fmt: skip
    print(f"the room alone: error {1 - glow['room alone'] / glow['whole frame']:+.0%} lower")
    return 0


def _error_table(title: str, columns: tuple[str, str], rows: dict[str, list[float]]) -> dict[str, float]:
    """Print a table of mean errors, one row a method; return the means."""
    means = {name: float(np.mean(errors)) for name, errors in rows.items()}
    print(f"# {title}\n| {columns[0]} | {columns[1]} |\n| --- | ---: |")
    for name, m in means.items():
        print(f"| {name} | {m:.4f} |")
    return means


if __name__ == "__main__":
    sys.exit(main())
