#!/usr/bin/env python3
"""Compositing on the YUV planes against the RGB path: the whole frame graph, side by side.

    python tools/bench_planes.py --size 1280x720 --size 1920x1080

For I420 in and out with the frame's own colours (the CPU default), the frame graph
composites on the planes and never makes full-resolution RGB. This times both
variants of the same graph in one run, interleaved, on the torch module and on
ONNX Runtime (each variant exported), and prints the ratio. The fast model by
default (`p3m-live weights fetch fast`); `--model p3m` uses a random checkpoint.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p3m_live.export import export_onnx  # noqa: E402
from p3m_live.export_cli import parse_size  # noqa: E402
from p3m_live.graph import FrameGraph, GraphSpec  # noqa: E402
from p3m_live.model import load_network, resolve_model_weights  # noqa: E402
from p3m_live.spec import rgb_to_planes  # noqa: E402
from p3m_live.timing import time_calls  # noqa: E402
from tools._common import random_weights  # noqa: E402

BACKGROUNDS = ("blur", "color", "image")


def runners(graph: FrameGraph, inputs: dict[str, np.ndarray], folder: Path, tag: str) -> dict[str, object]:
    """A call of the torch module and of ONNX Runtime on its export, on ``inputs``."""
    import onnxruntime as ort

    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}

    def torch_call():
        with torch.inference_mode():
            return graph(*tensors.values())

    path = folder / f"{tag}.onnx"
    example = tuple(graph.example_inputs().values())
    export_onnx(graph, example, path, graph.input_names, graph.output_names)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    feed = {k: v for k, v in inputs.items() if k in wanted}
    return {"torch": torch_call, "onnxruntime": lambda: session.run(None, feed)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH")
    ap.add_argument("--model", choices=["p3m", "fast"], default="fast")
    ap.add_argument("--model-size", type=int, default=512, help="P3M-Net's input short side")
    ap.add_argument("--background", action="append", choices=BACKGROUNDS)
    ap.add_argument("--iters", type=int, default=5, help="calls per timing")
    ap.add_argument("--repeat", type=int, default=3, help="timings per variant, interleaved; the median is shown")
    args = ap.parse_args()
    sizes = args.size or [(1280, 720), (1920, 1080)]
    print(
        f"# frame graph on {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"{args.model} model, I420 in/out, guided upsampling, adaptive temporal filter, frame colours"
    )
    print("| frame | background | runtime | RGB path ms | planes ms | RGB / planes |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        p3m = None if args.model == "fast" else random_weights(folder, seed=1)
        for w, h in sizes:
            weights = resolve_model_weights(args.model, p3m, h, w)
            net = load_network(args.model, weights, portable=True)
            for bg_name in args.background or BACKGROUNDS:
                spec = GraphSpec(
                    h, w, "i420", "i420", model=args.model, model_short_side=args.model_size,
                    background=bg_name, foreground="frame",
                )  # fmt: skip
                rng = np.random.default_rng(0)
                frame = rng.integers(0, 256, (1, h * 3 // 2, w), dtype=np.uint8)
                image = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
                variants = {}
                for planar in (False, True):
                    variant = spec.with_(planes=planar)
                    inputs = {"frame": frame}
                    if bg_name == "color":
                        inputs["background"] = np.array([[0, 177, 64]], np.uint8)
                    elif bg_name == "image":  # a planar graph takes the image as I420, converted once
                        inputs["background"] = rgb_to_planes(image, variant.matrix) if variant.planar else image
                    inputs["state_alpha"] = np.full(spec.state_shape, -1.0, np.float32)
                    graph = FrameGraph(net, variant).eval()
                    variants[planar] = runners(graph, inputs, folder, f"{bg_name}{planar}")
                for runtime in ("torch", "onnxruntime"):
                    ms: dict[bool, list[float]] = {False: [], True: []}
                    for _ in range(args.repeat):
                        for planar, calls in variants.items():
                            ms[planar].append(time_calls(calls[runtime], args.iters).p50)
                    rgb, planes = statistics.median(ms[False]), statistics.median(ms[True])
                    print(f"| {w}x{h} | {bg_name} | {runtime} | {rgb:.1f} | {planes:.1f} | {rgb / planes:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
