#!/usr/bin/env python3
"""What FFmpeg's decoder threads cost a live run: frames held back, and decoding time.

    python tools/bench_decode_lag.py --size 1280x720 --size 1920x1080

A live source decodes with slice threads only (p3m_live/video/sources.py); a file gets
frame and slice threads ("AUTO"). Frame threads hold back thread_count - 1 frames
before the first comes out, and as many all along: latency before any of p3m-live's
clocks starts. This encodes a camera-like H.264 stream (x264 zerolatency: no B-frames,
one slice) and decodes it both ways, interleaved: the most frames the decoder held at
once, and the wall time per frame of decoding the whole stream (frame threads decode
faster on many cores; slice threads do nothing for a one-slice stream).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.export_cli import parse_size  # noqa: E402
from tests.media import shapes_frame  # noqa: E402


def camera_stream(path: Path, width: int, height: int, frames: int) -> Path:
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"tune": "zerolatency", "preset": "veryfast"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(shapes_frame(i, width, height), format="rgb24")
            frame.pts = i
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
    return path


def decode(path: Path, thread_type: str) -> tuple[int, float, int]:
    """(most frames held back at once, wall ms per frame for the whole stream with the
    flush, decoder threads)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        held, fed, out = 0, 0, 0
        t0 = time.perf_counter()
        for packet in container.demux(stream):
            frames = len(stream.decode(packet))  # (the last, empty packet flushes the decoder)
            out += frames
            if packet.size:
                fed += 1
                held = max(held, fed - out)
        return held, (time.perf_counter() - t0) * 1000 / out, stream.codec_context.thread_count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH")
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=3, help="decodes per way, interleaved; the median is shown")
    args = ap.parse_args()
    print(f"# H.264 decoding, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, x264 zerolatency")
    print("| frame | threads | frames held back | at 30 fps | wall ms per frame |")
    print("| --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in args.size or [(1280, 720), (1920, 1080)]:
            clip = camera_stream(Path(tmp) / f"{w}x{h}.mp4", w, h, args.frames)
            runs: dict[str, list[tuple[int, float, int]]] = {"AUTO": [], "SLICE": []}
            for _ in range(args.repeat):
                for way in runs:
                    runs[way].append(decode(clip, way))
            for way, results in runs.items():
                held = max(r[0] for r in results)
                ms = statistics.median(r[1] for r in results)
                name = f"frame + slice ({results[0][2]})" if way == "AUTO" else "slice only (live)"
                print(f"| {w}x{h} | {name} | {held} | {held * 1000 / 30:.0f} ms | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
