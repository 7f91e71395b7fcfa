#!/usr/bin/env python3
"""What a video background costs the CPU when it is faster than the frames, in one run.

    python tools/bench_background.py --size 1920x1080 --background-fps 60 --fps 30

Makes a clip at the background's rate, then plays it behind frames at ``--fps``
(the frames' clock, as a run asks for it; no matting), twice, interleaved: making
every background frame (what the feed did before) and making only the frames the
frames' clock shows (p3m_live/video/backgrounds.py). Decoding is the same in both.
CPU seconds of the whole process per second of output, and how many background
frames were made, ahead on the feed's thread and late on the matting thread.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.video.backgrounds import BackgroundFeed, parse_background  # noqa: E402
from tests.media import make_clip  # noqa: E402


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def play(clip: Path, width: int, height: int, fps: float, seconds: float, every_frame: bool) -> tuple[float, dict]:
    """CPU seconds per second of output for one play of ``clip`` behind ``fps`` frames."""
    feed = BackgroundFeed(parse_background(str(clip)), width, height, planes=("bt709", False))
    if every_frame:
        feed._shown = lambda begin, end: True  # what the feed did before: make every frame
    t0 = cpu_seconds()
    for i in range(round(seconds * fps)):
        feed.value([i / fps])
    used = cpu_seconds() - t0
    feed.close()
    return used / seconds, {"decoded": feed.decoded, "ahead": feed.made_ahead, "late": feed.made_late}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=(1920, 1080), metavar="WxH")
    ap.add_argument("--background-fps", type=int, default=60)
    ap.add_argument("--fps", type=float, default=30.0, help="the frames' rate")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    w, h = args.size
    print(f"# {w}x{h} background at {args.background_fps} fps behind {args.fps:g} fps frames, {args.seconds:g} s, "
          f"{args.rounds} rounds interleaved, on {platform.processor() or platform.machine()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        frames = round(args.background_fps * 2)  # loops every 2 s
        clip = make_clip(Path(tmp) / "bg.mp4", frames=frames, size=(w, h), rate=args.background_fps, audio_rate=None)
        results: dict[bool, list] = {True: [], False: []}
        for _ in range(args.rounds):
            for every in (True, False):
                results[every].append(play(clip, w, h, args.fps, args.seconds, every))
    print("| background frames made | CPU s per s of output | decoded | made ahead | made late |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for every, label in ((True, "every one (before)"), (False, "those shown")):
        runs = results[every]
        cpu = sorted(r[0] for r in runs)[len(runs) // 2]
        counts = runs[-1][1]
        print(f"| {label} | {cpu:.2f} | {counts['decoded']} | {counts['ahead']} | {counts['late']} |")
    before = sorted(r[0] for r in results[True])[len(results[True]) // 2]
    after = sorted(r[0] for r in results[False])[len(results[False]) // 2]
    print(f"\nthose shown / every one: {after / before:.2f} of the CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
