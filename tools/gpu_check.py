#!/usr/bin/env python3
"""GPU check: the torch CUDA backend (FP16, channels-last, CUDA graph) against the FP32
CPU result on 720p and 1080p frames, and its timing. One script, one run.

    python tools/gpu_check.py [--weights W.pth] [--out DIR]

Prints a table and writes gpu_check.json and gpu_check.md to --out (default $OUT or
the current folder). Needs PyTorch with CUDA; no PyAV, no TensorRT. Without
--weights a random checkpoint is used (speed does not depend on the values; the
FP16-vs-FP32 comparison is stricter with random weights than with trained ones,
whose logits rarely tie). Target on an H100/H200: the whole frame graph in <= 4 ms
per 1080p frame at batch 1, model short side 512.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p3m_live.backends.torch_backend import TorchBackend  # noqa: E402
from p3m_live.graph import GraphSpec, frame_shape  # noqa: E402
from p3m_live.timing import Timing, time_calls  # noqa: E402
from tools._common import random_weights  # noqa: E402

SIZES = [(1280, 720), (1920, 1080)]


def synthetic_frame(h: int, w: int) -> np.ndarray:
    """A smooth synthetic I420 frame (a bright ellipse on a gradient): stable, not noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    luma = 40 + 120 * (xx / w) + 80 * (((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 5)) ** 2 < 1)
    frame = np.zeros(frame_shape("i420", 1, h, w), np.uint8)
    frame[0, :h] = np.clip(luma, 0, 255)
    frame[0, h:] = 128
    return frame


def device_time(backend: TorchBackend, n: int = 200) -> Timing:
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: PyTorch sees no CUDA GPU", file=sys.stderr)
        return 2
    card = torch.cuda.get_device_name(0)
    results = {"card": card, "torch": torch.__version__, "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or random_weights(Path(tmp))
        for w, h in SIZES:
            spec = GraphSpec(h, w, "i420", "i420", background="color", temporal="ema", upsampler="guided")
            frame = synthetic_frame(h, w)
            with TorchBackend(spec, weights, device="cpu") as cpu:
                cpu.set_background((0, 177, 64))
                ref_comp, ref_alpha = cpu.process(frame)
            with TorchBackend(spec, weights, device="cuda") as gpu:
                gpu.set_background((0, 177, 64))
                comp, alpha = gpu.process(frame)
                da = np.abs(alpha.astype(int) - ref_alpha.astype(int))
                dc = np.abs(comp.astype(int) - ref_comp.astype(int))
                gpu.reset()
                end_to_end = time_calls(lambda gpu=gpu, frame=frame: gpu.process(frame), 100, warmup=10)
                dev = device_time(gpu)
            row = {
                "frame": f"{w}x{h}",
                "model": "x".join(map(str, spec.model_hw[::-1])),
                "alpha_mean_abs_levels": float(da.mean()),
                "alpha_p99_levels": float(np.percentile(da, 99)),
                "alpha_frac_over_4_levels": float((da > 4).mean()),
                "composite_mean_abs_levels": float(dc.mean()),
                "graph_replay_ms_p50": dev.p50,
                "graph_replay_ms_p95": dev.p95,
                "end_to_end_ms_p50": end_to_end.p50,
                "end_to_end_ms_p95": end_to_end.p95,
            }
            results["sizes"].append(row)
    lines = [
        f"# torch CUDA backend on {card} (torch {torch.__version__}), FP16 channels-last, CUDA graph, batch 1",
        "| frame | model | replay p50 ms | replay p95 ms | with copies p50 ms | alpha mean abs vs CPU FP32 (levels) "
        "| alpha p99 | alpha > 4 levels |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["sizes"]:
        lines.append(
            f"| {r['frame']} | {r['model']} | {r['graph_replay_ms_p50']:.2f} | {r['graph_replay_ms_p95']:.2f} | "
            f"{r['end_to_end_ms_p50']:.2f} | {r['alpha_mean_abs_levels']:.2f} | {r['alpha_p99_levels']:.0f} | "
            f"{100 * r['alpha_frac_over_4_levels']:.2f}% |"
        )
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    (out / "gpu_check.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
