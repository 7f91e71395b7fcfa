"""The ``p3m-live`` command: a thin shell over the library.

Each subcommand maps its flags one to one onto a library function's keyword
arguments. Every :class:`~p3m_live.errors.P3MError` becomes one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import P3MError
from .terminal import say

Handler = Callable[[argparse.Namespace], int]  # a subcommand: parsed options -> exit code


def _weights(args: argparse.Namespace) -> int:
    from .model.weights import cached_weights_path, resolve_weights

    if args.model == "fast":
        from .model.fast import GENERAL, LANDSCAPE
        from .model.fast_weights import fast_model_path, fetch_fast_models

        paths = [fast_model_path(v) for v in (GENERAL, LANDSCAPE)] if args.action == "path" else None
        for path in paths or fetch_fast_models(args.wheel):
            print(path)
        return 0
    if args.action == "path":
        print(cached_weights_path())
        return 0
    path = resolve_weights(args.weights, download=True)
    print(path)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .eval_cli import run_eval

    return run_eval(args)


def _matte(args: argparse.Namespace) -> int:
    from .matte_cli import run_matte

    return run_matte(args)


def _build_engine(args: argparse.Namespace) -> int:
    from .export_cli import run_build_engine

    return run_build_engine(args)


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor

    return doctor()


def _export(args: argparse.Namespace) -> int:
    from .export_cli import run_export

    return run_export(args)


DESCRIPTION = "Real-time portrait matting with P3M-Net: cut the person out, put them on a new background."
EXAMPLES = """examples:
  p3m-live talk.mp4 -o out.mp4 --background beach.jpg   replace the background of a file, audio kept
  p3m-live talk.mp4 --alpha-out matte.mov --fg-out fg.mov --background none
  p3m-live --webcam                                      camera -> virtual camera + preview
  p3m-live --webcam 1 --camera-size 1280x720 --virtual-cam --background blur:24
  p3m-live talk.mp4 -o out.mp4 --model fast                no GPU, no P3M-Net weights: MediaPipe's segmenter
  p3m-live --webcam --background ~/Pictures/bgs/ --auto-frame   b: next background, f: framing (keys here too)
  p3m-live --webcam --rotate 180 --mirror                a camera upside down, seen in a mirror

other commands: p3m-live matte, eval, doctor, weights path|fetch [p3m|fast], export, build-engine
(see p3m-live COMMAND --help)"""
SUBCOMMANDS = ("weights", "export", "build-engine", "doctor", "eval", "matte")


def build_run_parser() -> argparse.ArgumentParser:
    """The main job's parser (no subcommand)."""
    from .run_cli import add_run_arguments

    parser = argparse.ArgumentParser(
        prog="p3m-live",
        allow_abbrev=False,  # (see build_parser)
        usage="p3m-live INPUT -o OUTPUT [options] | p3m-live --webcam [N] [options] | p3m-live COMMAND ...",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"p3m-live {__version__}")
    add_run_arguments(parser)
    return parser


def _run(args: argparse.Namespace) -> int:
    from .run_cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The subcommands' parser. No parser takes an option by an abbreviation: ``--alpha``
    would be ``--alpha-out`` until the day a second ``--alpha-...`` option came, and then an
    error, in every script that used it."""
    parser = argparse.ArgumentParser(prog="p3m-live", description=DESCRIPTION, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"p3m-live {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, allow_abbrev=False, **kwargs)

    # -q as in a conversion run, for the commands that log as they go
    quiet = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    quiet.add_argument("-q", "--quiet", action="store_true", help="no progress bar or status lines")

    w = add("weights", help="show or fetch the P3M-Net weights")
    w.add_argument("action", choices=["path", "fetch"], help="path: where the cache expects them; fetch: get them")
    w.add_argument("model", nargs="?", choices=["p3m", "fast"], default="p3m", help="which model (default p3m)")
    w.add_argument("--weights", help="use this checkpoint instead of the cache")
    w.add_argument("--wheel", help="fast: convert this mediapipe-0.10.14 wheel instead of downloading it")
    w.set_defaults(handler=_weights)

    ev = add("eval", help="P3M-Net on a test set (P3M-500-P/NP) with the paper's protocol and metrics", parents=[quiet])
    from .eval_cli import add_eval_arguments

    add_eval_arguments(ev)
    ev.set_defaults(handler=_eval)

    m = add("matte", help="alpha PNGs, RGBA cut-outs and composites for still images", parents=[quiet])
    from .matte_cli import add_matte_arguments

    add_matte_arguments(m)
    m.set_defaults(handler=_matte)

    b = add("build-engine", help="build (or reuse) FP16 TensorRT engines for frame sizes", parents=[quiet])
    from .export_cli import add_build_engine_arguments

    add_build_engine_arguments(b)
    b.set_defaults(handler=_build_engine)

    d = add("doctor", help="check Python packages, codecs, GPU, cameras, virtual camera, weights")
    d.set_defaults(handler=_doctor)

    e = add("export", help="export the frame graph to ONNX (FP32 or FP16) and check it for TensorRT", parents=[quiet])
    from .export_cli import add_export_arguments

    add_export_arguments(e)
    e.set_defaults(handler=_export)
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    if argv and argv[0] in SUBCOMMANDS:
        return build_parser().parse_args(argv)
    from pathlib import Path

    from .config import default_config_path, load_config

    parser = build_run_parser()
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    path = Path(known.config) if known.config else default_config_path()
    parser.set_defaults(**load_config(path, parser, required=known.config is not None))
    args = parser.parse_args(argv)
    if not argv:
        parser.print_help()
        parser.exit(2)
    args.handler = _run
    return args


class _StderrHandler(logging.Handler):
    """Log lines to whatever ``sys.stderr`` is at the time (so redirections apply)."""

    def emit(self, record: logging.LogRecord) -> None:
        _say(self.format(record))


def _say(line: str) -> None:
    """One line on stderr (see terminal.say)."""
    say(line + "\n")


def _setup_logging(quiet: bool) -> None:
    log = logging.getLogger("p3m_live")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("p3m-live: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    from . import signals

    argv = list(sys.argv[1:] if argv is None else argv)
    # OpenCV's own log lines (a broken image's "can't read header") would stand beside
    # ours: its failures come back as return values, which become one-line errors here.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # (read when cv2 is first imported)
    signals.install()
    try:
        args = _parse(argv)
        _setup_logging(getattr(args, "quiet", False))
        return args.handler(args)
    except P3MError as e:
        _say(f"p3m-live: error: {e}")
        return 2
    except OSError as e:  # a full disk, a read-only folder, a vanished file: the system's own words
        _say(f"p3m-live: error: {e.strerror or e} ({getattr(e, 'filename', '') or 'I/O'})")
        return 2
    except KeyboardInterrupt:
        _say("p3m-live: interrupted")
        return signals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
