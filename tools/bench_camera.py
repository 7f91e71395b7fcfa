#!/usr/bin/env python3
"""A webcam's frames in a live run: as RGB (before) and as BT.601 limited-range I420 (now).

    python tools/bench_camera.py --camera yuyv422:640x480 --camera yuvj422p:1280x720
    python tools/bench_camera.py --matrix 1280x720 --matrix 1920x1080

A webcam sends 4:2:2: raw YUYV, or MJPEG that decodes to full-range yuvj422p. A live run
used to turn such frames into RGB, run the frame graph's RGB path and composite into
full-range I420, which a virtual camera's readers take as limited range. It now turns
them into BT.601 limited-range I420 as they are decoded (swscale), so the graph works
on the planes and the virtual camera gets what it expects. This times both, interleaved
in one run, for each camera format: the conversion of a decoded frame (to_planes) plus
the frame graph on ONNX Runtime (the fast model, `p3m-live weights fetch fast`; blurred
room, the live default, with the frame's own colours, the CPU default), per frame, median.

With ``--matrix``: an HD stream's BT.709 I420 made BT.601 for the virtual camera, on the
source thread, by swscale (its accurate mode, as live runs made it before, and its fast
mode) and by ``frames.convert_matrix`` (now), interleaved, per frame, median.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import av
from av.video.reformatter import ColorRange, Colorspace, Interpolation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.backends import open_backend  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.model import resolve_model_weights  # noqa: E402
from p3m_live.pipeline import graph_spec  # noqa: E402
from p3m_live.video.backgrounds import parse_background  # noqa: E402
from p3m_live.video.frames import COLORSPACES, RANGES, Layout, convert_matrix, layout_of, to_planes  # noqa: E402
from tools._common import interleaved, portrait_rgb  # noqa: E402


def camera_frame(fmt: str, width: int, height: int) -> av.VideoFrame:
    """A portrait (or, without ../shared, noise) as a camera's decoder gives it: BT.601, full
    range for yuvj formats (MJPEG), tagged as FFmpeg's MJPEG decoder tags it."""
    full = fmt.startswith("yuvj")
    frame = av.VideoFrame.from_ndarray(portrait_rgb(width, height), format="rgb24").reformat(
        format=fmt, dst_colorspace=Colorspace.ITU601, dst_color_range=ColorRange.JPEG if full else ColorRange.MPEG
    )
    frame.colorspace, frame.color_range = 5, 2 if full else 1
    return frame


# BT.709 to BT.601 in limited range, by swscale; its accurate mode is how live runs made it before.
CHANGE = {
    "src_colorspace": COLORSPACES["bt709"],
    "dst_colorspace": COLORSPACES["bt601"],
    "src_color_range": RANGES[False],
    "dst_color_range": RANGES[False],
}
ACCURATE = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def matrix_table(sizes: list[tuple[int, int]], iters: int, repeat: int) -> None:
    """BT.709 I420 to BT.601: swscale's two modes against convert_matrix."""
    print("| frame | swscale accurate ms | swscale fast ms | convert_matrix ms | accurate / convert_matrix |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for w, h in sizes:
        frame = av.VideoFrame.from_ndarray(portrait_rgb(w, h), format="rgb24").reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )
        ways = {
            "accurate": lambda f=frame: f.reformat(format="yuv420p", interpolation=ACCURATE, **CHANGE).to_ndarray(),
            "fast": lambda f=frame: f.reformat(format="yuv420p", **CHANGE).to_ndarray(),
            "ours": lambda f=frame: convert_matrix(f.to_ndarray(), "i420", "bt709", "bt601"),
        }
        for call in ways.values():
            call()
        t = interleaved(ways, iters, repeat)
        ratio = t["accurate"] / t["ours"]
        print(f"| {w}x{h} | {t['accurate']:.2f} | {t['fast']:.2f} | {t['ours']:.2f} | {ratio:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--camera", action="append", metavar="FORMAT:WxH", help="default yuyv422:640x480, yuvj422p:1280x720"
    )
    ap.add_argument("--matrix", action="append", metavar="WxH", help="time the change of matrix at these sizes instead")
    ap.add_argument("--iters", type=int, default=10, help="frames per timing")
    ap.add_argument("--repeat", type=int, default=3, help="timings per way, interleaved; the median is shown")
    args = ap.parse_args()
    if args.matrix:
        print(f"# BT.709 to BT.601, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
        matrix_table([parse_size(size) for size in args.matrix], args.iters, args.repeat)
        return 0
    cameras = [
        (c.split(":")[0], parse_size(c.split(":")[1])) for c in args.camera or ["yuyv422:640x480", "yuvj422p:1280x720"]
    ]
    print(
        f"# live frames, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        "fast model, ONNX Runtime, blurred room"
    )
    print("| camera | before: RGB path ms | now: I420 planes ms | before / now |")
    print("| --- | ---: | ---: | ---: |")
    for fmt, (w, h) in cameras:
        frame = camera_frame(fmt, w, h)
        now = layout_of(frame, live=True)
        before = Layout(w, h, "rgb", True, now.matrix)  # what a live run made of such frames
        weights = resolve_model_weights("fast", None, h, w)
        ways = {}
        for name, lay in (("before", before), ("now", now)):
            backend = open_backend(
                "onnxruntime", graph_spec(lay, parse_background("blur"), model="fast", foreground="frame"), weights
            )

            def call(lay=lay, backend=backend, frame=frame):
                backend.process(to_planes(frame, lay)[None])

            call()
            ways[name] = call
        t = interleaved(ways, args.iters, args.repeat)
        b, n = t["before"], t["now"]
        print(f"| {fmt} {w}x{h} | {b:.1f} | {n:.1f} | {b / n:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
