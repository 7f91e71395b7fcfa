#!/usr/bin/env python3
"""A long live run on a synthetic real-time source: memory and latency over time.

    python tools/soak_live.py --minutes 10 --size 160x120

Runs the live pipeline (capture thread, matting thread, fail-closed output) on
FFmpeg's lavfi test source paced in real time, with the fast model on the CPU
(or P3M-Net with --model p3m), into an output that keeps nothing. Samples the
process's resident memory and the live status line every second and prints one
row a minute: memory, output rate, drops, latency p50/p95. Growth or drift shows
as a trend down the table. ``--record FILE`` also records the composite through the
live file output (on its own thread), with a lavfi tone in real time as the
microphone, and says how far sound and picture are apart at the end of the file.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.backends import open_backend  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.live import run_live  # noqa: E402
from p3m_live.model import resolve_model_weights  # noqa: E402
from p3m_live.pipeline import Matting, graph_spec  # noqa: E402
from p3m_live.spec import FOREGROUNDS, foreground_for  # noqa: E402
from p3m_live.video.backgrounds import parse_background  # noqa: E402
from p3m_live.video.devices import SoundSource  # noqa: E402
from p3m_live.video.relay import Relay  # noqa: E402
from p3m_live.video.sinks import FileSink, Sink  # noqa: E402
from p3m_live.video.sources import AVSource  # noqa: E402

STATUS = re.compile(r"out ([\d.]+) fps, dropped (\d+), latency p50 (\d+) ms, p95 (\d+) ms")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


class Discard(Sink):
    def write(self, frame, composite, alpha) -> None:
        pass


class Samples(logging.Handler):
    """Keeps (seconds, rss, out fps, dropped, p50, p95) from each status line."""

    def __init__(self) -> None:
        super().__init__()
        self.t0 = time.monotonic()
        self.rows: list[tuple[float, float, float, int, int, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = STATUS.search(record.getMessage())
        if m:
            fps, dropped, p50, p95 = float(m[1]), int(m[2]), int(m[3]), int(m[4])
            self.rows.append((time.monotonic() - self.t0, rss_mib(), fps, dropped, p50, p95))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", type=parse_size, default=(160, 120), metavar="WxH")
    ap.add_argument("--model", choices=["fast", "p3m"], default="fast")
    ap.add_argument("--weights")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--background", default="blur", help="what p3m-live's --background takes (default blur)")
    ap.add_argument(
        "--foreground", choices=FOREGROUNDS, default="auto", help="default auto: what a live run on a CPU takes"
    )
    ap.add_argument("--record", type=Path, metavar="FILE", help="also record it, with a test tone as the microphone")
    args = ap.parse_args()
    w, h = args.size
    src = AVSource(f"testsrc2=size={w}x{h}:rate=30,realtime", format="lavfi", live=True)
    lay = src.layout
    weights = resolve_model_weights(args.model, args.weights, lay.height, lay.width)

    background = parse_background(args.background)
    foreground = foreground_for(args.foreground, False, background.graph_kind)

    def opener(choice, batch):
        spec = graph_spec(lay, choice, batch, model=args.model, foreground=foreground)
        return open_backend(args.backend, spec, weights, paced=True)

    matting = Matting(lay, [background], opener)
    samples = Samples()
    log = logging.getLogger("p3m_live")
    log.addHandler(samples)
    log.setLevel(logging.INFO)
    threading.excepthook = lambda a: print(f"thread failed: {a.exc_value!r}", file=sys.stderr)
    sinks: list[Sink] = [Discard()]
    mic = None
    if args.record:
        mic = SoundSource("sine=frequency=440:sample_rate=48000,arealtime", "lavfi", "a test tone")
        record = FileSink(args.record, lay, rate=src.rate, time_base=src.time_base, audio_streams=mic.audio_streams)
        sinks.append(Relay(record, args.record.name))
    summary = run_live(src, matting, sinks, duration=args.minutes * 60, microphone=mic)
    for sink in sinks:
        sink.close()
    if mic is not None:
        mic.close()
    print(
        f"# live soak: {args.minutes:g} min, {w}x{h} lavfi testsrc2 at 30 fps (realtime), {args.model} model, "
        f"{args.backend} on the CPU, background {background}, foreground: {foreground}"
    )
    print("| minute | RSS MiB | out fps | dropped (total) | latency p50 ms | latency p95 ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    minutes = int(args.minutes + 0.999)
    for m in range(minutes):
        rows = [r for r in samples.rows if m * 60 <= r[0] < (m + 1) * 60]
        if not rows:
            continue
        p50 = sorted(r[4] for r in rows)[len(rows) // 2]
        print(
            f"| {m + 1} | {rows[-1][1]:.0f} | {sum(r[2] for r in rows) / len(rows):.1f} | {rows[-1][3]} | {p50} "
            f"| {max(r[5] for r in rows)} |"
        )
    print()
    print(summary.line())
    if args.record:
        print(recording_line(args.record))
    return 0


def recording_line(path: Path) -> str:
    """How the recording's picture and sound line up: frames, spans, and the sound's end
    against the last frame's."""
    import av

    with av.open(str(path)) as c:
        video = [f.time for f in c.decode(video=0)]
    with av.open(str(path)) as c:  # (samples counted: Matroska rounds packet durations to the millisecond)
        sound = [(f.time, f.samples / f.sample_rate) for f in c.decode(audio=0)]
    end = sound[-1][0] + sound[-1][1]
    return (
        f"recording: {len(video)} frames from {video[0]:.2f} to {video[-1]:.2f} s; sound from {sound[0][0]:.2f} "
        f"to {end:.2f} s, {sum(d for _, d in sound):.2f} s of it; the sound ends {1000 * (end - video[-1]):.0f} ms "
        "after the last frame"
    )


if __name__ == "__main__":
    sys.exit(main())
