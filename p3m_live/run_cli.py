"""The main job: ``p3m-live INPUT -o OUTPUT`` (offline) and ``p3m-live --webcam`` (live).

Builds the run from the options: a source, the frame graph on a backend, the
backgrounds and the outputs, then hands them to :func:`~p3m_live.pipeline.run_offline`
or :func:`~p3m_live.live.run_live`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from fractions import Fraction
from pathlib import Path

from . import signals
from .backends import BACKENDS, choose_backend, open_backend
from .errors import P3MError
from .export_cli import parse_count, parse_device, parse_rate, parse_seconds, parse_size
from .framing import AutoFrame
from .keys import HELP as KEYS_HELP
from .keys import TerminalKeys
from .spec import FOREGROUNDS, MAX_ERODE, MODELS, TEMPORALS, foreground_for
from .video import deadline
from .video.backgrounds import FITS, BackgroundChoice, parse_background, parse_backgrounds, settle_fit
from .video.backgrounds import HELP as BACKGROUND_HELP
from .video.deinterlace import MODES
from .video.devices import SoundSource, open_microphone, open_webcam
from .video.frames import IMAGE_SUFFIXES, Layout
from .video.orientation import TURNS, Orientation, OrientedSource, oriented
from .video.preview import NO_DISPLAY_FIX, display_problem
from .video.relay import Relay
from .video.sinks import (
    CompositePngSink,
    FileSink,
    MatteSink,
    Sink,
    VirtualCamSink,
    check_output,
    is_image_sequence,
)
from .video.sources import LIVE_SCHEMES, PIPES, Source, open_source
from .video.targets import stdout_problem, stream_target

log = logging.getLogger("p3m_live")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("input")
    src.add_argument(
        "input", nargs="?", help="video file, image, folder of images, stream URL (rtsp, udp, http), or - (stdin)"
    )
    src.add_argument("--webcam", nargs="?", const="0", metavar="N|DEVICE", help="read a camera (default 0)")
    src.add_argument(
        "--camera-size", type=parse_size, metavar="WxH",
        help="camera capture size (default: 1280x720 at 30 fps where the camera has it, else its own)",
    )  # fmt: skip
    src.add_argument("--camera-fps", type=parse_rate, metavar="FPS", help="camera capture rate")
    src.add_argument("--format", help="FFmpeg input format, e.g. lavfi, v4l2, dshow (like ffmpeg -f)")
    src.add_argument(
        "--audio",
        nargs="?",
        const="",
        metavar="DEVICE",
        help="live: record a microphone into -o (default: the system's; a camera has no sound), "
        "or what --audio-format reads",
    )
    src.add_argument("--audio-format", metavar="FORMAT", help="FFmpeg input format of --audio, e.g. alsa, pulse, lavfi")
    src.add_argument("--fps", type=parse_rate, default=25.0, help="frame rate of image sequences (default 25)")
    src.add_argument(
        "--start", type=parse_seconds, default=0.0, metavar="S", help="start S seconds into the input (offline)"
    )
    src.add_argument(
        "--downscale",
        type=int,
        metavar="N",
        help="scale frames down to a short side of N pixels before matting (1080 or 720 for 4K video); "
        "smaller frames are kept",
    )
    src.add_argument(
        "--deinterlace",
        choices=MODES,
        default="auto",
        help="interlaced video: auto (a frame per frame, 25i -> 25p; default), field (a frame per field, "
        "25i -> 50p) or off",
    )
    src.add_argument(
        "--rotate",
        type=int,
        choices=TURNS,
        default=0,
        metavar="DEG",
        help="turn the picture 90, 180 or 270 degrees clockwise (a camera mounted sideways or upside down); "
        "a file's own rotation is applied first",
    )
    src.add_argument(
        "--mirror", action="store_true", help="flip the picture left to right (a camera that sees through a mirror)"
    )
    mode = src.add_mutually_exclusive_group()
    mode.add_argument("--live", dest="live", action="store_const", const=True, help="newest frame wins, drop late ones")
    mode.add_argument("--offline", dest="live", action="store_const", const=False, help="every frame, in order")

    out = p.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        help="the composite: a video file (.mp4, .mov, .mkv, .webm), PNGs (NAME.png, NAME_%%05d.png, a folder), "
        "- (Matroska to stdout), or a live stream (rtmp://, udp://, tcp://, rtp://, rtsp://)",
    )
    out.add_argument("--alpha-out", metavar="PATH", help="the matte: .mov, .webm, .mkv, .mp4, or a PNG folder")
    out.add_argument(
        "--fg-out",
        metavar="PATH",
        help="foreground with alpha: .mov (ProRes 4444), .webm, .mkv, PNGs; or .mp4 beside --alpha-out, colours alone",
    )
    out.add_argument("--virtual-cam", nargs="?", const="", metavar="DEVICE", help="feed a virtual camera")
    out.add_argument(
        "--preview", action="store_true", help="show a preview window (q quit, b background, m matte; offline too)"
    )
    out.add_argument(
        "--codec",
        help="video encoder for -o (default: libx264, or libvpx-vp9 for .webm; h264_nvenc uses an NVIDIA GPU)",
    )
    out.add_argument("--crf", type=int, help="encoder quality, lower is better (default 18 for x264; NVENC's cq 21)")
    out.add_argument("--preset", help="encoder preset (default veryfast for x264)")
    out.add_argument("--overwrite", action="store_true", help="replace existing output files")
    out.add_argument(
        "--duration", type=parse_seconds, metavar="S", help="stop after S seconds (offline: of the input, from --start)"
    )
    out.add_argument("--max-frames", type=parse_count, metavar="N", help="stop after N frames (offline)")

    look = p.add_argument_group("matting")
    look.add_argument(
        "--background",
        action="append",
        metavar="BG",
        help=f"{BACKGROUND_HELP}; an image or video with transparency goes over the blurred room; repeat to "
        "switch with b (default blur)",
    )
    look.add_argument(
        "--background-fit",
        choices=FITS,
        default="cover",
        help="how an image or video background meets the frame: cover (scaled to fill it, centre-cropped; "
        "default) or contain (whole, centred, the margins showing the room blurred)",
    )
    look.add_argument(
        "--auto-frame",
        nargs="?",
        type=float,
        const=2.0,
        metavar="ZOOM",
        help="follow the person: crop to them, zooming in up to ZOOM times (default 2), gliding as they move",
    )
    look.add_argument(
        "--temporal",
        choices=TEMPORALS,
        default="adaptive",
        help="temporal smoothing of the alpha: adaptive (where the picture is still; default), motion (a moving "
        "person too: follows the picture; costs more on CPUs), ema, off",
    )
    look.add_argument(
        "--foreground",
        choices=FOREGROUNDS,
        default="auto",
        help="colours at the person's edges: estimate (no fringe of the old background), quick (the same "
        "made smaller, for CPUs), frame, or auto (default: estimate on GPUs; on CPUs quick, and frame over "
        "the blurred room, whose colours the edges already have)",
    )
    look.add_argument(
        "--light-wrap",
        type=float,
        default=0.0,
        metavar="S",
        help="0 to 1: the new background's light on the person's edges (default 0, off)",
    )
    look.add_argument(
        "--erode",
        type=int,
        default=0,
        metavar="PX",
        help=f"pull the matte's edge in by PX pixels (0 to {MAX_ERODE}; default 0): a rim of the old room gone",
    )
    look.add_argument(
        "--upsampler",
        choices=["guided", "bilinear"],
        default="guided",
        help="the matte to frame size: guided by the frame's edges (default), or bilinear (for comparison)",
    )
    look.add_argument(
        "--model",
        choices=("auto", *MODELS),
        default="auto",
        help="p3m: P3M-Net, the quality model; fast: MediaPipe's selfie segmenter, real time on a CPU; "
        "auto (default): fast for live runs on a CPU, else p3m",
    )
    look.add_argument("--model-size", type=int, default=512, help="P3M-Net's input short side (multiple of 32)")

    run = p.add_argument_group("runtime")
    run.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto (default): TensorRT where usable, then PyTorch on CUDA, then ONNX Runtime, then PyTorch on the CPU",
    )
    run.add_argument("--device", type=parse_device, help="cpu, cuda or cuda:N (default: the backend's choice)")
    run.add_argument("--precision", choices=["fp32", "fp16"], help="default: fp16 on GPUs, fp32 on CPUs")
    run.add_argument(
        "--batch", type=parse_count, help="frames per inference call offline (default 4 on GPUs, 1 on CPUs)"
    )
    run.add_argument(
        "--threads",
        type=parse_count,
        metavar="N",
        help="CPU threads the matting computes with on a CPU backend (default: one per physical core); "
        "fewer leaves more of the CPU to a call app",
    )
    run.add_argument("--weights", help="P3M-Net checkpoint, or a converted fast model (default: the cache)")
    run.add_argument(
        "--engine-dir",
        type=Path,
        metavar="DIR",
        help="where TensorRT plans live (default: engines/ in a checkout, else the cache)",
    )
    run.add_argument(
        "--prepare",
        action="store_true",
        help="build or load what this run needs (exported graphs, TensorRT engines), then exit without running",
    )
    run.add_argument("--config", help="TOML file of option defaults (default ~/.config/p3m-live/config.toml)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or status lines")


def _is_live(args: argparse.Namespace) -> bool:
    if args.live is not None:
        return args.live
    target = stream_target(args.output)
    streaming = target is not None and target.network
    return args.webcam is not None or (args.input or "").startswith(LIVE_SCHEMES) or streaming


def _check_args(args: argparse.Namespace, live: bool) -> None:
    if (args.input is None) == (args.webcam is None):
        raise P3MError("give one input: a file or stream (p3m-live INPUT -o OUT), or --webcam")
    if args.model_size < 32 or args.model_size % 32:
        raise P3MError(f"--model-size must be a positive multiple of 32, not {args.model_size}")
    if args.duration == 0:
        raise P3MError("--duration 0 is nothing to run; give the seconds to stop after (more than 0), or drop it")
    if args.start and live:
        raise P3MError("--start is for files: a live source has no earlier part to skip; drop --start or --live")
    if args.camera_size is not None and min(args.camera_size) < 16:
        w, h = args.camera_size
        raise P3MError(f"--camera-size {w}x{h} is too small for a camera: give its width and height, like 1280x720")
    if args.downscale is not None and args.downscale < 16:
        raise P3MError(f"--downscale is the short side in pixels (16 or more, like 720), not {args.downscale}")
    if args.crf is not None and not 0 <= args.crf <= 63:
        raise P3MError(f"--crf must be from 0 to 63, not {args.crf}")
    if args.auto_frame is not None and not 1 <= args.auto_frame <= 8:
        raise P3MError(f"--auto-frame takes the most zoom, from 1 to 8 (like 2), not {args.auto_frame:g}")
    if args.auto_frame is not None and (args.alpha_out or args.fg_out):
        raise P3MError(
            "--auto-frame crops the composite; --alpha-out and --fg-out are whole frames for editors: "
            "drop one or the other"
        )
    if "-" in (args.alpha_out, args.fg_out):
        raise P3MError("only the composite can go to standard output (-o -); give --alpha-out and --fg-out file names")
    target = stream_target(args.output)
    if target is not None and target.network and not live:
        raise P3MError(f"-o {target.name} is a live stream, sent at the source's own pace; drop --offline")
    if args.output == "-" and (problem := stdout_problem()):
        raise P3MError(
            f"-o - writes video to standard output, and {problem}; pipe it into a program "
            "(p3m-live IN -o - | ffplay -) or give -o a file name"
        )
    if args.output and target is None and Path(args.output).suffix.lower() in IMAGE_SUFFIXES - {".png"}:
        raise P3MError(
            f"-o {args.output}: the composite is a video (.mp4, .mov, .mkv, .webm) or PNGs (-o NAME.png, "
            "-o NAME_%05d.png or a folder); pick one of those"
        )
    if args.audio is not None and not (live and args.output):
        raise P3MError(
            "--audio records a microphone into a live run's -o (a file or a stream; the virtual camera "
            "carries no sound); add -o, or --live"
        )
    if live:
        if args.fg_out or args.alpha_out:
            raise P3MError("--alpha-out and --fg-out are for offline runs; drop --live or the outputs")
        if not (args.output or args.preview or args.virtual_cam is not None):
            args.virtual_cam = ""  # p3m-live --webcam: the virtual camera, and a preview where there is a display
            problem = display_problem()
            if problem:
                log.warning("no preview window (%s): feeding the virtual camera alone", problem)
            else:
                args.preview = True
    elif not (args.output or args.alpha_out or args.fg_out):
        raise P3MError("no output: give -o OUT.mp4, --alpha-out or --fg-out")
    elif args.virtual_cam is not None:
        raise P3MError("--virtual-cam is a live output; add --live or use --webcam")
    problem = display_problem() if args.preview else None
    if problem:
        raise P3MError(f"--preview cannot open a window ({problem}); {NO_DISPLAY_FIX}")


def _model(args: argparse.Namespace, live: bool, on_gpu: bool) -> str:
    """``--model auto``: P3M-Net, except live on a CPU, where it would run at a frame a second at
    best; then the fast model, if it is installed. Given weights decide by their kind."""
    if args.model != "auto":
        return args.model
    if args.weights:
        return "fast" if Path(args.weights).suffix == ".npz" else "p3m"
    if not live or on_gpu:
        return "p3m"
    from .model.fast import GENERAL, LANDSCAPE
    from .model.fast_weights import FETCH_HINT, fast_model_path

    if all(fast_model_path(v).is_file() for v in (GENERAL, LANDSCAPE)):
        log.info("model: fast (a live run on the CPU, where P3M-Net manages a frame a second at best; "
                 "--model p3m to use it anyway)")  # fmt: skip
        return "fast"
    log.warning("P3M-Net on the CPU manages a frame a second at best; for real time, %s", FETCH_HINT)
    return "p3m"


def _backgrounds(args: argparse.Namespace, live: bool) -> list[BackgroundChoice]:
    choices = [c for b in (args.background or ["blur"]) for c in parse_backgrounds(b, args.background_fit)]
    composite = args.output or args.virtual_cam is not None or args.preview
    if any(c.kind == "none" for c in choices) and composite:
        raise P3MError("--background none writes no composite; drop -o (keep --alpha-out/--fg-out) or pick one")
    if live:  # b cycles through what was asked, then blur and green
        for extra in ("blur", "green"):
            c = parse_background(extra)
            if c not in choices:
                choices.append(c)
    return choices


def open_run_source(args: argparse.Namespace, live: bool) -> Source:
    """The run's source, turned as ``--rotate`` and ``--mirror`` say (each time a camera is
    reopened, too)."""
    frames = {"short_side": args.downscale, "deinterlace": args.deinterlace}
    if args.webcam is not None:
        if args.format:
            source = open_source(args.webcam, format=args.format, live=True, camera=True, **frames)
        else:
            source = open_webcam(args.webcam, args.camera_size, args.camera_fps, **frames)
    else:
        rate = Fraction(args.fps).limit_denominator(1001)
        part = {"start": args.start, "duration": args.duration}
        source = open_source(args.input, format=args.format, live=live, rate=rate, **frames, **part)
    return oriented(source, Orientation(args.rotate, args.mirror))


def _sinks(
    args: argparse.Namespace,
    source: Source,
    layout: Layout,
    live: bool,
    microphone: SoundSource | None = None,
) -> list[Sink]:
    """The outputs asked for; their sound is the microphone's where there is one, else the
    source's."""
    rate, tb = source.rate, source.time_base
    audio = microphone.audio_streams if microphone is not None else source.audio_streams
    sinks: list[Sink] = []
    call = live and (args.virtual_cam is not None or args.preview)  # outlives a failed recording
    try:
        single = source.still  # a photo: NAME.png as named
        target = stream_target(args.output)
        if args.output and target is None and is_image_sequence(Path(args.output)):
            sound = "; PNGs carry no sound, so the audio is left out" if audio else ""
            log.info("output: the composite as PNG files (%s)%s", args.output, sound)
            if args.codec or args.crf is not None or args.preset:
                log.warning("--codec, --crf and --preset are for video outputs; PNG files are lossless")
            pngs = CompositePngSink(Path(args.output), layout, single)
            sinks.append(Relay(pngs, args.output, outlived=call) if live else pngs)
        elif args.output:

            def composite() -> FileSink:
                return FileSink(
                    target or Path(args.output),
                    layout,
                    rate=rate,
                    time_base=tb,
                    audio_streams=audio,
                    subtitle_streams=source.subtitle_streams,
                    codec=args.codec,
                    crf=args.crf,
                    preset=args.preset,
                    recording=source.recording,
                )

            reopen = composite if target is not None and target.network else None  # a stream that drops
            name = target.name if target else args.output
            if reopen is not None:  # (the last line there is, where a receiver never answers: see README)
                limit = f", giving up after {deadline.CONNECT_SECONDS:g} s" if deadline.available() else ""
                log.info("output: %s (%s), connecting%s", target.name, target.format, limit)
            sinks.append(Relay(composite(), name, reopen, outlived=call) if live else composite())
        track = {"rate": rate, "time_base": tb, "recording": source.recording, "single": single}
        for path, kind in ((args.alpha_out, "alpha"), (args.fg_out, "fg")):  # (offline runs only)
            if path:
                sinks.append(MatteSink(Path(path), kind, layout, paired=bool(args.alpha_out), **track))
        if live and args.virtual_cam is not None:
            fps = float(rate) if rate else 30.0
            sinks.append(VirtualCamSink(layout, fps, device=args.virtual_cam or None))
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


def run(args: argparse.Namespace) -> int:
    from .model import resolve_model_weights
    from .pipeline import Matting, graph_spec, run_offline
    from .stats import Progress

    live = _is_live(args)
    _check_args(args, live)
    backgrounds = _backgrounds(args, live)
    inputs = [Path(args.input)] if args.input else []
    for out in (args.output, args.alpha_out, args.fg_out):
        if out and stream_target(out) is None and Path(out).suffix:
            check_output(Path(out), inputs, args.overwrite)
    backend, device, why = args.backend, args.device, None
    if backend == "auto":
        backend, device, why = choose_backend(device)
    on_gpu = (device or "cpu").startswith("cuda")
    model = _model(args, live, on_gpu)
    weights = resolve_model_weights("p3m", args.weights, 0, 0) if model == "p3m" else None  # fail early
    batch = 1 if live else (args.batch or (4 if on_gpu else 1))
    precision = args.precision or ("fp16" if on_gpu else "fp32")

    source = open_run_source(args, live)
    layout = source.layout
    if weights is None:
        try:
            weights = resolve_model_weights(model, args.weights, layout.height, layout.width)
        except P3MError:
            source.close()
            raise
    if why:  # (said once the input opened: a mistyped file name is the only line it gets)
        log.info("backend: %s on %s (%s)", backend, device, why)
    backgrounds = [settle_fit(c, layout.width, layout.height, layout.sar) for c in backgrounds]
    turned = [f"rotated {layout.rotation} degrees"] if layout.rotation else []
    turned += [source.orientation.describe()] if isinstance(source, OrientedSource) else []
    log.info("input: %s, %dx%d %s%s", source.name, layout.width, layout.height, layout.fmt,
             "".join(f", {t}" for t in turned))  # fmt: skip

    def opener(choice: BackgroundChoice, n: int):
        foreground = foreground_for(args.foreground, on_gpu, choice.graph_kind)
        spec = graph_spec(
            layout,
            choice,
            n,
            model_short_side=args.model_size,
            temporal=args.temporal,
            upsampler=args.upsampler,
            foreground=foreground,
            light_wrap=args.light_wrap,
            erode=args.erode,
            precision=precision,
            model=model,
            foreground_track=bool(args.fg_out),
        )
        return open_backend(
            backend, spec, weights, device, engine_dir=args.engine_dir, threads=args.threads, paced=live
        )

    matting = sinks = microphone = keys = None
    live_started = False
    try:
        # Live on a GPU: one graph for every background (see Matting), not an engine for each.
        mix = live and on_gpu and len({c.graph_kind for c in backgrounds}) > 1
        # Live runs always have a framer, for the f key to turn on; offline only with --auto-frame.
        following = args.auto_frame is not None
        framer = AutoFrame(layout.width, layout.height, args.auto_frame or 2.0, following=following)
        framer = framer if live or following else None
        matting = Matting(layout, backgrounds, opener, batch, mix=mix, framer=framer)
        if live or args.prepare:
            graphs = matting.open_all(warm=live, ahead=live)  # before any output starts: switching must not stall
            if args.prepare:
                log.info("prepared %d frame graph(s) on %s; run again without --prepare", graphs, backend)
                return 0

        def open_mic() -> SoundSource:
            return open_microphone(args.audio or None, args.audio_format)

        if args.audio is not None:
            microphone = open_mic()
            log.info("sound: %s", microphone.name)
        sinks = _sinks(args, source, layout, live, microphone)
        if live:
            from .live import run_live  # (brings OpenCV in for privacy frames: live runs only)

            preview = None
            if args.preview:
                from .video.preview import PreviewWindow

                preview = PreviewWindow(layout)
            keys = TerminalKeys.of_stdin()
            if keys is not None:
                log.info("keys: %s (in this terminal)", KEYS_HELP)
            live_started = True
            # A camera or a network stream is reopened when it drops; a file or a pipe just ends.
            reopenable = args.webcam is not None or not (Path(args.input).is_file() or args.input in PIPES)
            summary = run_live(
                source,
                matting,
                sinks,
                preview=preview,
                duration=args.duration,
                status_interval=1e9 if args.quiet else 1.0,
                keys=keys,
                reopen=(lambda: open_run_source(args, live)) if reopenable else None,
                microphone=microphone,
                reopen_microphone=open_mic,
            )
            log.info("%s", summary.line())
        else:
            progress = None if args.quiet else Progress(source.total_frames)
            preview = None
            if args.preview:  # watching a conversion: q stops it with a finished file
                from .video.preview import PreviewWindow

                preview = PreviewWindow(layout)
            try:
                result = run_offline(
                    source, matting, sinks, progress=progress, max_frames=args.max_frames, preview=preview
                )
            finally:
                if preview is not None:
                    preview.close()
            log.info("%s", result.table())  # (through the log: a hung-up terminal cannot fail the run)
            if result.interrupted:
                if result.frames == 0:
                    log.warning("interrupted before the first frame was finished: no output file is written")
                return signals.exit_code()
    finally:
        if keys is not None:  # the terminal back as it was, first
            keys.close()
        error = sys.exc_info()[1]
        failing = error is not None
        late: Exception | None = None  # an output's error met as it closed, once all are closed
        with signals.held():  # a second Ctrl-C must not cut the file being finished
            for s in sinks or []:
                try:
                    s.close(failed=failing)
                except Exception as e:
                    if not failing and late is None:
                        late = e
                    # The error that ended the run is the one to report, not its echo here.
                    elif str(e) != str(error or late):
                        log.warning("an output could not be finished cleanly (%s)", e)
            if microphone is not None:  # (after the outputs, which read its packets' stream)
                microphone.close()
            if matting is not None:
                matting.close()
            if not live_started:
                source.close()
        if late is not None:
            raise late
    return 0
