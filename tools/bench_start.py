#!/usr/bin/env python3
"""How long ``--start`` takes to reach a part late in an MPEG-TS recording, in one run.

    python tools/bench_start.py --size 1280x720 --seconds 60 --start 55

MPEG-TS cannot be searched by time (joined parts repeat each other's times), so it is
read from the beginning. Makes a recording, then reads the part ``--start`` to
``--start + 1`` s from it, interleaved: decoding every video packet before the start
(what the source did before), and decoding only from the last keyframe a second
before it (p3m_live/video/sources.py, ``_from_keyframe_before``). Wall seconds to the
part's last frame, and how many video packets were decoded.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.video import sources  # noqa: E402
from p3m_live.video.frames import Frame  # noqa: E402
from tests.media import make_clip  # noqa: E402


def read_part(clip: Path, start: float, skip: bool) -> tuple[float, int, int]:
    """(seconds, frames of the part, video packets decoded) for one read of the part."""
    decoded = [0]
    real_decode, real_skip = sources.AVSource._decode, sources._from_keyframe_before

    def counting(self, packet):
        decoded[0] += 1
        return real_decode(self, packet)

    sources.AVSource._decode = counting
    if not skip:
        sources._from_keyframe_before = lambda packets, *_: packets  # decode everything, as before
    try:
        t0 = time.perf_counter()
        with sources.open_source(str(clip), start=start, duration=1.0) as src:
            frames = sum(isinstance(i, Frame) for i in src.items())
        return time.perf_counter() - t0, frames, decoded[0]
    finally:
        sources.AVSource._decode, sources._from_keyframe_before = real_decode, real_skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=(1280, 720), metavar="WxH")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the recording")
    ap.add_argument("--start", type=float, default=55.0)
    ap.add_argument("--gop", type=int, default=50, help="frames between keyframes (25 fps)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    w, h = args.size
    print(f"# --start {args.start:g} --duration 1 in a {args.seconds:g} s {w}x{h} MPEG-TS (25 fps, a keyframe "
          f"every {args.gop} frames), {args.rounds} rounds interleaved, on {platform.machine()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        frames = round(args.seconds * 25)
        clip = make_clip(Path(tmp) / "rec.ts", frames=frames, size=(w, h), audio_rate=48000, gop=args.gop)
        runs: dict[bool, list] = {False: [], True: []}
        for _ in range(args.rounds):
            for skip in (False, True):
                runs[skip].append(read_part(clip, args.start, skip))
    print("| video before the start | seconds to the part's end | frames of the part | packets decoded |")
    print("| --- | ---: | ---: | ---: |")
    median = {}
    for skip, label in ((False, "all decoded (before)"), (True, "from the keyframe before")):
        seconds = sorted(r[0] for r in runs[skip])[len(runs[skip]) // 2]
        median[skip] = seconds
        print(f"| {label} | {seconds:.2f} | {runs[skip][-1][1]} | {runs[skip][-1][2]} |")
    print(f"\nfrom the keyframe / all decoded: {median[True] / median[False]:.2f} of the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
