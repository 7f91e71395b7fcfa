"""The ``p3m-live`` command: a thin shell over the library.

Each subcommand maps its flags one to one onto a library function's keyword
arguments. Every :class:`~p3m_live.errors.P3MError` becomes one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import P3MError

Handler = Callable[[argparse.Namespace], int]


def _weights(args: argparse.Namespace) -> int:
    from .model.weights import cached_weights_path, resolve_weights

    if args.action == "path":
        print(cached_weights_path())
        return 0
    path = resolve_weights(args.weights, download=True)
    print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export_cli import run_export

    return run_export(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p3m-live",
        description="Real-time portrait matting with P3M-Net: cut the person out, put them on a new background.",
    )
    parser.add_argument("--version", action="version", version=f"p3m-live {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    w = sub.add_parser("weights", help="show or fetch the P3M-Net weights")
    w.add_argument("action", choices=["path", "fetch"], help="path: where the cache expects them; fetch: get them")
    w.add_argument("--weights", help="use this checkpoint instead of the cache")
    w.set_defaults(handler=_weights)

    e = sub.add_parser("export", help="export the frame graph to ONNX (FP32 or FP16) and check it for TensorRT")
    from .export_cli import add_export_arguments

    add_export_arguments(e)
    e.set_defaults(handler=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except P3MError as e:
        print(f"p3m-live: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("p3m-live: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
