#!/usr/bin/env python3
"""An editor's tracks (--alpha-out, --fg-out): the frame each one hands its encoder.

    python tools/bench_tracks.py --size 1920x1080

Per frame, on the offline pipeline's encode thread: the matte and the foreground made
into a frame in the encoder's pixel format, the way MatteSink made them before (the
matte repeated into RGB, or RGBA, and PyAV's own conversion at encode time) and now
(``sinks.grey_frame``: the matte's luma codes written directly; the colours converted
in the matrix the stream is tagged with). Both ways interleaved, median of the
repeats; the encoder's own time per frame is shown for scale. A shared portrait's
matte and colours (or, without ../shared, noise).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.video.frames import COLORSPACES, RANGES  # noqa: E402
from p3m_live.video.sinks import ALPHA_CODECS, VIDEO_CODECS, grey_frame  # noqa: E402
from tools._common import interleaved, portrait_rgb  # noqa: E402


def before(px: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """How MatteSink made the frame before (kept here to compare with): a matte repeated into
    RGB (RGBA for a format with alpha), converted by swscale's defaults."""
    if px.ndim == 2:
        px = np.repeat(px[..., None], 3, axis=2)
        if pix_fmt.startswith("yuva"):
            px = np.concatenate([px, np.full_like(px[..., :1], 255)], axis=2)
    return av.VideoFrame.from_ndarray(px, format="rgba" if px.shape[2] == 4 else "rgb24").reformat(format=pix_fmt)


def now(px: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """How MatteSink makes it now (for a YUV track in BT.709, limited range: an HD one's)."""
    if px.ndim == 2:
        return grey_frame(px, pix_fmt)
    vf = av.VideoFrame.from_ndarray(px, format="rgba" if px.shape[2] == 4 else "rgb24")
    if av.VideoFormat(pix_fmt).is_rgb:
        return vf.reformat(format=pix_fmt)
    return vf.reformat(format=pix_fmt, dst_colorspace=COLORSPACES["bt709"], dst_color_range=RANGES[False])


def encode_ms(frame: av.VideoFrame, codec: str, options: dict[str, str], frames: int = 4) -> float:
    """The encoder's time per frame for ``frame`` (in its own pixel format), for scale."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = frame.width, frame.height, frame.format.name, Fraction(1, 25)
    ctx.options = dict(options)
    ctx.open()
    t0 = time.perf_counter()
    for i in range(frames):
        frame.pts = i
        ctx.encode(frame)
    ctx.encode(None)
    return (time.perf_counter() - t0) * 1000 / frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=(1920, 1080), metavar="WxH")
    ap.add_argument("--iters", type=int, default=10, help="frames per timing")
    ap.add_argument("--repeat", type=int, default=3, help="timings per way, interleaved; the median is shown")
    args = ap.parse_args()
    w, h = args.size
    colours = portrait_rgb(w, h)
    yy, xx = np.mgrid[0:h, 0:w]
    matte = np.clip((1.0 - np.hypot(xx / w - 0.5, yy / h - 0.55) / 0.35) * 4 * 255, 0, 255).astype(np.uint8)
    rgba = np.concatenate([colours, matte[..., None]], axis=2)
    tracks = [
        ("--alpha-out .mov", matte, *ALPHA_CODECS[".mov"]),
        ("--alpha-out .webm", matte, *ALPHA_CODECS[".webm"]),
        ("--alpha-out .mkv", matte, *ALPHA_CODECS[".mkv"]),
        ("--alpha-out .mp4", matte, VIDEO_CODECS[".mp4"], "yuv420p", {"preset": "veryfast"}),
        ("--fg-out .mov", rgba, *ALPHA_CODECS[".mov"]),
        ("--fg-out .webm", rgba, *ALPHA_CODECS[".webm"]),
    ]
    print(f"# an editor's track's frame, {w}x{h}, {platform.processor() or platform.machine()}, median of "
          f"{args.repeat} timings of {args.iters} frames")  # fmt: skip
    print("| track | pixel format | before ms | now ms | before / now | encoder ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, px, codec, pix_fmt, options in tracks:
        ways = {"before": lambda px=px, f=pix_fmt: before(px, f), "now": lambda px=px, f=pix_fmt: now(px, f)}
        for make in ways.values():
            make()
        t = interleaved(ways, args.iters, args.repeat)
        b, n = t["before"], t["now"]
        enc = encode_ms(now(px, pix_fmt), codec, options)
        print(f"| {name} | {pix_fmt} | {b:.2f} | {n:.2f} | {b / n:.2f} | {enc:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
