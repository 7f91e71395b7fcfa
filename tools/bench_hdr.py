#!/usr/bin/env python3
"""What HDR tone mapping costs per frame, next to the plain conversion it replaced, in one run.

    python tools/bench_hdr.py --size 1280x720 --size 1920x1080

Makes a 10-bit HLG clip (HEVC, as phones record it) of each size, decodes it, and
times on each decoded frame, interleaved: the plain 8-bit conversion a run used
before (swscale to RGB, no tone mapping, so pale colours) and the tone mapping to
SDR I420 that sources do now (p3m_live/video/hdr.py). Both run in the source's
decoding thread, beside matting and encoding; the last column is the share of a
30 fps frame interval that tone mapping takes.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.video.hdr import HLG, ToneMapper, scene_to_hlg  # noqa: E402
from tests.media import make_hdr_clip  # noqa: E402


def hlg_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """A moving gradient up to HLG's peak, with a saturated patch, as 10-bit HLG HEVC."""
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    pictures = []
    for i in range(frames):
        scene = np.stack([(xx + i / frames) % 1, yy, 0.5 * xx], axis=2)
        scene[height // 4 : height // 2, width // 4 : width // 2] = (0.6, 0.02, 0.02)
        pictures.append(np.round(scene_to_hlg(scene) * 65535).astype(np.uint16))
    return make_hdr_clip(path, np.stack(pictures), transfer=HLG, codec="libx265")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH")
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    print(f"# HLG to SDR on {platform.processor() or platform.machine()}, per frame, medians of {args.frames} frames")
    print("| frame | 8-bit conversion ms (before) | tone mapping ms | tone mapping / conversion | of a 30 fps frame |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in args.size or [(1280, 720), (1920, 1080)]:
            clip = hlg_clip(Path(tmp) / f"{w}x{h}.mp4", w, h, args.frames)
            plain, tone = [], []
            mapper = ToneMapper(HLG)
            with av.open(str(clip)) as c:  # decode first: FFmpeg's decoding threads would share the cores
                c.streams.video[0].thread_type = "AUTO"
                decoded = list(c.decode(video=0))
            for f in decoded:
                t0 = time.perf_counter()
                f.reformat(format="rgb24").to_ndarray()
                t1 = time.perf_counter()
                mapper(f).to_ndarray()
                plain.append(t1 - t0)
                tone.append(time.perf_counter() - t1)
            p, t = (1000 * statistics.median(x) for x in (plain, tone))
            print(f"| {w}x{h} | {p:.1f} | {t:.1f} | {t / p:.1f} | {t / (1000 / 30):.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
