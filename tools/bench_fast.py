#!/usr/bin/env python3
"""The fast model's matte quality on real portraits, raw and with guided upsampling.

    python tools/bench_fast.py [--data ../shared/data/portraits]

For every image in DATA/original with its matte in DATA/alpha (the official P3M-Net's
mattes for the shared portraits), each fast model (general 256x256, landscape
144x256) sees the image stretched to its size, as in MediaPipe. The mask is
brought back to full resolution two ways: bilinear ("raw") and with the frame
graph's guided upsampling. MAD, SAD and Grad are the official definitions
(p3m_live.metrics), at full resolution, averaged over the images. Needs
`p3m-live weights fetch fast` first.
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

from p3m_live.graph import downscale, guided_upsample  # noqa: E402
from p3m_live.metrics import gradient_error, mad, sad  # noqa: E402
from p3m_live.model.fast import GENERAL, LANDSCAPE, MODEL_SIZES, fast_variant, load_fast_model  # noqa: E402
from p3m_live.model.fast_weights import resolve_fast_model  # noqa: E402


def mattes(net, image: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
    rgb = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    rgb_lo = downscale(rgb, size)
    with torch.inference_mode():
        lo = net.matte(rgb_lo)
        raw = F.interpolate(lo, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        guided = guided_upsample(lo, rgb_lo, rgb)
    return {"raw (bilinear)": raw[0, 0].numpy(), "guided": guided[0, 0].numpy()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "portraits")
    args = ap.parse_args()
    pairs = [(p, args.data / "alpha" / f"{p.stem}.png") for p in sorted((args.data / "original").glob("*.jpg"))]
    pairs = [(i, a) for i, a in pairs if a.is_file()]
    if not pairs:
        print(f"no original/*.jpg with alpha/*.png under {args.data}", file=sys.stderr)
        return 2
    scores: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for variant in (GENERAL, LANDSCAPE):
        net = load_fast_model(resolve_fast_model(variant))
        for img_path, alpha_path in pairs:
            image = cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB)
            truth = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255
            for way, pred in mattes(net, image, MODEL_SIZES[variant]).items():
                p = pred.astype(np.float64)
                row = (mad(p, truth), sad(p, truth), gradient_error(p, truth))
                scores.setdefault((variant, way), []).append(row)
                if fast_variant(*image.shape[:2]) == variant:  # the model p3m-live picks for this frame
                    scores.setdefault(("by orientation (what p3m-live runs)", way), []).append(row)
    print(f"# fast model against the official P3M-Net mattes, {len(pairs)} portraits, full resolution")
    print("| model | upsampling | MAD | SAD | Grad |")
    print("| --- | --- | ---: | ---: | ---: |")
    for (variant, way), rows in sorted(scores.items(), key=lambda kv: kv[0][0].startswith("by")):
        m = np.mean(rows, axis=0)
        print(f"| {variant} | {way} | {m[0]:.4f} | {m[1]:.1f} | {m[2]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
