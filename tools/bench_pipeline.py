#!/usr/bin/env python3
"""End-to-end offline speed: the frame graph alone, a serial converter, and the overlapped pipeline.

    python tools/bench_pipeline.py --size 640x360 --frames 48 --model-size 128

Makes a clip with moving shapes and a tone (PyAV, libx264 + AAC), then in one run:
  model only  - the matting stage on frames already decoded (the ceiling);
  serial      - decode, matte, encode one after another (how Robust Video Matting's
                converter works);
  overlapped  - p3m-live's offline pipeline (threads and bounded queues).
With --simulate-device-ms the network is replaced by a wait that uses no CPU, as a
GPU backend's wait on its stream does: this shows what the overlap buys once the
model is off the CPU (on a CPU-only machine the model already uses every core).
The "of model" column is end-to-end fps over model-only fps: 100% means decode and
encode cost nothing. Without --weights a random checkpoint in the official format is
used (speed does not depend on the values).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from p3m_live.backends import open_backend  # noqa: E402
from p3m_live.backends.base import Backend  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.graph import GraphSpec  # noqa: E402
from p3m_live.model import resolve_model_weights  # noqa: E402
from p3m_live.pipeline import Matting, graph_spec, run_offline  # noqa: E402
from p3m_live.spec import FOREGROUNDS, foreground_for  # noqa: E402
from p3m_live.video.backgrounds import parse_background  # noqa: E402
from p3m_live.video.frames import Frame  # noqa: E402
from p3m_live.video.sinks import FileSink  # noqa: E402
from p3m_live.video.sources import open_source  # noqa: E402
from tests.media import make_clip  # noqa: E402
from tools._common import random_weights  # noqa: E402


class DeviceTimeBackend(Backend):
    """Simulates an accelerator: waits a fixed time per call without using the CPU, the way
    a GPU backend waits on its stream, and returns the frame as its own composite."""

    name = "simulated-device"

    def __init__(self, spec: GraphSpec, seconds: float) -> None:
        super().__init__(spec)
        self.seconds = seconds

    def _run(self, inputs):
        time.sleep(self.seconds)
        frame = inputs["frame"]
        alpha = np.zeros(frame.shape[:1] + (self.spec.height, self.spec.width), np.uint8)
        return {"composite": frame, "alpha": alpha, "state_alpha_out": inputs["state_alpha"]}


def _matting(src, weights, args) -> Matting:
    lay = src.layout

    def opener(choice, batch):
        foreground = foreground_for(args.foreground, args.device != "cpu", choice.graph_kind)
        spec = graph_spec(lay, choice, batch, model_short_side=args.model_size, model=args.model, foreground=foreground)
        if args.simulate_device_ms:
            return DeviceTimeBackend(spec, args.simulate_device_ms / 1000 * batch)
        w = resolve_model_weights(args.model, weights, lay.height, lay.width) if args.model == "fast" else weights
        return open_backend(args.backend, spec, w, device=args.device)

    return Matting(lay, [parse_background(args.background)], opener, args.batch)


def _sink(src, path: Path) -> FileSink:
    return FileSink(path, src.layout, rate=src.rate, time_base=src.time_base, audio_streams=src.audio_streams)


def model_only(clip: Path, weights: Path, args) -> float:
    with open_source(str(clip)) as src:
        m = _matting(src, weights, args)
        frames = [i for i in src.items() if isinstance(i, Frame)]
        m.process(frames[: args.batch])  # warm-up
        t0 = time.perf_counter()
        for i in range(0, len(frames), args.batch):
            m.process(frames[i : i + args.batch])
        return len(frames) / (time.perf_counter() - t0)


def serial(clip: Path, weights: Path, out: Path, args) -> float:
    """Decode a batch, matte it, encode it, one after another."""
    with open_source(str(clip)) as src:
        m = _matting(src, weights, args)
        sink = _sink(src, out)
        n, t0, pending = 0, time.perf_counter(), []

        def matte_and_write() -> None:
            composites, alphas = m.process(pending)
            for frame, c, a in zip(pending, composites, alphas):
                sink.write(frame, c, a)
            pending.clear()

        for item in src.items():
            if isinstance(item, Frame):
                pending.append(item)
                n += 1
                if len(pending) == args.batch:
                    matte_and_write()
            else:
                sink.write_packet(item)
        if pending:
            matte_and_write()
        sink.close()
        return n / (time.perf_counter() - t0)


def overlapped(clip: Path, weights: Path, out: Path, args):
    with open_source(str(clip)) as src:
        m = _matting(src, weights, args)
        sink = _sink(src, out)
        summary = run_offline(src, m, [sink])
        sink.close()
        return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights")
    ap.add_argument("--size", type=parse_size, default=(640, 360), metavar="WxH")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--model", choices=["p3m", "fast"], default="p3m")
    ap.add_argument("--model-size", type=int, default=128, help="P3M-Net's input short side")
    ap.add_argument("--foreground", choices=FOREGROUNDS, default="auto", help="as p3m-live's option")
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--background", default="blur")
    ap.add_argument(
        "--simulate-device-ms",
        type=float,
        default=0.0,
        help="replace the network by an accelerator that takes this long per frame (no CPU use)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per mode, interleaved; the median is shown")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = Path(args.weights) if args.weights else (None if args.model == "fast" else random_weights(tmp))
        clip = make_clip(tmp / "clip.mp4", frames=args.frames, size=args.size)
        w, h = args.size
        runs: dict[str, list[float]] = {"model only": [], "serial": [], "overlapped": []}
        for _ in range(args.repeat):  # interleaved, so that a noisy neighbour hits every mode alike
            runs["model only"].append(model_only(clip, weights, args))
            runs["serial"].append(serial(clip, weights, tmp / "serial.mp4", args))
            summary = overlapped(clip, weights, tmp / "overlapped.mp4", args)
            runs["overlapped"].append(summary.fps)
    what = (
        f"simulated device {args.simulate_device_ms:g} ms/frame"
        if args.simulate_device_ms
        else (f"{args.backend} on {args.device}")
    )
    print(
        f"# offline pipeline, {platform.processor() or platform.machine()}, {what}, "
        f"{w}x{h}, {args.frames} frames, "
        f"{'fast model' if args.model == 'fast' else f'P3M-Net short side {args.model_size}'}, batch {args.batch}, "
        f"foreground {args.foreground}, "
        f"x264 veryfast + AAC copy"
    )
    print("| mode | fps (median) | runs | of model |")
    print("| --- | ---: | --- | ---: |")
    ceiling = statistics.median(runs["model only"])
    for name, values in runs.items():
        fps = statistics.median(values)
        print(f"| {name} | {fps:.1f} | {' '.join(f'{v:.1f}' for v in values)} | {fps / ceiling:.0%} |")
    print()
    print("last overlapped run:")
    print(summary.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
