#!/usr/bin/env python3
"""What a photo background costs to make ready, decoded whole or at a fraction of its size.

    python tools/bench_photo.py --photo 4000x3000 --sizes 1280x720,1920x1080

Writes one of the shared portraits, scaled to ``--photo``, as a JPEG (quality 92), then
makes it into a background for each frame size (``BackgroundFeed``: decode, turn,
scale, crop), in interleaved rounds: decoded whole (what it was before) and decoded at
the fraction of its size that still covers the frame (libjpeg's scaled decode,
``read_rgb(reduce=...)``). Wall seconds, median of the rounds, on this machine, and
the ratio. This is the start-up cost of each photo, and in a live run the work done
on the next-background thread at each switch. A last row times the check of
``--background`` itself (every photo of a folder is checked at start-up): a whole
decode against the 1/8 one with the size from the JPEG's header.

With ``--png``: PNGs with an alpha channel at the photo's size (a screenshot, opaque
all over, and a logo-like one with a transparent half) checked and made ready for the
first frame size: decoded for their colours and again for their alpha (before), and
once, as stored, where the file can carry no EXIF orientation (now).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.video import frames  # noqa: E402
from p3m_live.video.backgrounds import BackgroundFeed, _checked_image, parse_background, read_image  # noqa: E402
from tools._common import PORTRAITS  # noqa: E402


def made(photo: Path, width: int, height: int, whole: bool) -> tuple[float, int]:
    """Seconds to make ``photo`` a background for width x height, and the reduction used."""
    choice = parse_background(str(photo))
    reduce = BackgroundFeed._reduction
    if whole:
        BackgroundFeed._reduction = lambda self: 1  # what the feed did before
    try:
        t0 = time.perf_counter()
        feed = BackgroundFeed(choice, width, height)
        took = time.perf_counter() - t0
        return took, feed._reduction()
    finally:
        BackgroundFeed._reduction = reduce


def timed(work) -> float:
    t0 = time.perf_counter()
    work()
    return time.perf_counter() - t0


def png_table(source: np.ndarray, size: tuple[int, int], frame: tuple[int, int], rounds: int, tmp: Path) -> None:
    """Alpha PNGs checked and made ready, decoded twice (before) and once (now)."""
    import cv2

    pw, ph = size
    bgr = cv2.resize(source, (pw, ph), interpolation=cv2.INTER_CUBIC)
    alpha = np.full((ph, pw), 255, np.uint8)
    pngs = {"screenshot (opaque)": tmp / "shot.png", "logo (half transparent)": tmp / "logo.png"}
    cv2.imwrite(str(pngs["screenshot (opaque)"]), np.dstack([bgr, alpha]))
    alpha[:, : pw // 2] = 0
    cv2.imwrite(str(pngs["logo (half transparent)"]), np.dstack([bgr, alpha]))
    print(f"# {pw}x{ph} PNGs with alpha checked and made ready for {frame[0]}x{frame[1]}, median of {rounds} "
          f"interleaved rounds, on {platform.processor() or platform.machine()}")  # fmt: skip
    print("| PNG | decoded twice, ms | once, ms | twice / once |")
    print("| --- | --- | --- | --- |")
    turned = frames.may_be_turned

    def ready(png: Path) -> None:
        BackgroundFeed(parse_background(str(png)), *frame)

    for name, png in pngs.items():
        twice, once = [], []
        for _ in range(rounds):
            frames.may_be_turned = lambda path: True  # what read_rgb did before: colours, then alpha
            try:
                twice.append(timed(lambda png=png: ready(png)))
            finally:
                frames.may_be_turned = turned
            once.append(timed(lambda png=png: ready(png)))
        a, b = statistics.median(twice), statistics.median(once)
        print(f"| {name} | {a * 1000:.1f} | {b * 1000:.1f} | {a / b:.2f} |")


def main() -> int:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=parse_size, default=(4000, 3000), metavar="WxH")
    ap.add_argument("--sizes", default="1280x720,1920x1080", help="frame sizes, comma-separated")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--png", action="store_true", help="time PNGs with an alpha channel instead (see above)")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    pw, ph = args.photo
    if args.png:
        with tempfile.TemporaryDirectory() as tmp:
            source = cv2.imread(str(sorted(PORTRAITS.glob("*.jpg"))[0]))
            png_table(source, args.photo, sizes[0], args.rounds, Path(tmp))
        return 0
    print(f"# a {pw}x{ph} JPEG photo made into a background, median of {args.rounds} interleaved rounds, "
          f"on {platform.processor() or platform.machine()}")  # fmt: skip
    print("| frame | decoded | whole, s | reduced, s | whole / reduced |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        source = cv2.imread(str(sorted(PORTRAITS.glob("*.jpg"))[0]))
        cv2.imwrite(
            str(photo), cv2.resize(source, (pw, ph), interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        for w, h in sizes:
            whole, reduced, k = [], [], 1
            for _ in range(args.rounds):
                whole.append(made(photo, w, h, whole=True)[0])
                took, k = made(photo, w, h, whole=False)
                reduced.append(took)
            a, b = statistics.median(whole), statistics.median(reduced)
            print(f"| {w}x{h} | 1/{k} | {a:.3f} | {b:.3f} | {a / b:.2f} |")
        whole, small = [], []
        for _ in range(args.rounds):
            whole.append(timed(lambda: read_image(photo)))
            small.append(timed(lambda: _checked_image(photo)))
        a, b = statistics.median(whole), statistics.median(small)
        print(f"| the check of --background | 1/8 | {a:.3f} | {b:.3f} | {a / b:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
