"""Where composites and mattes go: encoded files, matte/foreground tracks, a virtual camera.

File outputs are written under a temporary name next to the target and renamed
only when complete, so a run that stops early leaves either nothing or a whole,
playable file; an existing file is only replaced with ``overwrite``. Timestamps
are the source's own, so variable frame rates survive and copied audio stays in
sync.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import P3MError, no_room, out_of_room, reason, write_error
from . import deadline
from .frames import COLORSPACES, RANGES, Frame, Layout, convert_matrix, planes_to_rgb
from .recording import Recording, recording_metadata
from .targets import KEYFRAME_SECONDS, Target
from .tracks import Track, copied_stream, muxer_takes, open_track

log = logging.getLogger("p3m_live")

# Container suffix -> the composite's default encoder.
VIDEO_CODECS: dict[str, str] = {
    ".mp4": "libx264",
    ".m4v": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".webm": "libvpx-vp9",
}
# Encoder -> its defaults for the composite (visually lossless, fast); others get FFmpeg's.
ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"crf": "18", "preset": "veryfast"},
    "libvpx-vp9": {"crf": "32", "b": "0", "row-mt": "1", "deadline": "realtime", "cpu-used": "8"},
    "libx265": {"crf": "22", "preset": "fast", "x265-params": "log-level=error"},  # no per-run statistics
    # NVENC: constant quality (VBR with cq and no bitrate cap); p4 is its balanced preset.
    "h264_nvenc": {"rc": "vbr", "cq": "21", "b": "0", "preset": "p4"},
    "hevc_nvenc": {"rc": "vbr", "cq": "23", "b": "0", "preset": "p4"},
}
# What --crf sets, where the encoder names its constant-quality knob otherwise.
QUALITY_OPTION: dict[str, str] = {"h264_nvenc": "cq", "hevc_nvenc": "cq"}
# Matte and foreground tracks: (codec, pixel format, options) for formats that carry alpha.
ALPHA_CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    ".mov": ("prores_ks", "yuva444p10le", {"profile": "4444", "vendor": "apl0"}),
    ".webm": ("libvpx-vp9", "yuva420p", {"crf": "20", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}),
    ".mkv": ("ffv1", "bgra", {}),  # lossless
}


class StreamLost(P3MError):
    """A network output that stopped taking data (the receiver or server gone): a live run
    reopens it (see :mod:`~p3m_live.video.relay`) where other errors end the run."""


def encoder_options(codec: str, crf: int | None, preset: str | None) -> dict[str, str]:
    """The encoder's defaults with --crf and --preset applied, each under the encoder's own name."""
    options = dict(ENCODER_OPTIONS.get(codec, {}))
    if crf is not None:
        options[QUALITY_OPTION.get(codec, "crf")] = str(crf)
    if preset is not None:
        options["preset"] = preset
    return options


HARDWARE_ENCODERS = ("_nvenc", "_qsv", "_amf", "_vaapi", "_videotoolbox", "_mf")
# Codecs whose own bitstream says the pixels' shape. FFmpeg's Matroska muxer takes the shape
# from the stream (AVStream), which PyAV never sets, not from the encoder: in .mkv and .webm
# any other codec (VP9, FFV1, AV1, ProRes) loses it, and its video is written in square pixels.
SHAPE_IN_BITSTREAM = frozenset({"h264", "hevc", "mpeg4", "mpeg2video"})
MATROSKA_MUXERS = frozenset({"matroska", "webm"})
# FFmpeg's MOV muxer does not always report a write that failed for want of space, so a
# file's disk is looked at every so many frames, and one with less than this left is full.
ROOM_CHECK_EVERY = 30
LOW_ROOM = 64 << 10  # bytes
MIB = 1 << 20  # a short file's disk with less left is full; a rewrite leaves at least this


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4) uint8 pixels as a PNG file. Encoded in
    memory and written by Python, so a failed write (a full disk, a read-only folder) is one
    line with its reason (libpng's own "Write Error" does not show) and leaves no cut file."""
    import cv2

    code = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}.get(pixels.shape[2] if pixels.ndim == 3 else 0)
    ok, data = cv2.imencode(".png", pixels if code is None else cv2.cvtColor(pixels, code))
    if not ok:
        raise P3MError(f"OpenCV cannot encode {path.name} as PNG ({pixels.dtype} {pixels.shape})")
    try:
        path.write_bytes(data)
    except OSError as e:
        path.unlink(missing_ok=True)
        raise write_error(e, path) from e


def square_size(width: int, height: int, sar: Fraction) -> tuple[int, int]:
    """The size of a width x height picture of ``sar``-shaped pixels in square pixels: as
    wide as players show it (an even width, for 4:2:0), as tall as it is."""
    return max(2, 2 * round(width * sar / 2)), height


WITH_ALPHA = "use .mov (ProRes 4444), .webm (VP9 with alpha), .mkv (FFV1) or a folder of PNGs"


class Sink:
    """Base of every output."""

    def write(self, frame: Frame, composite: np.ndarray, alpha: np.ndarray, colours: np.ndarray | None = None) -> None:
        """One frame's composite and alpha, and where the frame graph makes them the person's
        colours for a foreground track (see FrameGraph.foreground_track)."""
        raise NotImplementedError

    def write_packet(self, packet: av.Packet) -> None:  # noqa: B027 (only file outputs take them)
        """Copy one audio or subtitle packet (ignored by outputs without those streams)."""

    def status(self) -> str | None:
        """A few words for the live status line where there is news (frames dropped, a
        stream reconnecting), else None."""
        return None

    def drain(self) -> bool:
        """Wait until what was given is written (outputs on threads of their own); whether it
        is."""
        return True

    def fence(self) -> threading.Event:
        """An event set once what was given so far is written: already, for an output that
        writes as it is given."""
        done = threading.Event()
        done.set()
        return done

    def close(self, failed: bool = False) -> None:  # noqa: B027 (optional hook)
        """Finish the output (flush encoders, rename files into place); ``failed``: the run
        stopped with an error, so a file is finished but not passed off as whole."""


def partial_path(path: Path) -> Path:
    """The temporary name a file is written under: same folder and suffix, so the
    container format is still known from it."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def check_output(path: Path, inputs: Sequence[Path], overwrite: bool) -> None:
    """Refuse to write over an input, or over an existing file without ``overwrite``."""
    for src in inputs:
        if src.exists() and path.exists() and os.path.samefile(src, path):
            raise P3MError(f"output {path} is the input; choose another output name")
    if path.exists() and not overwrite:
        raise P3MError(f"output {path} exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise P3MError(f"the folder of output {path} does not exist; create it first")
    try:  # FFmpeg creates the file only at the first frame: find out now whether it can
        fd, probe = tempfile.mkstemp(prefix=".p3m-live-", dir=path.parent)
    except OSError as e:
        raise P3MError(f"cannot write into {path.parent} ({e.strerror}); choose a writable folder") from e
    os.close(fd)
    os.unlink(probe)


# MP4 and MOV keep their index (moov) at the end, so a run killed hard (SIGKILL, a crash,
# power loss) would leave an unplayable partial file. They are written fragmented instead
# (a fragment a second; delay_moov keeps the exact first timestamps, unlike empty_moov) and
# rewritten as an ordinary file, packet for packet, once complete: editors get a plain MP4
# or MOV, and a killed run leaves NAME.partial.mp4 playable up to its last second.
FRAGMENTED = {".mp4", ".m4v", ".mov"}


def mov_options(path: Path, fragmented: bool) -> dict[str, str]:
    """Muxer options: one-second fragments while writing (see ``FRAGMENTED``), and for .mov
    every metadata key as a QuickTime "mdta" tag, so an iPhone's com.apple.quicktime.creationdate,
    location, make and model survive (MP4 keeps its standard tags: creation time, location,
    title)."""
    flags = ["frag_keyframe", "delay_moov", "default_base_moof"] if fragmented else []
    if path.suffix.lower() == ".mov":
        flags.append("use_metadata_tags")
    options = {"movflags": "+".join(flags)} if flags else {}
    if fragmented:
        options["frag_duration"] = "1000000"  # microseconds
    return options


def file_options(path: Path, fragmented: bool) -> dict[str, str]:
    """A file's muxer options: ``mov_options``, and each packet handed to the kernel as it
    is muxed (flush_packets). FFmpeg otherwise holds up to 256 KiB in its own buffer, which
    a run killed hard loses: at a small frame size, many seconds of finished fragments."""
    return {**mov_options(path, fragmented), "flush_packets": "1"}


def remux(src: Path, dst: Path) -> None:
    """Copy every stream of ``src`` into ``dst`` packet for packet (timestamps, metadata and
    chapters unchanged). A timecode track and a chapter track are not copied but made again
    by the muxer, from the video stream's timecode and the chapters."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", container_options=mov_options(dst, False)) as out:
        out.metadata.update(recording_metadata(inp.metadata))
        out.set_chapters(inp.chapters())
        streams = {st.index: copied_stream(out, st, keep_tag=True) for st in inp.streams if st.type != "data"}
        for st in inp.streams.video:
            if st.sample_aspect_ratio and st.sample_aspect_ratio != 1:  # (ProRes says it in the file only)
                streams[st.index].codec_context.sample_aspect_ratio = st.sample_aspect_ratio
            if "timecode" in st.metadata:  # (the track counts frames at the video's rate: say which)
                streams[st.index].metadata["timecode"] = st.metadata["timecode"]
                streams[st.index].codec_context.framerate = st.average_rate or st.guessed_rate
        for packet in inp.demux():
            if packet.dts is None or packet.stream.index not in streams:  # end-of-stream markers, timecodes
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


def video_packets_in(path: Path) -> int:
    """How many packets of its first video stream a file gives back, read to its end."""
    with av.open(str(path)) as c:
        return sum(p.dts is not None for p in c.demux(video=0))


REORDER_SPAN = 64  # frame intervals: no encoder decodes a picture this long before it is shown


def sane_dts(pts: int | None, dts: int | None, last_dts: int | None, span: int) -> int | None:
    """A video packet's decoding time, where the encoder's cannot be right: later than the
    picture's own time, more than ``span`` before it, or not after the last packet's. x265
    leaves it uninitialised in a clip shorter than its B-frame delay (3 frames by default,
    x265 issue 781), and the MP4 muxer refuses such a file. It becomes the picture's time,
    or just after the last packet's; any other is kept."""
    if pts is None or dts is None:
        return dts
    if (last_dts is None or dts > last_dts) and pts - span <= dts <= pts:
        return dts
    return pts if last_dts is None or pts > last_dts else last_dts + 1


class _Encoder:
    """One video stream in a container under a temporary name, with the source's timestamps.
    ``colour`` (matrix, full range) tags the stream with the matrix (bt601, bt709, or rgb for
    RGB coding) and range it is in. ``recording`` gives the file the source's metadata,
    chapters and attachments, and the stream its timecode (MOV and MP4 make a timecode track
    of it, Matroska a tag)."""

    def __init__(
        self,
        path: Path | Target,
        codec: str,
        pix_fmt: str,
        layout: Layout,
        rate: Fraction | None,
        time_base: Fraction | None,
        options: dict[str, str],
        *,
        colour: tuple[str, bool] | None = None,
        recording: Recording | None = None,
    ) -> None:
        recording = recording or Recording()
        self.target = path if isinstance(path, Target) else None
        self.path: Path | None = None if isinstance(path, Target) else path  # (a file's: renamed into place)
        self.name = path.name
        self.tmp = None if self.path is None else partial_path(self.path)
        self.fragmented = self.path is not None and self.path.suffix.lower() in FRAGMENTED
        self.video_packets = 0
        try:
            if self.target is not None:  # FFmpeg's own protocols write the pipe or the socket
                self.container = av.open(self.target.url, "w", format=self.target.format)
            else:
                self.container = av.open(str(self.tmp), "w", container_options=file_options(path, self.fragmented))
        except (av.error.FFmpegError, ValueError) as e:
            if self.target is not None:
                raise P3MError(f"cannot send to {self.name} ({reason(e)}); check the address") from e
            raise P3MError(f"cannot write {path} ({e}); use a known suffix such as .mp4, .mov, .mkv or .webm") from e
        self.container.metadata.update(recording.metadata)
        self.container.set_chapters(list(recording.chapters))
        if self.container.format.name == "matroska":  # the one muxer here with attachments (not WebM)
            for name, mimetype, data in recording.attachments:
                self.container.add_attachment(name, mimetype, data)
        elif recording.attachments:
            names = ", ".join(a[0] for a in recording.attachments)
            log.info("%s: the source's attachments (%s) can go into .mkv only; left out", path.name, names)
        try:
            self.stream = self.container.add_stream(codec, rate=rate or Fraction(30))
        except (av.error.FFmpegError, ValueError) as e:
            self._abandon()
            if codec in av.codecs_available:  # known, but this container cannot hold it (libx264 in .gif)
                why = f"{path.suffix or 'this'} files cannot hold {codec} video"
                fix = "use .mp4, .mov, .mkv or .webm, or a --codec that this container takes"
            else:
                why, fix = f"the {codec} encoder is not available in this FFmpeg build ({e})", "choose another --codec"
            raise P3MError(f"{why}; {fix}") from e
        s = self.stream
        self.square: tuple[int, int] | None = None  # the size frames are stretched to, where they must be
        if layout.sar != 1 and self.container.format.name in MATROSKA_MUXERS:
            if s.codec_context.codec.canonical_name not in SHAPE_IN_BITSTREAM:
                self.square = square_size(layout.width, layout.height, layout.sar)
                log.info(
                    "%s: %s cannot say in this container that its pixels are %s as wide as tall; "
                    "written at %dx%d square pixels instead (.mov and .mp4 keep them)",
                    self.name,
                    codec,
                    layout.sar,
                    *self.square,
                )
        s.width, s.height = self.square or (layout.width, layout.height)
        s.pix_fmt = pix_fmt
        if recording.timecode:
            s.metadata["timecode"] = recording.timecode
        if layout.sar != 1 and self.square is None:  # anamorphic: players stretch it back to its shape
            s.codec_context.sample_aspect_ratio = layout.sar
        self.time_base = time_base or (1 / (rate or Fraction(30)))
        s.time_base = self.time_base
        s.codec_context.time_base = self.time_base  # keeps every source timestamp exactly (VFR)
        s.options = options
        if colour is not None:
            s.codec_context.colorspace = {"bt709": 1, "bt601": 5, "rgb": 0}[colour[0]]
            s.codec_context.color_range = 2 if colour[1] else 1
            if colour[0] == "bt709":
                # SDR HD: BT.709 primaries and transfer too, with which MOV and MP4 tag any codec.
                s.codec_context.color_primaries = s.codec_context.color_trc = 1
        if s.codec_context.codec.canonical_name == "hevc" and self.fragmented:
            s.codec_context.codec_tag = "hvc1"  # FFmpeg writes hev1, which QuickTime and iOS do not play
        if codec == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT-AV1 prints its settings table otherwise
        try:
            # Opened now, not at the first frame: an encoder that cannot start (a hardware
            # encoder without its GPU, a bad option) fails before any work, with its reason.
            s.codec_context.open()
        except av.error.FFmpegError as e:
            self._abandon()
            why = reason(e)
            if codec.endswith(HARDWARE_ENCODERS):
                fix = "it needs its GPU and driver; choose another --codec (libx264 works everywhere)"
            else:
                fix = f"check --preset and --crf ({', '.join(f'{k}={v}' for k, v in options.items())})"
            raise P3MError(f"the {codec} encoder cannot start here ({why}); {fix}") from e
        unused = dict(s.codec_context.options)  # what the encoder did not take (--crf for NVENC, say)
        if unused:
            log.warning("%s ignores %s", codec, ", ".join(f"{k}={v}" for k, v in unused.items()))
        self._last_pts: int | None = None
        self._last_dts: int | None = None
        self._span = max(1, round(REORDER_SPAN / (rate or Fraction(30)) / self.time_base))
        self._frames = 0

    def _abandon(self) -> None:
        """Close and delete the partial file of an encoder that could not be set up."""
        self.container.close()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)

    def connect(self) -> None:
        """Open the connection of a network output and send the header now, not with the first
        packet: a receiver that is not there fails before the run starts (or a reconnect
        attempt, quietly). One that takes the connection and never answers would hold the
        process for good, so past ``deadline.CONNECT_SECONDS`` the process ends (see
        :mod:`p3m_live.video.deadline`)."""
        try:
            with deadline.process_deadline(deadline.CONNECT_SECONDS):
                self.container.start_encoding()
        except (av.error.FFmpegError, OSError) as e:
            self._abandon()
            failed = self._stream_failed(e)
            assert failed is not None  # (a network output's failures always have their line)
            raise failed from e

    def _stream_failed(self, e: BaseException) -> P3MError | None:
        """The one-line error where a stream output failed (standard output closed by its
        reader, the network or the receiver gone), or None for a file."""
        if self.target is None:
            return None
        if not self.target.network:
            if getattr(e, "errno", None) != errno.EPIPE:
                return None
            return P3MError(f"the program reading standard output closed it after {self.video_packets} frames")
        if "Protocol not found" in reason(e):
            scheme = self.target.url.partition("://")[0]
            return P3MError(
                f"this FFmpeg (PyAV's) cannot send {scheme}:// streams; use udp:// or rtmp://, or pipe -o - "
                f"into an ffmpeg that can (p3m-live IN -o - | ffmpeg -i - -c copy -f mpegts {scheme}://...)"
            )
        return StreamLost(
            f"sending to {self.name} failed after {self.video_packets} frames ({reason(e)}); "
            "check the address, and that the receiver or server is up"
        )

    def _disk_full(self, e: BaseException) -> P3MError | None:
        """The one-line error where a file could not be written for want of space (the disk
        or the user's quota full), or None. The same words for every write that meets it, so
        the file's close after the run's error is not reported twice."""
        network = self.target is not None and self.target.network
        if network or not out_of_room(e):
            return None
        return self._no_room(self.video_packets)

    def _no_room(self, frames: int) -> P3MError:
        return no_room(f"{self.name} could not be written after {frames} frames", self.path)

    def mux(self, packets: Sequence[av.Packet]) -> None:
        """Every packet of this file goes through here (video and the copied streams); a packet
        the muxer refuses is one line, not a traceback from the writer thread. (Which stream's
        packet it was is not known: the muxer interleaves, and a refusal can surface at a
        packet of another stream.)"""
        for packet in packets:
            if packet.stream is self.stream:
                dts = sane_dts(packet.pts, packet.dts, self._last_dts, self._span)
                if dts is not None:
                    packet.dts = self._last_dts = dts
            try:
                self.container.mux(packet)
            except av.error.FFmpegError as e:
                if failed := self._stream_failed(e) or self._disk_full(e):
                    raise failed from e
                muxer = self.container.format.name
                if not muxer_takes(muxer, self.stream):  # (our own video: .ogv takes no H.264)
                    raise P3MError(
                        f"{self.name}: the {muxer} muxer cannot hold {self.stream.codec_context.name} video; "
                        "pick a --codec it takes, or use .mp4, .mov or .mkv"
                    ) from e
                # FFmpeg's generic -1 comes back as EPERM, "Operation not permitted": no reason at all.
                why = "it gives no reason" if e.errno == errno.EPERM else reason(e)
                raise P3MError(
                    f"{self.name}: the {self.container.format.name} muxer refused the source's streams "
                    f"({why}); try an .mkv output, which takes almost any stream"
                ) from e
            self.video_packets += packet.stream is self.stream

    def encode(self, vf: av.VideoFrame, frame: Frame) -> None:
        pts = frame.pts if frame.pts is not None and frame.time_base == self.time_base else None
        if pts is None and frame.time is not None:
            pts = round(frame.time / self.time_base)
        if pts is None:
            pts = frame.index
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders need strictly increasing timestamps
        self._last_pts = pts
        if self.square is not None:
            vf = vf.reformat(width=self.square[0], height=self.square[1], interpolation="BICUBIC")
        vf.pts, vf.time_base = pts, self.time_base
        self.mux(self.stream.encode(vf))
        self._frames += 1
        if self.tmp is not None and self._frames % ROOM_CHECK_EVERY == 0:
            if shutil.disk_usage(self.tmp.parent).free < LOW_ROOM:  # (MOV's muxer would not say)
                raise self._no_room(self.video_packets)

    def close(self, failed: bool = False) -> None:
        """Flush and close; safe to call twice. Then the file is moved into place, or kept as
        NAME.partial.ext where the run (or this close) failed, since it plays up to there
        but is not whole, or removed where it got no video."""
        if self.container is None:
            return
        complete = not failed
        try:
            self.mux(self.stream.encode(None))
        except BaseException:
            complete = False
            raise
        finally:
            try:
                self.container.close()
            except BaseException as e:
                complete = False
                if failed := self._stream_failed(e) or self._disk_full(e):
                    raise failed from e
                raise
            finally:
                self.container = None
                self._settle(complete)

    def _settle(self, complete: bool) -> None:
        if self.tmp is None:  # standard output or a stream: nothing to name
            return
        if self.video_packets == 0:  # the run failed or stopped before its first frame
            self.tmp.unlink(missing_ok=True)
            return
        if not complete:
            self._say_not_whole()
        elif self.tmp.exists():
            try:
                self._move_into_place()
            except P3MError:  # (found short as it was read back)
                self._say_not_whole()
                raise

    def _say_not_whole(self) -> None:
        log.warning("%s is not whole (the run stopped with an error): what was done is in %s", self.path, self.tmp)

    def _move_into_place(self) -> None:
        if self.fragmented:
            self._rewrite_plain()
        os.replace(self.tmp, self.path)

    def _rewrite_plain(self) -> None:
        """Rewrite the fragmented file as a plain one (see ``FRAGMENTED``), once it is read back
        whole: FFmpeg's MOV muxer says nothing of a full disk met as it writes the last
        fragment, so a short file is caught here. The rewrite needs room for a second copy."""
        kept = video_packets_in(self.tmp)
        free = shutil.disk_usage(self.tmp.parent).free
        if kept < self.video_packets:
            if free < MIB:
                raise self._no_room(kept)
            raise P3MError(f"{self.name} came out short: {kept} of its {self.video_packets} frames are in it")
        if free < self.tmp.stat().st_size + MIB:
            log.warning("%s stays fragmented (no room on the disk to rewrite it); it plays as it is", self.path.name)
            return
        plain = self.tmp.with_name(self.tmp.stem + "-plain" + self.tmp.suffix)
        try:
            remux(self.tmp, plain)
        except Exception as e:  # noqa: BLE001 (whatever the rewrite hit, the fragmented file plays)
            plain.unlink(missing_ok=True)
            log.warning("%s stays fragmented (rewriting it failed: %s); it plays as it is", self.path.name, e)
        else:
            os.replace(plain, self.tmp)


def composite_format(codec: str) -> str:
    """The pixel format the composite is encoded in: the encoder's first, its preferred one.
    That is 4:2:0 as the graph makes it for the usual encoders, and for the rest ProRes'
    4:2:2 10-bit, MJPEG's full-range 4:2:0 or libx264rgb's RGB."""
    formats = av.Codec(codec, "w").video_formats
    return formats[0].name if formats else "yuv420p"


def written_full_range(codec: str, pix_fmt: str, full_range: bool) -> bool:
    """Whether the composite is written in full range: the source's range, except where the
    format fixes it (yuvj is full range) or decoders know only limited range (ProRes)."""
    if pix_fmt.startswith("yuvj") or av.VideoFormat(pix_fmt).is_rgb:
        return True
    return False if codec.startswith("prores") else full_range


# Codecs whose YUV is BT.601 whatever the source's is: JPEG's (JFIF) and VP8's (its one
# colour space); their decoders say so, and players read them so.
BT601_ONLY = frozenset({"mjpeg", "vp8"})


def composite_encoding(codec: str, layout: Layout) -> tuple[str, tuple[str, bool], dict | None]:
    """How ``codec`` gets the graph's I420 composite (in ``layout``'s matrix and range): its
    pixel format, the (matrix, full range) it is written in and tagged with (the source's
    matrix; BT.601 for JPEG and VP8, see ``BT601_ONLY``), and the ``VideoFrame.reformat``
    arguments that convert the planes to it (None where they go as they are). Worked out
    once a file."""
    try:
        pix_fmt = composite_format(codec)
    except av.codec.codec.UnknownCodecError:
        return "yuv420p", (layout.matrix, layout.full_range), None  # _Encoder names the missing encoder
    full = written_full_range(codec, pix_fmt, layout.full_range)
    rgb = av.VideoFormat(pix_fmt).is_rgb
    matrix = "bt601" if av.Codec(codec, "w").canonical_name in BT601_ONLY else layout.matrix
    if pix_fmt == "yuv420p" and full == layout.full_range and matrix == layout.matrix:
        return pix_fmt, (layout.matrix, full), None
    convert = {  # (a change of matrix is made before, exactly: see FileSink.write)
        "format": pix_fmt,
        "src_colorspace": COLORSPACES[matrix],
        "dst_colorspace": COLORSPACES[matrix],
        "src_color_range": RANGES[layout.full_range],
        "dst_color_range": RANGES[full],
    }
    return pix_fmt, ("rgb" if rgb else matrix, full), convert


class FileSink(Sink):
    """The composite as an encoded file, with every audio and subtitle stream of the source
    (see :mod:`p3m_live.video.tracks`: copied where the muxer takes them, audio re-encoded
    where it does not, such subtitles left out)."""

    def __init__(
        self,
        path: Path | Target,
        layout: Layout,
        *,
        rate: Fraction | None,
        time_base: Fraction | None,
        audio_streams: Sequence = (),
        subtitle_streams: Sequence = (),
        codec: str | None = None,
        crf: int | None = None,
        preset: str | None = None,
        recording: Recording | None = None,
    ) -> None:
        target = path if isinstance(path, Target) else None
        codec = codec or ("libx264" if target is not None else VIDEO_CODECS.get(path.suffix.lower(), "libx264"))
        options = encoder_options(codec, crf, preset)
        if target is not None and target.network:  # live viewers: keyframes often, no frames held back
            options.setdefault("g", str(max(1, round(KEYFRAME_SECONDS * (rate or 30)))))
            if codec == "libx264":
                options.setdefault("tune", "zerolatency")
        pix_fmt, colour, self._convert = composite_encoding(codec, layout)
        self._matrix = colour[0] if colour[0] not in ("rgb", layout.matrix) else None  # (JPEG's, VP8's)
        self.enc = _Encoder(path, codec, pix_fmt, layout, rate, time_base, options, colour=colour, recording=recording)
        self.layout = layout
        self._tracks: dict[int, Track] = {}  # source stream index -> its track in the output
        label = f"{target.name} ({target.format})" if target is not None else path.suffix or path.name
        for src in [*audio_streams, *subtitle_streams]:
            track = open_track(self.enc.container, src, label)
            if track is not None:
                self._tracks[src.index] = track
        if target is not None and target.network:
            self.enc.connect()

    def write(self, frame: Frame, composite: np.ndarray, alpha: np.ndarray, colours: np.ndarray | None = None) -> None:
        if self._matrix is not None:
            composite = convert_matrix(composite, "i420", self.layout.matrix, self._matrix, self.layout.full_range)
        vf = av.VideoFrame.from_ndarray(composite, format="yuv420p")
        self.enc.encode(vf.reformat(**self._convert) if self._convert else vf, frame)

    def write_packet(self, packet: av.Packet) -> None:
        track = self._tracks.get(packet.stream.index)
        if track is not None:
            self.enc.mux(track.packets(packet))

    def close(self, failed: bool = False) -> None:
        if self.enc.container is None:
            return
        try:
            for track in self._tracks.values():
                self.enc.mux(track.flush())
        except BaseException:
            failed = True
            raise
        finally:
            self.enc.close(failed)


def is_image_sequence(path: Path) -> bool:
    return path.suffix.lower() == ".png" or path.suffix == "" or path.is_dir()


class PngSequence:
    """Numbered PNG files: ``FOLDER/000042.png``, ``NAME_000042.png``, a printf pattern's
    ``NAME%04d.png``, or ``NAME.png`` itself for a single picture (``single``)."""

    def __init__(self, path: Path, single: bool = False) -> None:
        self.path, self.single = path, single
        (path.parent if path.suffix.lower() == ".png" else path).mkdir(parents=True, exist_ok=True)

    def path_for(self, index: int) -> Path:
        path = self.path
        if path.suffix.lower() != ".png":
            return path / f"{index:06d}.png"
        if "%" in path.name:
            return path.with_name(path.name % index)
        return path if self.single else path.with_name(f"{path.stem}_{index:06d}.png")

    def write(self, index: int, pixels: np.ndarray) -> None:
        """Grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4) uint8 pixels as frame ``index``."""
        write_png(self.path_for(index), pixels)


class CompositePngSink(Sink):
    """The composite as PNGs (see :class:`PngSequence`): a photo's composite as NAME.png, a
    video's as numbered frames for an editor or a compositing program. No audio."""

    def __init__(self, path: Path, layout: Layout, single: bool = False) -> None:
        self.layout = layout
        self.pngs = PngSequence(path, single)

    def write(self, frame: Frame, composite: np.ndarray, alpha: np.ndarray, colours: np.ndarray | None = None) -> None:
        rgb = planes_to_rgb(composite, "i420", self.layout.matrix, self.layout.full_range)
        self.pngs.write(frame.index, rgb)


def grey_frame(grey: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """A matte (H, W) uint8 as the picture of a frame in the encoder's ``pix_fmt``: grey in
    RGB, or the luma of limited-range YUV (16 to 235, scaled to the format's depth) with
    neutral chroma and an opaque alpha plane, each code exact. (swscale's grey to 10-bit
    YUV makes 255 a 937, not a 940: read back in 8 bits, an opaque matte would be 254.)"""
    import cv2

    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb:
        return av.VideoFrame.from_ndarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGRA), format="bgra").reformat(
            format=pix_fmt
        )
    bits = fmt.components[0].bits
    dtype = np.uint8 if bits == 8 else np.dtype("<u2")
    shift = 1 << (bits - 8)
    luma = np.round((16 + np.arange(256) * 219 / 255) * shift).astype(dtype)
    h, w = grey.shape
    frame = av.VideoFrame(w, h, pix_fmt)
    for i, plane in enumerate(frame.planes):
        codes = np.frombuffer(plane, dtype).reshape(plane.height, -1)
        if i == 0:
            codes[:, :w] = cv2.LUT(grey, luma)  # (OpenCV's table takes 16-bit entries too)
        else:  # (U and V: neutral; A: opaque)
            codes[:] = 128 * shift if i < 3 else (1 << bits) - 1
    return frame


def track_colours(pix_fmt: str, layout: Layout) -> tuple[str, bool]:
    """The (matrix, full range) an editor's track is written and tagged in: RGB as it is,
    YUV in limited range with the source's matrix (BT.709 for HD, as players read an
    untagged HD file): the graph's colours are RGB, and swscale's default (BT.601, untagged)
    showed an HD track's reds and greens 14 to 24 levels off."""
    return ("rgb", True) if av.VideoFormat(pix_fmt).is_rgb else (layout.matrix, False)


class MatteSink(Sink):
    """A matte track (``kind="alpha"``: the alpha as grey) or a foreground track
    (``kind="fg"``: the person's colours with the alpha as a real alpha channel). The
    colours are those the frame graph estimated (``colours``: no tint of the old background
    at soft edges, see ``FrameGraph.foreground_track``)."""

    def __init__(
        self,
        path: Path,
        kind: str,
        layout: Layout,
        *,
        rate: Fraction | None,
        time_base: Fraction | None,
        recording: Recording | None = None,
        single: bool = False,
        paired: bool = False,
    ) -> None:
        """``single``: the source is one picture, so ``NAME.png`` is written as it is named.
        ``paired``: the matte has an output of its own, so a foreground track in an ordinary
        video (.mp4) holds the colours alone, as Robust Video Matting writes its pair."""
        self.kind, self.layout, self.path = kind, layout, path
        self.colours_only = False
        self.enc: _Encoder | None = None
        self.pngs = PngSequence(path, single) if is_image_sequence(path) else None
        if self.pngs is not None:
            return
        suffix = path.suffix.lower()
        if suffix in ALPHA_CODECS:
            codec, pix_fmt, options = ALPHA_CODECS[suffix]
        elif suffix in VIDEO_CODECS and (kind == "alpha" or paired):
            codec = VIDEO_CODECS[suffix]
            options = ENCODER_OPTIONS[codec]
            pix_fmt = "yuv420p"  # a grey luma matte, or the colours alone, in an ordinary video
            self.colours_only = kind == "fg"
        else:
            pair = ", or add --alpha-out for the matte beside the colours alone" if suffix in VIDEO_CODECS else ""
            raise P3MError(f"{path.name} cannot carry an alpha channel; {WITH_ALPHA}{pair}")
        if recording is not None:  # (fonts and cover art belong with the composite and its subtitles)
            recording = dataclasses.replace(recording, attachments=())
        self.colour = track_colours(pix_fmt, layout)
        self.enc = _Encoder(
            path, codec, pix_fmt, layout, rate, time_base, dict(options), colour=self.colour, recording=recording
        )

    def _pixels(self, frame: Frame, alpha: np.ndarray, colours: np.ndarray | None) -> np.ndarray:
        if self.kind == "alpha":
            return alpha
        assert colours is not None, "a foreground track takes the frame graph's colours (GraphSpec.foreground_track)"
        return colours if self.colours_only else np.concatenate([colours, alpha[..., None]], axis=2)

    def write(self, frame: Frame, composite: np.ndarray, alpha: np.ndarray, colours: np.ndarray | None = None) -> None:
        px = self._pixels(frame, alpha, colours)
        if self.pngs is not None:
            self.pngs.write(frame.index, px)
            return
        assert self.enc is not None
        pix_fmt = self.enc.stream.pix_fmt
        if px.ndim == 2:
            self.enc.encode(grey_frame(px, pix_fmt), frame)
            return
        vf = av.VideoFrame.from_ndarray(px, format="rgba" if px.shape[2] == 4 else "rgb24")
        matrix, full = self.colour
        if matrix != "rgb":  # (converted here, in the matrix the stream is tagged with)
            vf = vf.reformat(format=pix_fmt, dst_colorspace=COLORSPACES[matrix], dst_color_range=RANGES[full])
        self.enc.encode(vf, frame)

    def close(self, failed: bool = False) -> None:
        if self.enc is not None:
            self.enc.close(failed)


CameraFactory = Callable[..., object]

V4L2_HINT = (
    "load the v4l2loopback module: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
    'card_label="p3m-live" (package v4l2loopback-dkms)'
)
OBS_HINT = "install OBS Studio 26 or newer and click Start Virtual Camera once, then stop it and close OBS"


def virtual_camera_hint(system: str = sys.platform) -> str:
    return V4L2_HINT if system.startswith("linux") else OBS_HINT


class VirtualCamSink(Sink):
    """The composite as a virtual camera (pyvirtualcam), fed I420 straight from the graph."""

    def __init__(
        self, layout: Layout, fps: float, device: str | None = None, camera_factory: CameraFactory | None = None
    ) -> None:
        if camera_factory is None:
            try:
                import pyvirtualcam
            except ImportError as e:
                raise P3MError("the virtual camera needs pyvirtualcam: pip install 'p3m-live[cam]'") from e
            camera_factory = pyvirtualcam.Camera
            fmt = pyvirtualcam.PixelFormat.I420
        else:
            fmt = "I420"
        try:
            self.camera = camera_factory(layout.width, layout.height, fps, fmt=fmt, device=device)
        except RuntimeError as e:
            raise P3MError(f"no virtual camera device ({str(e).splitlines()[0]}); {virtual_camera_hint()}") from e
        log.info(
            "virtual camera: %s, %dx%d at %g fps", getattr(self.camera, "device", "?"), layout.width, layout.height, fps
        )

    def write(self, frame: Frame, composite: np.ndarray, alpha: np.ndarray, colours: np.ndarray | None = None) -> None:
        try:
            self.camera.send(composite)
        except (RuntimeError, OSError) as e:  # the device went away mid-call (module unloaded, OBS closed)
            raise P3MError(
                f"the virtual camera stopped taking frames ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                f"start it again, then p3m-live: {virtual_camera_hint()}"
            ) from e

    def close(self, failed: bool = False) -> None:
        try:
            self.camera.close()
        except (RuntimeError, OSError) as e:
            log.warning("the virtual camera did not close cleanly (%s)", e)
