#!/usr/bin/env python3
"""GPU check: the torch CUDA backend (FP16, channels-last, CUDA graph, slot schedule)
against the FP32 CPU result on 720p and 1080p frames, and its timing. One script, one run.

    python tools/gpu_check.py [--weights W.pth] [--out DIR]
    python tools/gpu_check.py --device cpu --size 128x96 --quick   # a dry run of the script

For each size, with the product's default graph (adaptive temporal filter, guided
upsampling, foreground estimation) over a colour, on eight frames of a moving shape:
  - alpha and composite against the CPU FP32 backend, frame by frame (the state chained);
  - the run-ahead path (``submit``/``flush``, one call in flight, the state on the
    device) against one call at a time on the same device: it must be identical;
  - batch-1 latency with copies, the CUDA graph's replay alone (CUDA events), and the
    offline throughput at batch 4 through the run-ahead path;
  - the same graph with the frame's own colours, which composites on the YUV planes;
  - the "mix" graph a live run uses for every background (an image over the blur);
  - the motion-compensated temporal filter (--temporal motion);
  - the graph with --fg-out's colours as a fourth output: what they add, and how far
    they are from the CPU FP32 graph's.
Each check is caught on its own, so one failure still leaves the others' results.
Prints a table and writes gpu_check.json and gpu_check.md to --out (default $OUT or
the current folder) after every size. Needs PyTorch with CUDA; no PyAV, no TensorRT.
``--device cpu`` runs the same script on the CPU at small sizes (a dry run of the
script itself; replay timing is then skipped). Without --weights a random checkpoint
is used (speed does not depend on the values; the FP16-vs-FP32 comparison is
stricter with random weights than with trained ones, whose logits rarely tie).
Target on an H100/H200: the whole frame graph in <= 4 ms per 1080p frame at batch 1,
model short side 512.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p3m_live.backends.torch_backend import TorchBackend  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.graph import GraphSpec, frame_shape  # noqa: E402
from p3m_live.timing import Timing, time_calls  # noqa: E402
from tools._common import random_weights  # noqa: E402

SIZES = [(1280, 720), (1920, 1080)]
GREEN = (0, 177, 64)
FRAMES = 8


def synthetic_frame(h: int, w: int, t: int = 0) -> np.ndarray:
    """A smooth synthetic I420 frame: a bright ellipse, moving with ``t``, on a gradient."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx = w / 2 + t * w / 80
    luma = 40 + 120 * (xx / w) + 80 * (((yy - h / 2) / (h / 3)) ** 2 + ((xx - cx) / (w / 5)) ** 2 < 1)
    frame = np.zeros(frame_shape("i420", 1, h, w), np.uint8)
    frame[0, :h] = np.clip(luma, 0, 255)
    frame[0, h:] = 128
    return frame


def _levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int))


def captured(backend: TorchBackend) -> bool:
    """Whether the backend runs a captured CUDA graph (a failed capture falls back to
    running without one, with a warning: then there is no replay to time)."""
    return backend._cuda is not None and backend._cuda.cuda_graph is not None


def replay_time(backend: TorchBackend, n: int = 200) -> Timing:
    """Replay the captured graph alone, timed with CUDA events (no host copies)."""
    runner = backend._cuda
    assert runner is not None and runner.cuda_graph is not None
    stream = runner.pipe.run_stream  # the compute stream of the shared slot schedule
    ms = []
    for _ in range(n):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(stream):
            start.record(stream)
            runner.cuda_graph.replay()
            end.record(stream)
        end.synchronize()
        ms.append(start.elapsed_time(end))
    return Timing.of(ms)


def check_size(w: int, h: int, weights: Path, device: str, row: dict, calls: int = 100, batches: int = 40) -> None:
    """Fill ``row`` with the checks for one frame size; each part is caught on its own."""
    spec = GraphSpec(h, w, "i420", "i420", background="color")
    row.update(frame=f"{w}x{h}", model="x".join(map(str, spec.model_hw[::-1])), errors=[])
    frames = [synthetic_frame(h, w, t) for t in range(FRAMES)]

    def part(name, fn):
        try:
            fn()
        except Exception:  # noqa: BLE001 (a report, not a product path)
            row["errors"].append(f"{name}: {traceback.format_exc(limit=4)}")

    with TorchBackend(spec, weights, device="cpu") as cpu:
        cpu.set_background(GREEN)
        ref = [cpu.process(f) for f in frames]
    with TorchBackend(spec, weights, device=device) as dev:
        dev.set_background(GREEN)
        row["cuda_graph_captured"] = captured(dev) if device.startswith("cuda") else "-"

        def accuracy():
            got = [dev.process(f) for f in frames]
            da = np.stack([_levels(a, ra) for (_, a), (_, ra) in zip(got, ref)])
            dc = np.stack([_levels(c, rc) for (c, _), (rc, _) in zip(got, ref)])
            row.update(
                alpha_mean_abs_levels=float(da.mean()),
                alpha_p99_levels=float(np.percentile(da, 99)),
                alpha_frac_over_4_levels=float((da > 4).mean()),
                composite_mean_abs_levels=float(dc.mean()),
            )
            dev.reset()
            ahead = [r for f in frames for r in dev.submit(f)] + dev.flush()
            row["run_ahead_identical"] = len(ahead) == FRAMES and all(
                np.array_equal(a, b) and np.array_equal(c, d) for (c, a), (d, b) in zip(ahead, got)
            )

        def latency():
            dev.reset()
            t = time_calls(lambda: dev.process(frames[0]), calls, warmup=min(10, calls))
            row.update(end_to_end_ms_p50=t.p50, end_to_end_ms_p95=t.p95)
            if captured(dev):
                r = replay_time(dev, 2 * calls)
                row.update(graph_replay_ms_p50=r.p50, graph_replay_ms_p95=r.p95)

        part("accuracy", accuracy)
        part("latency", latency)

    def throughput():
        with TorchBackend(spec.with_(batch=4), weights, device=device) as b4:
            b4.set_background(GREEN)
            batch = np.concatenate(frames[:4])

            def many_batches():
                for _ in range(batches):
                    b4.submit(batch)
                b4.flush()

            t = time_calls(many_batches, 3, warmup=1)
            row["batch4_ms_per_frame"] = t.p50 / (4 * batches)

    part("throughput", throughput)

    def variant(name: str, variant_spec: GraphSpec, check=None) -> None:
        """Batch 1 with copies and the replay alone, for another graph over the same colour."""
        with TorchBackend(variant_spec, weights, device=device) as b:
            b.set_background(GREEN)
            if check is not None:
                check(b)
            t = time_calls(lambda: b.process(frames[0]), calls, warmup=min(10, calls))
            row[f"{name}_end_to_end_ms_p50"] = t.p50
            if captured(b):
                row[f"{name}_replay_ms_p50"] = replay_time(b, 2 * calls).p50

    def on_planes(b: TorchBackend) -> None:
        if not b.graph.planar:
            raise AssertionError("a frame-colours I420 graph should work on the planes")

    # The frame's own colours instead of the estimate: the graph composites on the YUV planes
    # (the CPU default), to see what that saves on a GPU.
    part("planes", lambda: variant("planes", spec.with_(foreground="frame"), on_planes))
    # What a live run on a GPU runs: one graph for every background (the image weighted over a
    # blur of the frame; a colour is a flat image).
    part("mix", lambda: variant("mix", spec.with_(background="mix")))
    # The motion-compensated temporal filter (--temporal motion): what its block matching adds.
    part("motion", lambda: variant("motion", spec.with_(temporal="motion")))

    def fg_track() -> None:
        """--fg-out's colours, the graph's fourth output (FrameGraph.foreground_track): what
        they add on the device, and how far they are from the CPU FP32 graph's."""
        track_spec = spec.with_(foreground_track=True)
        with TorchBackend(track_spec, weights, device="cpu") as c:
            c.set_background(GREEN)
            want = c.process(frames[0])[2]

        def against_cpu(b: TorchBackend) -> None:
            row["fg_track_mean_abs_levels"] = float(_levels(b.process(frames[0])[2], want).mean())
            b.reset()

        variant("fg_track", track_spec, against_cpu)

    part("fg track", fg_track)


def table(results: dict) -> str:
    def f(r, k, fmt=".2f"):
        return format(r[k], fmt) if k in r else "-"

    lines = [
        f"# torch backend on {results['card']} (torch {results['torch']}), default frame graph over a colour",
        "| frame | model | CUDA graph | replay p50 ms | replay p95 ms | batch 1 with copies p50 ms | batch 4 ms/frame "
        "| alpha mean abs vs CPU FP32 (levels) | alpha p99 | alpha > 4 levels | run-ahead identical "
        "| frame colours on planes: replay p50 ms | with copies p50 ms "
        "| live mix graph: replay p50 ms | with copies p50 ms "
        "| --temporal motion: replay p50 ms | with copies p50 ms "
        "| with --fg-out's colours: replay p50 ms | with copies p50 ms | colours mean abs vs CPU FP32 (levels) |",
        "| --- | --- | --- " + "| ---: " * 7 + "| --- " + "| ---: " * 9 + "|",
    ]
    for r in results["sizes"]:
        over = f"{100 * r['alpha_frac_over_4_levels']:.2f}%" if "alpha_frac_over_4_levels" in r else "-"
        lines.append(
            f"| {r['frame']} | {r['model']} | {r.get('cuda_graph_captured', '-')} | "
            f"{f(r, 'graph_replay_ms_p50')} | {f(r, 'graph_replay_ms_p95')} | "
            f"{f(r, 'end_to_end_ms_p50')} | {f(r, 'batch4_ms_per_frame')} | {f(r, 'alpha_mean_abs_levels')} | "
            f"{f(r, 'alpha_p99_levels', '.0f')} | {over} | {r.get('run_ahead_identical', '-')} | "
            f"{f(r, 'planes_replay_ms_p50')} | {f(r, 'planes_end_to_end_ms_p50')} | "
            f"{f(r, 'mix_replay_ms_p50')} | {f(r, 'mix_end_to_end_ms_p50')} | "
            f"{f(r, 'motion_replay_ms_p50')} | {f(r, 'motion_end_to_end_ms_p50')} | "
            f"{f(r, 'fg_track_replay_ms_p50')} | {f(r, 'fg_track_end_to_end_ms_p50')} | "
            f"{f(r, 'fg_track_mean_abs_levels')} |"
        )
    for r in results["sizes"]:
        lines += [f"\n{r['frame']} error: {e}" for e in r.get("errors", [])]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    ap.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a dry run of this script)")
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH", help="default 1280x720 and 1920x1080")
    ap.add_argument("--quick", action="store_true", help="few timed calls (for the dry run)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: PyTorch sees no CUDA GPU", file=sys.stderr)
        return 2
    on_gpu = args.device.startswith("cuda")
    card = torch.cuda.get_device_name(0) if on_gpu else "the CPU (a dry run: FP32, no CUDA graph)"
    results: dict = {"card": card, "torch": torch.__version__, "sizes": []}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or random_weights(Path(tmp))
        for w, h in args.size or SIZES:
            row: dict = {}
            results["sizes"].append(row)
            try:
                check_size(w, h, weights, args.device, row, *((3, 2) if args.quick else ()))
            except Exception:  # noqa: BLE001 (keep what the other sizes give)
                row.setdefault("errors", []).append(traceback.format_exc(limit=6))
            (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
            (args.out / "gpu_check.md").write_text(table(results) + "\n")
    print(table(results))
    return 1 if any(r.get("errors") for r in results["sizes"]) else 0


if __name__ == "__main__":
    sys.exit(main())
