"""``p3m-live matte``: still images through the frame graph, on any backend.

For each image: the alpha as a grey PNG, and on request an RGBA cut-out (``--fg``,
straight alpha) and a composite over a background (``--composite``). The frame
graph is the one the video paths run (guided upsampling, no temporal smoothing),
one backend per image size, opened when the size changes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .backends import BACKENDS
from .errors import P3MError
from .export_cli import parse_count, parse_device
from .spec import MODELS

if TYPE_CHECKING:
    from .backends.base import Backend

log = logging.getLogger("p3m_live")


def add_matte_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="an image or a folder of images")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (or NAME.png for one image)")
    p.add_argument(
        "--fg", action="store_true", help="also write NAME_fg.png: the cut-out (colours estimated at soft edges), RGBA"
    )
    p.add_argument("--composite", metavar="BG", help="also write NAME_composite.png over an image, colour or blur")
    p.add_argument("--model", choices=MODELS, default="p3m")
    p.add_argument("--model-size", type=int, default=512, help="P3M-Net's input short side (multiple of 32)")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--device", type=parse_device, help="cpu, cuda or cuda:N (default: the backend's choice)")
    p.add_argument(
        "--threads", type=parse_count, metavar="N", help="CPU threads on a CPU backend (default: one per core)"
    )
    p.add_argument("--weights", help="P3M-Net checkpoint or converted fast model (default: the cache)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")


def _targets(image: Path, output: Path, single: bool) -> dict[str, Path]:
    if single and output.suffix.lower() == ".png":
        base, folder = output.stem, output.parent
    else:
        base, folder = image.stem, output
    suffixes = {"alpha": "", "fg": "_fg", "composite": "_composite"}
    return {k: folder / f"{base}{suffix}.png" for k, suffix in suffixes.items()}


def _auto_backend(name: str, device: str | None) -> tuple[str, str | None]:
    """``auto`` means PyTorch here: still images come in many sizes, and the exported
    backends need an ONNX export (ONNX Runtime) or an engine build (TensorRT) per size."""
    if name != "auto":
        return name, device
    from .backends import _cuda_available

    device = device or ("cuda" if _cuda_available() else "cpu")
    log.info("backend: torch on %s (still images of any size; no export or engine build per size)", device)
    return "torch", device


def run_matte(args: argparse.Namespace) -> int:
    from .backends import open_backend
    from .model import resolve_model_weights
    from .spec import GraphSpec
    from .video.backgrounds import BackgroundFeed, parse_background
    from .video.frames import image_files, read_rgb
    from .video.sinks import write_png

    images = image_files(args.input)
    single = len(images) == 1 and not args.input.is_dir()
    choice = parse_background(args.composite or "black")
    if choice.kind == "none":
        raise P3MError("--composite none makes no composite; leave --composite out instead")
    wanted = ["alpha"] + (["fg"] if args.fg else []) + (["composite"] if args.composite else [])
    targets = {image: _targets(image, args.output, single) for image in images}
    if not args.overwrite:  # refuse before any work, not halfway through a folder
        for paths in targets.values():
            for k in wanted:
                if paths[k].exists():
                    raise P3MError(f"{paths[k]} exists; pass --overwrite to replace it")
    folder = args.output.parent if single and args.output.suffix.lower() == ".png" else args.output
    if folder.exists() and not folder.is_dir():
        raise P3MError(f"-o {folder} is a file, not a folder: give a folder for the PNGs (or NAME.png for one image)")
    folder.mkdir(parents=True, exist_ok=True)
    backend_name, device = _auto_backend(args.backend, args.device)
    # One backend open at a time, with the composite's background at its size (a video plays
    # on, image by image): a folder of many sizes must not hold them all.
    backend: Backend | None = None
    feed: BackgroundFeed | None = None
    size: tuple[int, int] | None = None
    skipped: list[str] = []
    with contextlib.ExitStack() as sized:  # closes what is open for the current size
        for image_path in images:
            rgb = read_rgb(image_path)
            # What is wrong with one file skips it (in a folder); a missing model or backend
            # still stops the run.
            problem, spec = None, None
            if rgb is None:
                problem = "it cannot be read as an image"
            else:
                h, w = rgb.shape[:2]
                try:
                    spec = GraphSpec(
                        h,
                        w,
                        "rgb",
                        "rgb",
                        model_short_side=args.model_size,
                        background=choice.graph_kind,
                        temporal="off",
                        blur_strength=choice.strength,
                        model=args.model,
                        foreground_track=args.fg,
                    )
                except ValueError as e:
                    problem = str(e)
            if spec is None:
                if single:
                    raise P3MError(f"{image_path}: {problem}")
                log.warning("skipped %s: %s", image_path.name, problem)
                skipped.append(image_path.name)
                continue
            if (h, w) != size:
                sized.close()
                size = None
                weights = resolve_model_weights(args.model, args.weights, h, w)
                backend = open_backend(backend_name, spec, weights, device, threads=args.threads)
                sized.callback(backend.close)
                feed = BackgroundFeed(choice, w, h)
                sized.callback(feed.close)
                size = (h, w)
            assert backend is not None and feed is not None
            value = feed.value()
            if value is not None:
                backend.set_background(value)
            composite, alpha, *colours = backend.process(rgb)
            paths = targets[image_path]
            write_png(paths["alpha"], alpha[0])
            if args.fg:  # the graph's estimate of the person's colours (FrameGraph.foreground_track)
                write_png(paths["fg"], np.concatenate([colours[0][0], alpha[0][..., None]], axis=2))
            if args.composite:
                write_png(paths["composite"], composite[0])
            print(paths["alpha"])
    if skipped:
        raise P3MError(
            f"{len(skipped)} of {len(images)} images could not be matted ({', '.join(skipped)}); "
            "the rest were written, see the warnings above"
        )
    return 0
