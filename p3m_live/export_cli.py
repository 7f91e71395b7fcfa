"""``p3m-live export``: the frame graph to ONNX for given frame sizes, op-checked for TensorRT."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from .errors import P3MError, write_error
from .spec import IN_FORMATS, MODELS, OUT_FORMATS, TEMPORALS, GraphSpec


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (width, height)."""
    m = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like 1920x1080, not {text!r}")
    return int(m.group(1)), int(m.group(2))


def parse_count(text: str) -> int:
    """A whole number, 1 or more (frames in a batch, threads)."""
    if not re.fullmatch(r"\d+", text.strip()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more, not {text!r}")
    return int(text)


def _number(text: str) -> float:
    """``text`` as a float, NaN where it is none (so that every range check refuses it)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_rate(text: str) -> float:
    """A frame rate: a finite number more than 0, up to 1000 (25, 29.97, 240)."""
    if not 0 < (rate := _number(text)) <= 1000:  # (NaN fails it too)
        raise argparse.ArgumentTypeError(f"must be frames a second, more than 0 (like 25 or 29.97), not {text!r}")
    return rate


def parse_seconds(text: str) -> float:
    """A time in seconds: a finite number, 0 or more."""
    if not 0 <= (seconds := _number(text)) < math.inf:
        raise argparse.ArgumentTypeError(f"must be seconds, 0 or more (like 12.5), not {text!r}")
    return seconds


def parse_device(text: str) -> str:
    """'cpu', 'cuda' or 'cuda:N', as PyTorch spells devices."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text.strip()):
        raise argparse.ArgumentTypeError(f"device must be cpu, cuda or cuda:N, not {text!r}")
    return text.strip()


def add_graph_arguments(p: argparse.ArgumentParser) -> None:
    """The options that fix an exported frame graph (shared by export and build-engine)."""
    p.add_argument(
        "--size",
        type=parse_size,
        action="append",
        required=True,
        metavar="WxH",
        help="frame size; repeat for several sizes (one file each)",
    )
    p.add_argument("--in-format", choices=IN_FORMATS, default="i420")
    p.add_argument("--out-format", choices=OUT_FORMATS, default="i420")
    p.add_argument(
        "--matrix",
        choices=["auto", "bt601", "bt709"],
        default="auto",
        help="YUV matrix of the frames (default: by size, as players guess: BT.709 from 720p up)",
    )
    p.add_argument("--full-range", action="store_true", help="YUV frames use the full 0-255 range (JPEG)")
    p.add_argument(
        "--background",
        choices=["image", "color", "blur", "mix"],
        default="image",
        help="the background input (mix: every kind in one graph, an image weighted over the blur, "
        "as live runs on GPUs use)",
    )
    p.add_argument("--blur-strength", type=int, default=16, metavar="N", help="for --background blur or mix (1-128)")
    p.add_argument("--temporal", choices=TEMPORALS, default="adaptive")
    p.add_argument(
        "--upsampler",
        choices=["guided", "bilinear"],
        default="guided",
        help="the matte to frame size: guided by the frame's edges (default), or bilinear (for comparison)",
    )
    p.add_argument(
        "--foreground",
        choices=["estimate", "quick", "frame"],
        default="estimate",
        help="estimate the edge colours (the GPU default), estimate them smaller (quick: a CPU's default "
        "over a new background) or keep the frame's (a CPU's over the blurred room)",
    )
    p.add_argument("--light-wrap", type=float, default=0.0, metavar="S", help="0 to 1 (default 0, off)")
    p.add_argument("--erode", type=int, default=0, metavar="PX", help="pull the matte's edge in by PX pixels")
    p.add_argument(
        "--fg-track", action="store_true", help="also output the person's colours as RGB (what --fg-out writes)"
    )
    p.add_argument("--batch", type=parse_count, default=1)
    p.add_argument("--model", choices=MODELS, default="p3m", help="p3m (P3M-Net) or fast (MediaPipe's segmenter)")
    p.add_argument("--model-size", type=int, default=512, help="P3M-Net's input short side (multiple of 32)")
    p.add_argument("--weights", help="P3M-Net checkpoint or converted fast model (default: the cache)")


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    add_graph_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output .onnx file (or a folder for several sizes)")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp16")


def graph_specs(args: argparse.Namespace, precision: str) -> list[GraphSpec]:
    """One spec per ``--size``, from the shared graph options."""
    from .video.frames import matrix_of

    if args.model_size % 32 or args.model_size < 32:
        raise P3MError(f"--model-size must be a positive multiple of 32, not {args.model_size}")
    if not 1 <= args.blur_strength <= 128:
        raise P3MError(f"--blur-strength must be from 1 to 128, not {args.blur_strength}")
    specs = []
    for width, height in args.size:
        try:
            specs.append(
                GraphSpec(
                    height,
                    width,
                    args.in_format,
                    args.out_format,
                    batch=args.batch,
                    model_short_side=args.model_size,
                    background=args.background,
                    temporal=args.temporal,
                    upsampler=args.upsampler,
                    matrix=matrix_of(2, width, height) if args.matrix == "auto" else args.matrix,  # 2: untagged
                    full_range=args.full_range,
                    blur_strength=args.blur_strength,
                    precision=precision,
                    model=args.model,
                    foreground=args.foreground,
                    light_wrap=args.light_wrap,
                    erode=args.erode,
                    foreground_track=args.fg_track,
                )
            )
        except ValueError as e:
            raise P3MError(str(e)) from e
    return specs


def run_export(args: argparse.Namespace) -> int:
    import onnx

    from .backends.onnxruntime_backend import export_frame_graph
    from .export import require_tensorrt_ops
    from .model import resolve_model_weights

    specs = graph_specs(args, args.precision)
    out = Path(args.output)
    several = len(specs) > 1
    if several and out.suffix == ".onnx":
        raise P3MError("several --size values need -o to be a folder, not a .onnx file")
    for spec in specs:
        width, height = spec.width, spec.height
        path = out / f"frame-graph-{width}x{height}-{args.precision}.onnx" if several or out.suffix != ".onnx" else out
        weights = resolve_model_weights(args.model, args.weights, height, width)
        try:
            export_frame_graph(spec, weights, path)
            model = onnx.load(str(path))  # once, for the op check and the spec's metadata
            report = require_tensorrt_ops(model, path)
            write_spec(model, spec)
            onnx.save(model, str(path))
        except OSError as e:
            path.unlink(missing_ok=True)  # (no graph cut short, to be taken for a whole one)
            raise write_error(e, path) from e
        mh, mw = spec.model_hw
        print(
            f"{path}: {width}x{height} {args.in_format}->{args.out_format} ({spec.matrix}"
            f"{', full range' if spec.full_range else ''}), model {mw}x{mh}, {args.precision}, "
            f"{sum(report.ops.values())} nodes, TensorRT {report.tensorrt} op check OK"
        )
    return 0


def write_spec(model, spec: GraphSpec) -> None:
    """Record the graph's spec in the ONNX model (metadata ``p3m_live.spec``, JSON), so a
    program that runs it can see the frame format, matrix and inputs it was made for."""
    import json

    entry = model.metadata_props.add()
    entry.key, entry.value = "p3m_live.spec", json.dumps(spec.as_dict(), sort_keys=True)


def add_build_engine_arguments(p: argparse.ArgumentParser) -> None:
    add_graph_arguments(p)
    p.add_argument("--device", type=parse_device, default="cuda", help="cuda or cuda:N")
    p.add_argument(
        "--engine-dir",
        type=Path,
        metavar="DIR",
        help="where plans live (default: engines/ in a checkout, else the cache)",
    )


def run_build_engine(args: argparse.Namespace) -> int:
    """FP16 TensorRT engines for each size, built once and kept in the engine store."""
    from .backends.tensorrt_backend import ensure_engine, primary_context, trt_imports
    from .model import resolve_model_weights
    from .trt.store import EngineStore

    specs = graph_specs(args, "fp16")
    _, cuda = trt_imports("build-engine", "run it on the machine with the GPU that will load the plans")
    dev, ctx = primary_context(cuda, args.device)
    ctx.push()
    try:
        store = EngineStore(args.engine_dir)
        for spec in specs:
            weights = resolve_model_weights(args.model, args.weights, spec.height, spec.width)
            print(ensure_engine(spec, weights, dev, store))
    finally:
        ctx.pop()
    return 0
