#!/usr/bin/env python3
"""One version of the exported frame graph against another, side by side on ONNX Runtime.

    python tools/bench_onnx.py export /tmp/before --size 1280x720     # (on the old code)
    python tools/bench_onnx.py export /tmp/after --size 1280x720      # (on the new code)
    python tools/bench_onnx.py compare /tmp/before /tmp/after

A change to the frame graph changes the exported function, and its speed is best
judged against the old one in the same run, since shared machines are noisy. ``export``
writes the graphs a CPU run uses (the fast model, I420 in and out, the frame's own
colours: the planes path) for each size and background; ``compare`` times every graph
the two folders share, interleaved, on the same inputs (a shared portrait, or noise
without ../shared), and prints each one's median, the ratio, and how far their outputs
are apart (composite and alpha, in 8-bit levels).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.backends.onnxruntime_backend import export_frame_graph  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.model import resolve_model_weights  # noqa: E402
from p3m_live.pipeline import graph_spec  # noqa: E402
from p3m_live.spec import GRAPH_VERSION, rgb_to_planes  # noqa: E402
from p3m_live.timing import time_calls  # noqa: E402
from p3m_live.video.backgrounds import parse_background  # noqa: E402
from p3m_live.video.frames import Layout  # noqa: E402
from tools._common import portrait_rgb  # noqa: E402

BACKGROUNDS = ("blur", "color", "image", "mix")


def export(folder: Path, sizes: list[tuple[int, int]], backgrounds: list[str]) -> None:
    """The CPU run's graph for each size and background, as ``WxH_background.onnx``."""
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in sizes:
        weights = resolve_model_weights("fast", None, height, width)
        blur = graph_spec(Layout(width, height, "i420", False, "bt601"), parse_background("blur"), model="fast",
                          foreground="frame")  # fmt: skip
        for kind in backgrounds:
            spec = dataclasses.replace(blur, background=kind)
            export_frame_graph(spec, weights, folder / f"{width}x{height}_{kind}.onnx")
    print(f"graph version {GRAPH_VERSION}: {len(sizes) * len(backgrounds)} graphs in {folder}")


def inputs_for(session) -> dict[str, np.ndarray]:
    """Inputs for a session, from its declared shapes: a portrait's I420 frame; over a
    colour, green; an image, the portrait mirrored; "mix", that image at half weight."""
    shapes = {i.name: i.shape for i in session.get_inputs()}
    _, rows, width = shapes["frame"]
    height = rows * 2 // 3
    rgb = portrait_rgb(width, height)
    feed = {"frame": rgb_to_planes(rgb[None])}
    if "background" in shapes:
        bg = shapes["background"]
        image = np.ascontiguousarray(rgb[:, ::-1])
        rgba = np.dstack([image, np.full((height, width), 128, np.uint8)])
        if len(bg) == 2:  # a colour
            feed["background"] = np.array([[0, 177, 64]], np.uint8)
        elif len(bg) == 4:  # RGB or RGBA (the RGB path)
            feed["background"] = (image if bg[-1] == 3 else rgba)[None]
        else:  # I420, or I420 and a weight plane (the planes path)
            feed["background"] = rgb_to_planes((image if bg[1] == rows else rgba)[None])
    if "state_alpha" in shapes:
        feed["state_alpha"] = np.full(shapes["state_alpha"], -1.0, np.float32)
    return feed


def compare(before: Path, after: Path, iters: int, rounds: int) -> None:
    import onnxruntime as ort

    names = sorted(p.name for p in before.glob("*.onnx") if (after / p.name).is_file())
    if not names:
        raise SystemExit(f"{before} and {after} share no .onnx files; make them with 'export'")
    print(f"# {platform.processor() or platform.machine()}, ONNX Runtime {ort.__version__} CPU, "
          f"{iters} calls a timing, median of {rounds} interleaved")  # fmt: skip
    print("| graph | before ms | after ms | after / before | composite: max, mean levels apart | alpha: max, mean |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        sessions = [ort.InferenceSession(str(d / name), providers=["CPUExecutionProvider"]) for d in (before, after)]
        feed = inputs_for(sessions[0])
        calls = [lambda s=s, f=feed: s.run(None, f) for s in sessions]
        ms: list[list[float]] = [[], []]
        for _ in range(rounds):
            for i, call in enumerate(calls):
                ms[i].append(time_calls(call, iters).p50)
        old, new = (call() for call in calls)
        apart = [np.abs(a.astype(np.int16) - b.astype(np.int16)) for a, b in zip(old[:2], new[:2])]
        b_ms, a_ms = statistics.median(ms[0]), statistics.median(ms[1])
        print(f"| {name[:-5]} | {b_ms:.1f} | {a_ms:.1f} | {a_ms / b_ms:.2f} | "
              f"{apart[0].max()}, {apart[0].mean():.3f} | {apart[1].max()}, {apart[1].mean():.3f} |")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="write this code's CPU graphs into a folder")
    ex.add_argument("folder", type=Path)
    ex.add_argument("--size", type=parse_size, action="append", metavar="WxH", help="default 640x360 and 1280x720")
    ex.add_argument("--background", action="append", choices=BACKGROUNDS, help="default: all four")
    cmp = sub.add_parser("compare", help="time the graphs two folders share, side by side")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    cmp.add_argument("--iters", type=int, default=20, help="calls a timing (default 20)")
    cmp.add_argument("--rounds", type=int, default=3, help="interleaved timings of each (default 3)")
    args = ap.parse_args()
    if args.action == "export":
        export(args.folder, args.size or [(640, 360), (1280, 720)], args.background or list(BACKGROUNDS))
    else:
        compare(args.before, args.after, args.iters, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
