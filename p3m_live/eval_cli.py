"""``p3m-live eval``: P3M-Net on a matting test set, with the paper's protocol and metrics.

Layouts: P3M-500-P / P3M-500-NP (``blurred_image/`` or ``original_image/``, ``mask/``,
``trimap/``), or plain ``original/`` + ``alpha/`` pairs, whose trimap is then made
from the matte (unknown band: 25-pixel elliptic dilation of alpha > 0 minus the
erosion of alpha = 255, the way P3M builds trimaps). Images are read with Pillow,
as the official code does, so JPEG decoding matches.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import P3MError
from .export_cli import parse_count, parse_device
from .strategies import STRATEGIES

METRICS = ("SAD", "MSE", "MAD", "SAD-T", "MSE-T", "MAD-T", "SAD-FG", "SAD-BG", "Grad", "Conn")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TRIMAP_KERNEL = 25


@dataclass
class Sample:
    name: str
    image: Path
    alpha: Path
    trimap: Path | None  # None: made from the matte


def find_samples(data: Path) -> tuple[list[Sample], str]:
    """The image/matte(/trimap) triples under ``data`` and a name for the layout."""
    if not data.is_dir():
        raise P3MError(f"dataset folder not found: {data}")
    if (data / "mask").is_dir():
        images = next((data / d for d in ("blurred_image", "original_image") if (data / d).is_dir()), None)
        if images is None or not (data / "trimap").is_dir():
            raise P3MError(f"{data} has mask/ but not blurred_image/ or original_image/ and trimap/ (P3M-500 layout)")
        masks, trimaps, layout = data / "mask", data / "trimap", f"P3M-500 ({images.name}/)"
    elif (data / "original").is_dir() and (data / "alpha").is_dir():
        images, masks, trimaps, layout = data / "original", data / "alpha", None, "original/ + alpha/"
    else:
        raise P3MError(
            f"{data} is neither a P3M-500 layout (blurred_image/ or original_image/, mask/, trimap/) "
            "nor original/ + alpha/ pairs"
        )
    samples = []
    for img in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        alpha = masks / f"{img.stem}.png"
        trimap = trimaps / f"{img.stem}.png" if trimaps else None
        for needed in (alpha, trimap):
            if needed is not None and not needed.is_file():
                raise P3MError(f"{img.name} has no {needed.parent.name}/{needed.name}; every image needs one")
        samples.append(Sample(img.stem, img, alpha, trimap))
    if not samples:
        raise P3MError(f"no images in {images}")
    return samples, layout


def read_gray(path: Path) -> np.ndarray:
    from PIL import Image

    a = np.array(Image.open(path))
    return a[:, :, 0] if a.ndim > 2 else a


def trimap_from_alpha(alpha: np.ndarray, kernel_size: int = TRIMAP_KERNEL) -> np.ndarray:
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    dilated = cv2.dilate((alpha != 0).astype(np.uint8), kernel)
    eroded = cv2.erode((alpha == 255).astype(np.uint8), kernel)
    return (eroded * 255 + (dilated - eroded) * 128).astype(np.uint8)


def score(pred: np.ndarray, alpha: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    from .metrics import connectivity_error, gradient_error, mad, mse, sad, sad_fg_bg, trimap_sad_mse_mad

    sad_t, mse_t, mad_t = trimap_sad_mse_mad(pred, alpha, trimap)
    fg, bg = sad_fg_bg(pred, alpha, trimap)
    return {
        "SAD": sad(pred, alpha), "MSE": mse(pred, alpha), "MAD": mad(pred, alpha),
        "SAD-T": sad_t, "MSE-T": mse_t, "MAD-T": mad_t, "SAD-FG": fg, "SAD-BG": bg,
        "Grad": gradient_error(pred, alpha), "Conn": connectivity_error(pred, alpha),
    }  # fmt: skip


def evaluate(samples: list[Sample], net, strategy: str, device: str, progress=None) -> list[dict]:
    from PIL import Image

    from .strategies import predict

    rows = []
    for i, s in enumerate(samples):
        image = np.array(Image.open(s.image))
        image = image[:, :, :3] if image.ndim > 2 else np.repeat(image[..., None], 3, axis=2)
        alpha_u8 = read_gray(s.alpha)
        trimap = read_gray(s.trimap) if s.trimap else trimap_from_alpha(alpha_u8)
        if alpha_u8.shape != image.shape[:2] or trimap.shape != image.shape[:2]:
            raise P3MError(f"{s.name}: image, matte and trimap sizes differ")
        pred = predict(net, image, strategy, device)
        rows.append({"image": s.name, **score(pred, alpha_u8 / 255.0, trimap)})
        if progress is not None:
            progress.update(i + 1)
    return rows


def overall(rows: list[dict]) -> dict[str, float]:
    return {m: float(np.mean([r[m] for r in rows])) for m in METRICS}


def table(rows: list[dict], title: str) -> str:
    mean = overall(rows)
    head = "| " + " | ".join(METRICS) + " |"
    line = "| " + " | ".join("---:" for _ in METRICS) + " |"
    vals = "| " + " | ".join(f"{mean[m]:.4f}" if m.startswith(("MSE", "MAD")) else f"{mean[m]:.2f}"
                             for m in METRICS) + " |"  # fmt: skip
    return f"{title}\n{head}\n{line}\n{vals}"


def write_results(path: Path, rows: list[dict], meta: dict) -> None:
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps({**meta, "overall": overall(rows), "images": rows}, indent=2))
    elif path.suffix.lower() == ".csv":
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["image", *METRICS])
            w.writeheader()
            w.writerows(rows)
            w.writerow({"image": "overall", **overall(rows)})
    else:
        raise P3MError(f"--out must end in .csv or .json, not {path.name}")


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="P3M-500-P/NP folder, or original/ + alpha/ pairs")
    p.add_argument("--strategy", choices=STRATEGIES, default="hybrid", help="official test strategy (default hybrid)")
    p.add_argument("--weights", help="P3M-Net checkpoint (default: $P3M_LIVE_WEIGHTS or the cache)")
    p.add_argument("--device", type=parse_device, default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--out", type=Path, help="per-image and overall results: .csv or .json")
    p.add_argument("--limit", type=parse_count, help="only the first N images")


def run_eval(args: argparse.Namespace) -> int:
    from .model import load_p3mnet
    from .model.weights import resolve_weights
    from .stats import Progress

    samples, layout = find_samples(args.data)
    if args.limit:
        samples = samples[: args.limit]
    if args.out and args.out.suffix.lower() not in (".csv", ".json"):
        raise P3MError(f"--out must end in .csv or .json, not {args.out.name}")
    weights = resolve_weights(args.weights, download=False)
    net = load_p3mnet(weights, unpool="native", device=args.device)
    progress = None if args.quiet else Progress(len(samples))
    rows = evaluate(samples, net, args.strategy, args.device, progress)
    if progress is not None:
        progress.finish(len(rows))
    title = f"# P3M-Net, {args.strategy.upper()}, {len(rows)} images of {args.data} ({layout})"
    print(table(rows, title))
    if args.out:
        meta = {"data": str(args.data), "layout": layout, "strategy": args.strategy, "weights": str(weights)}
        write_results(args.out, rows, meta)
        print(f"results: {args.out}", file=sys.stderr)
    return 0
