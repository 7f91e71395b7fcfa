"""Where frames come from: files, network streams, webcams, images, with PyAV (the
devices themselves, cameras and microphones, are found in :mod:`.devices`).

A source opens, decodes its first frame (so the run knows the frame size and
format before any backend or sink opens), and then yields, in decode order,
:class:`~p3m_live.video.frames.Frame` objects and the audio packets to copy.
Decoding uses FFmpeg's own threads (frame and slice threads for files, slice threads
alone for live sources, which must hold no frame back); the pipeline runs the source
in a thread of its own.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation

from ..errors import P3MError, reason
from .deinterlace import Deinterlacer, is_interlaced
from .frames import (
    IMAGE_SUFFIXES,
    Frame,
    Layout,
    frame_from_av,
    image_files,
    image_pattern,
    layout_of,
    letterbox,
    matrix_of,
    read_rgb,
    run_colours,
    scaled_size,
)
from .hdr import REFERENCE_WHITE, tone_mapper_for
from .recording import Recording
from .splices import Splices, has_joins
from .timecodes import doubled_timecode

log = logging.getLogger("p3m_live")

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "rtp://", "srt://", "tcp://")
NETWORK_SCHEMES = (*LIVE_SCHEMES, "http://", "https://")

Item = Frame | av.Packet
AVFMT_NOTIMESTAMPS = 0x80  # FFmpeg's flag for formats without timestamps (raw .h264, .hevc)
# Reading to --start without a search: video is decoded from the last keyframe this long
# before the start (packets before it are only demuxed), enough for any frame reordering.
LEAD = 1.0
SKIP_UNFLAGGED = 2000  # packets with no keyframe flag seen: the demuxer sets none, so decode them all
# Cameras are read without blocking (FFmpeg's AVFMT_FLAG_NONBLOCK, added to its defaults):
# a camera with no frame ready says "try again" (EAGAIN), where a blocking read of one that
# stalls (a USB hiccup, a driver that stops) would hang for good, out of reach of any timeout.
NONBLOCK = "+4"
POLL = 0.002  # seconds between tries while a camera has no frame ready
STALL = 4.0  # seconds without a frame before a camera is given up and reopened
FIRST_FRAME = 10.0  # ... and for its first frame (auto exposure can take seconds)
PIPES = ("-", "pipe:", "pipe:0")  # standard input
PIPE = "standard input"  # its name in messages
PIPE_HINT = (
    "through a pipe, MP4 and MOV need their index at the front (ffmpeg -movflags +faststart) or fragments, "
    "while MKV and MPEG-TS go as they are; or give the file's path instead of -"
)


class Source:
    """Base of every source: first frame, layout and timing known after opening."""

    name: str = "source"
    live: bool = False
    paced: bool = True  # frames arrive in real time by themselves (cameras, streams), not as fast as decoding
    rate: Fraction | None = None  # nominal frame rate
    time_base: Fraction | None = None
    total_frames: int | None = None
    audio_streams: Sequence = ()  # the source's audio streams to copy (AVSource fills them)
    subtitle_streams: Sequence = ()  # and its subtitle streams
    recording: Recording = Recording()  # its metadata, timecode, chapters, attachments: kept in outputs
    still: bool = False  # one photo (ImageSource): its outputs are single files, named as given
    layout: Layout

    def items(self) -> Iterator[Item]:
        raise NotImplementedError

    def adopt(self, layout: Layout) -> str | None:
        """Give frames in ``layout`` from now on (a stream reopened at another size: the run's
        graph and outputs are fixed), or say why that cannot be done."""
        return "its frames cannot be converted"

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the file, device or connection."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def require_input_format(name: str | None, option: str) -> None:
    """A one-line error for an input format (``option``'s) this FFmpeg does not have, where
    PyAV would raise a ValueError."""
    if name is None:
        return
    try:
        av.ContainerFormat(name, "r")  # (what av.open looks up: aliases such as v4l2 too)
    except ValueError:
        raise P3MError(
            f"this FFmpeg has no {name!r} input format; check {option} (`ffmpeg -demuxers` lists them)"
        ) from None


class AVSource(Source):
    """Anything FFmpeg demuxes: files, network streams, capture devices, lavfi graphs."""

    def __init__(
        self,
        url: str,
        *,
        format: str | None = None,
        options: dict[str, str] | None = None,
        live: bool = False,
        audio: bool = True,
        name: str | None = None,
        short_side: int | None = None,
        start: float = 0.0,
        duration: float | None = None,
        deinterlace: str = "auto",
        stall: float | None = None,
        camera: bool = False,
    ) -> None:
        """``short_side``: scale frames down to it (see :func:`scaled_size`) as they are
        decoded, before any conversion, so the rest of the run works on the smaller frame.
        ``start``, ``duration`` (seconds): only that part of a file, with its timestamps (video
        and audio) moved to start at 0. ``deinterlace``: interlaced video becomes a frame per
        frame ("auto"), a frame per field ("field", twice the rate), or is left ("off").
        ``stall`` (a capture device): read it without blocking, and fail (P3MError) after that
        many seconds without a frame, so that live mode reopens it. ``camera``: a webcam,
        whose untagged frames are BT.601 at any size (UVC's default matrix), not BT.709 from
        720p up as an untagged file's are taken."""
        self.name = name or url
        self.camera = camera
        self._deinterlace = deinterlace
        self.live = live
        # A file read as a live source (say, a clip played into the virtual camera) must
        # be paced to its timestamps; devices and streams pace themselves. So does a lavfi
        # graph only with FFmpeg's realtime filter in it; without, it is paced here too.
        self.paced = (format is not None and format != "lavfi") or url.startswith(NETWORK_SCHEMES)
        options = dict(options or {})
        if stall is not None:
            options["fflags"] = NONBLOCK
        require_input_format(format, "--format")
        try:
            self.container = av.open(url, format=format, options=options, timeout=(10.0, 10.0))
        except FileNotFoundError as e:
            raise P3MError(f"{self.name}: no such file or device; check the path") from e
        except (av.error.FFmpegError, OSError) as e:
            why = reason(e)
            raise P3MError(f"{self.name} cannot be opened as video ({why}); is it a video file or stream?") from e
        if not self.container.streams.video:
            self.close()
            raise P3MError(f"{self.name} has no video stream; give a video file, a camera or a stream")
        # FFmpeg's pick, not the first: a cover picture or a low-rate proxy can come first.
        self.video = self.container.streams.best("video") or self.container.streams.video[0]
        if self.name == PIPE and self.video.codec_context.pix_fmt is None:  # an MP4 whose index comes last
            self.close()
            raise P3MError(f"{self.name}: the video cannot be read as it arrives; {PIPE_HINT}")
        # Frame threads hold a frame back each (thread_count - 1 frames: 16 on a 16-core
        # machine, half a second of a call); a live source decodes with slice threads only.
        self.video.thread_type = "SLICE" if live else "AUTO"
        self.audio_streams = []
        for a in self.container.streams.audio if audio else []:  # (cameras have none; files and streams do)
            if a.codec_context is None:  # an audio codec FFmpeg does not know: it cannot be copied either
                log.warning("%s: audio stream %d has an unknown codec; it is left out", self.name, a.index)
            else:
                self.audio_streams.append(a)
        subtitles = [] if live or not audio else self.container.streams.subtitles
        self.subtitle_streams = [t for t in subtitles if t.codec_context is not None]
        self.time_base = self.video.time_base
        rate = self.video.average_rate or self.video.guessed_rate
        self._stream_rate = Fraction(rate) if rate else None  # (self.rate is the output's: twice it at field rate)
        self.rate = self._stream_rate
        self.total_frames = self.video.frames or None
        length = self.container.duration / av.time_base if self.container.duration else None
        if not self.total_frames and length and self.rate:
            self.total_frames = int(length * self.rate)
        self._start, self._end = start, (start + duration if duration else None)
        self.recording = Recording.of(self.container, self.video).part(start, self._end, self.rate)
        if start or duration:
            self._trim(length)
        self._pending: list[Item] = []
        self._deinterlacer: Deinterlacer | None = None
        self._untimed = 0  # frames decoded without a timestamp
        self._index = 0
        self._ended: float | None = None  # where the newest frame ends (seconds)
        streams = [self.video, *self.audio_streams, *self.subtitle_streams]
        container = self.container
        if stall is None:
            self._demux = container.demux(*streams)
        else:  # (a camera read without blocking)
            self._demux = _waiting(lambda: container.demux(*streams), stall, self.name)
        if has_joins(self.container):  # MPEG-TS/PS: parts joined end to end go on one clock
            self._demux = _mended(self._demux, Splices(streams, self.name))
        if start and not self._searchable() and not self.container.format.flags & AVFMT_NOTIMESTAMPS:
            self._demux = _from_keyframe_before(self._demux, self.video, start - LEAD)
        first = self._first_video_frame()
        if self._when(first.pts, first.time_base) > 0:
            self.close()
            raise P3MError(
                f"--start {start:g} --duration {duration:g} holds no frame of {self.name} (its first frame after "
                f"{start:g} s is at {float(first.pts * first.time_base):.3f} s); make the part longer"
            )
        if self._deinterlacer is not None and self._deinterlacer.fields:
            self._at_field_rate()
        layout_of(first)  # a frame too small fails here, named by its own size
        self._size = scaled_size(first.width, first.height, short_side)
        if self._size != (first.width, first.height):
            log.info("%s: scaling %dx%d frames down to %dx%d", self.name, first.width, first.height, *self._size)
        self.tone_mapper = tone_mapper_for(first)
        if self.tone_mapper:
            log.info(
                "%s is HDR video (%s): tone-mapping it to SDR BT.709 (peak %d nits, reference white %d nits)",
                self.name,
                self.tone_mapper.name,
                round(self.tone_mapper.peak * REFERENCE_WHITE),
                REFERENCE_WHITE,
            )
        rotation = first.rotation
        first = self._prepare(first)
        self.layout = layout_of(first, rotation, self.video.sample_aspect_ratio, live)
        self._first = first

    def _at_field_rate(self) -> None:
        """A frame per field: twice the frames and the rate, the deinterlacer's time base, and
        the timecode counted at the new rate."""
        tc, rate = self.recording.timecode, self.rate
        if rate:
            self.rate = rate * 2
            if tc:
                self.recording = dataclasses.replace(self.recording, timecode=doubled_timecode(tc, rate))
        self.total_frames = self.total_frames * 2 if self.total_frames else None
        self.time_base = self._deinterlacer.time_base

    def _trim(self, length: float | None) -> None:
        """Seek to the keyframe before ``start`` (the frames before it are decoded and
        dropped; an input that cannot be searched is read from its start) and count the
        frames of the part."""
        if length is not None and self._start >= length:
            self.close()
            raise P3MError(f"--start {self._start:g} is past the end of {self.name} ({length:.1f} s); start earlier")
        if self._start:
            if not self._searchable():
                log.info("%s cannot be searched by time: reading it from the start to %gs", self.name, self._start)
                return
            try:
                self.container.seek(int(self._start * av.time_base), backward=True)
            except av.error.FFmpegError as e:
                self.close()
                raise P3MError(f"{self.name} cannot be searched for --start ({reason(e)}); cut it first") from e
        if self.rate:
            end = min(self._end, length) if self._end and length else (self._end or length)
            self.total_frames = int((end - self._start) * self.rate) if end else None

    def _searchable(self) -> bool:
        """Whether a seek can find a time: not in a raw stream without timestamps (.h264),
        where FFmpeg's seek fails after reading on, nor in a pipe, which cannot go back, nor
        in MPEG-TS/PS, where joined parts repeat each other's times and a search lands in
        whichever part FFmpeg's bisection finds."""
        flags = self.container.format.flags
        return not (flags & AVFMT_NOTIMESTAMPS or has_joins(self.container) or self.name == PIPE)

    def _when(self, pts: int | None, time_base: Fraction | None) -> int:
        """-1 before the part asked for, 0 in it, 1 after it (unknown times count as in it;
        without --start, everything before the end, AAC's priming at negative times too)."""
        if pts is None or time_base is None:
            return 0
        t = float(pts * time_base)
        if self._start and t < self._start - 1e-6:
            return -1
        return 1 if self._end is not None and t >= self._end - 1e-6 else 0

    def _copy_when(self, packet: av.Packet) -> int:
        """``_when`` for a packet to copy. A subtitle cue still showing where the part starts
        or ends is in it, cut to the part (its time and duration moved in)."""
        tb = packet.time_base
        if packet.stream.type != "subtitle" or not packet.duration or packet.pts is None or tb is None:
            return self._when(packet.pts, tb)
        begin, end = float(packet.pts * tb), float((packet.pts + packet.duration) * tb)
        last = self._end if self._end is not None else math.inf
        if end <= self._start + 1e-6:
            return -1
        if begin >= last - 1e-6:
            return 1
        if begin < self._start or end > last:
            cut_begin, cut_end = round(max(begin, self._start) / tb), round(min(end, last) / tb)
            packet.pts = packet.dts = cut_begin
            packet.duration = cut_end - cut_begin
        return 0

    def _shifted(self, packet: av.Packet) -> av.Packet:
        """An audio or subtitle packet with its timestamps moved by ``start``."""
        if self._start:
            shift = round(self._start / packet.time_base)
            packet.pts = packet.pts - shift if packet.pts is not None else None
            packet.dts = packet.dts - shift if packet.dts is not None else None
        return packet

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        """The packet's frames, progressive (see :mod:`~p3m_live.video.deinterlace`), less
        those before ``start`` (a seek lands on a keyframe)."""
        try:
            frames = packet.decode()
        except av.error.InvalidDataError as e:
            log.warning("%s: skipped a damaged packet (%s)", self.name, reason(e))
            return []
        rate = self._stream_rate
        first = frames and self._deinterlacer is None and self._index == 0
        if first and self._deinterlace != "off" and is_interlaced(frames[0]):
            fields = self._deinterlace == "field"
            each = "a frame per field, at twice the rate" if fields else "a frame per frame"
            log.info("%s is interlaced: deinterlacing it as it is decoded (bwdif, %s)", self.name, each)
            self._deinterlacer = Deinterlacer(self.video, rate, fields)
        for f in frames:
            if f.pts is None and rate:  # a raw stream (.h264): no timestamps, so timed at its rate
                f.pts, f.time_base = round(self._untimed / rate / self.video.time_base), self.video.time_base
                self._untimed += 1
        if self._deinterlacer is not None:
            frames = [out for f in frames for out in self._deinterlacer.push(f)]
        return self._not_before(frames)

    def _flushed(self) -> list[av.VideoFrame]:
        """The deinterlacer's last frame at the end of the video (nothing for progressive video)."""
        return self._not_before(self._deinterlacer.flush() if self._deinterlacer is not None else [])

    def _not_before(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        """``frames`` less those before ``start``."""
        return [f for f in frames if self._when(f.pts, f.time_base) >= 0]

    def _first_video_frame(self) -> av.VideoFrame:
        try:
            for packet in self._demux:
                if packet.stream is self.video:
                    frames = self._decode(packet)
                    if frames:
                        self._pending.extend(frames[1:])
                        return frames[0]
                elif packet.dts is not None and self._copy_when(packet) == 0:
                    self._pending.append(self._shifted(packet))
            frames = self._flushed()  # one interlaced frame in all
            if frames:
                return frames[0]
        except av.error.FFmpegError as e:
            self.close()
            raise P3MError(f"{self.name}: cannot decode video ({reason(e)}); the file may be damaged") from e
        except P3MError:  # a camera that gives no frame
            self.close()
            raise
        self.close()
        if self._start:  # a file that does not say how long it is
            raise P3MError(f"--start {self._start:g} is past the end of {self.name}; start earlier")
        raise P3MError(f"{self.name}: no video frame could be decoded; the file is empty or damaged")

    def _prepare(self, f: av.VideoFrame) -> av.VideoFrame:
        """Tagged BT.601 if a camera's and untagged, scaled down (if asked; 10-bit stays
        10-bit, so tone mapping works on fewer pixels), then tone-mapped (HDR)."""
        if self.camera and int(f.colorspace or 2) == 2:  # (2: unspecified)
            f.colorspace = 5  # BT.601 (AVCOL_SPC_BT470BG)
        if (f.width, f.height) != self._size:
            f = f.reformat(width=self._size[0], height=self._size[1], interpolation=Interpolation.AREA)
        return self.tone_mapper(f) if self.tone_mapper else f

    def _frame(self, f: av.VideoFrame) -> Frame:
        if f is not self._first:
            f = self._prepare(f)
        frame = frame_from_av(f, self.layout, self._index)
        if f.pts is not None and f.time_base is not None and self.rate:  # (a frame's own duration: VFR)
            self._ended = float((f.pts + f.duration) * f.time_base) if f.duration else f.time + 1 / float(self.rate)
        if self._start and frame.pts is not None and frame.time_base is not None:
            frame.pts -= round(self._start / frame.time_base)
        self._index += 1
        return frame

    def items(self) -> Iterator[Item]:
        yield self._frame(self._first)
        video_done, audio_done = False, set()
        for item in self._pending:
            if isinstance(item, av.VideoFrame):
                video_done = video_done or self._when(item.pts, item.time_base) > 0
                if not video_done:
                    yield self._frame(item)
            else:
                yield item
        self._pending = []
        try:
            for packet in self._demux:
                if packet.stream is self.video:
                    for f in [] if video_done else self._decode(packet):
                        video_done = video_done or self._when(f.pts, f.time_base) > 0
                        if not video_done:
                            yield self._frame(f)
                elif packet.dts is not None:  # flush packets (no data) are not copied
                    when = self._copy_when(packet)
                    if when == 0:
                        yield self._shifted(packet)
                    elif when > 0 and packet.stream.type == "audio":
                        audio_done.add(packet.stream.index)
                if video_done and len(audio_done) == len(self.audio_streams):
                    # Past the end in the video and every audio stream (audio interleaves a little
                    # behind video). Subtitles are not waited for: a sparse stream may have no
                    # cue after the end, which would hold the reading to the end of the file.
                    return
        except av.error.EOFError:
            pass
        except av.error.FFmpegError as e:
            if self._index == 0:
                raise P3MError(f"{self.name}: cannot decode video ({reason(e)})") from e
            log.warning("%s: stopped reading after %d frames (%s)", self.name, self._index, reason(e))
        for f in [] if video_done else self._flushed():
            if self._when(f.pts, f.time_base) == 0:
                yield self._frame(f)
        self._check_whole()

    def _check_whole(self) -> None:
        """Say so where a file's own account of its video goes on past where its data ends (a
        cut copy, an unfinished download), which FFmpeg reads as an ordinary end."""
        if self._start or self._end or self.live or self._ended is None or not self.rate:
            return
        listed = listed_end(self.container, self.video)
        if listed is None:
            return
        end, where = listed
        if end - self._ended > max(2 / float(self.rate), 0.1):
            log.warning(
                "%s ends at %.1f s of the %.1f s its %s lists: the file is cut short (an unfinished "
                "copy or download?); the output has the %d frames there are",
                self.name,
                self._ended,
                end,
                where,
                self._index,
            )

    def adopt(self, layout: Layout) -> str | None:
        """Frames are converted to ``layout`` as they are decoded (scaled, and to its pixel
        format), where only the size or format differs: not another shape or turn, which
        scaling would distort, nor another YUV matrix or range."""
        own = self.layout
        if own.rotation != layout.rotation:
            return f"it is turned {own.rotation} degrees, not {layout.rotation}"
        if abs(own.width * layout.height - layout.width * own.height) > 0.01 * own.height * layout.width:
            return "its frames have another shape"
        if (own.matrix, own.full_range) != (layout.matrix, layout.full_range):
            return "its colours are in another YUV matrix or range"
        self.layout = layout
        return None

    def close(self) -> None:
        container = getattr(self, "container", None)
        if container is not None:
            container.close()
            self.container = None


def listed_end(container: av.container.InputContainer, video: av.VideoStream) -> tuple[float, str] | None:
    """Where a file says its video ends (seconds), and where it says so, read before its
    data: an MP4's or MOV's index (the video track's duration, cut to its edit list as
    FFmpeg plays it), or a Matroska or WebM video track's DURATION tag (FFmpeg and mkvmerge
    write one); None where it does not say. Not the container's duration, which is the
    longest stream's: sound that runs on past the picture is no missing video."""
    muxers = container.format.name.split(",")
    if "mov" in muxers and video.duration:
        return float((video.duration + (video.start_time or 0)) * video.time_base), "index"
    if "matroska" in muxers or "webm" in muxers:
        tag = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", video.metadata.get("DURATION", "").strip())
        if tag:
            return int(tag[1]) * 3600 + int(tag[2]) * 60 + float(tag[3]), "header"
    return None


def _waiting(demux: Callable[[], Iterator[av.Packet]], stall: float, name: str) -> Iterator[av.Packet]:
    """The packets of a device read without blocking (see ``NONBLOCK``), waited for: each
    "try again" is a short sleep and a new ``demux()`` (PyAV's generator ends at an error;
    the device and decoder go on). ``stall`` seconds without a packet (``FIRST_FRAME`` before
    the first) is a P3MError naming the stall."""
    packets, limit, last = demux(), FIRST_FRAME, time.monotonic()
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.BlockingIOError:
            waited = time.monotonic() - last
            if waited > limit:
                raise P3MError(f"{name} sent no frame for {waited:.1f} s (stalled)") from None
            time.sleep(POLL)
            packets = demux()
            continue
        limit, last = stall, time.monotonic()
        yield packet


def _from_keyframe_before(packets: Iterator[av.Packet], video: av.stream.Stream, until: float) -> Iterator[av.Packet]:
    """``packets`` read from the start of an input that cannot be searched, less the video
    packets before the last keyframe before ``until`` seconds: those are demuxed, not
    decoded, so a part an hour into a recording starts in seconds, not minutes. (The other
    streams' packets pass; what is before the part is dropped later, as with a search.)"""
    gop: list[av.Packet] = []  # the video packets since the last keyframe
    keyframes = False
    for packet in packets:
        if packet.stream is not video or packet.dts is None:
            yield packet
            continue
        if packet.dts * packet.time_base >= until or (not keyframes and len(gop) >= SKIP_UNFLAGGED):
            yield from gop
            yield packet
            break
        if packet.is_keyframe:
            gop, keyframes = [], True
        gop.append(packet)
    yield from packets


def _mended(packets: Iterator[av.Packet], splices: Splices) -> Iterator[av.Packet]:
    """``packets`` on one clock across joins (see :mod:`~p3m_live.video.splices`)."""
    for packet in packets:
        if packet.dts is None or splices.mend(packet):
            yield packet


class ImageSource(Source):
    """One image, or a folder of images in name order, as frames at ``rate`` fps."""

    def __init__(
        self,
        path: Path,
        rate: Fraction = Fraction(25),
        short_side: int | None = None,
        start: float = 0.0,
        duration: float | None = None,
        live: bool = False,
    ) -> None:
        """``start`` and ``duration`` (seconds at ``rate``) pick a part of a sequence; ``live``:
        the composite is in the live colours (see :func:`~p3m_live.video.frames.run_colours`)."""
        self.name = str(path)
        self.paths = image_files(path)
        first_index = math.ceil(start * rate - 1e-6)
        if first_index >= len(self.paths):
            length = len(self.paths) / rate
            raise P3MError(f"--start {start:g} is past the end of {path} ({length:.1f} s at {rate} fps); start earlier")
        count = math.ceil(duration * rate - 1e-6) if duration else len(self.paths)
        self.paths = self.paths[first_index : first_index + count]
        self.rate = rate
        self.paced = False
        self.time_base = 1 / rate
        self.total_frames = len(self.paths)
        self.still = len(self.paths) == 1
        first = self._read(self.paths[0])
        h, w = first.shape[:2]
        if w < 2 or h < 2:
            raise P3MError(f"{self.paths[0]} is {w}x{h}: images must be at least 2x2 pixels")
        sw, sh = scaled_size(w, h, short_side)
        matrix, full = run_colours("rgb", matrix_of(2, sw, sh), True, live)  # (2: untagged)
        self.layout = Layout(sw - sw % 2, sh - sh % 2, "rgb", full, matrix)
        self._scaled = (sw, sh) != (w, h)
        self._first_shape = (h, w)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        img = read_rgb(path)
        if img is None:
            raise P3MError(f"{path} cannot be read as an image; is it a damaged or unsupported file?")
        return img

    def items(self) -> Iterator[Item]:
        import cv2

        w, h = self.layout.width, self.layout.height
        for i, path in enumerate(self.paths):
            img = read_rgb(path)
            if img is None:  # like a damaged packet in a video: skipped, and the run goes on
                log.warning("skipped %s: it cannot be read as an image", path)
                continue
            if img.shape[:2] == self._first_shape and self._scaled:  # --downscale
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            elif img.shape[:2] == self._first_shape:  # odd sides lose their last row or column
                img = img[:h, :w]
            elif img.shape[:2] != (h, w):  # another photo's size or orientation: whole, on black
                img = letterbox(img, w, h)
            yield Frame(np.ascontiguousarray(img), "rgb", i, self.time_base, i)


def open_source(
    spec: str,
    *,
    format: str | None = None,
    live: bool | None = None,
    rate: Fraction | None = None,
    options: dict[str, str] | None = None,
    short_side: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    deinterlace: str = "auto",
    camera: bool = False,
) -> Source:
    """A file, a folder or image, a stream URL, or anything FFmpeg reads with ``format``
    (``camera``: a capture device, see :class:`AVSource`);
    ``short_side`` scales larger frames down (see :func:`~p3m_live.video.frames.scaled_size`);
    ``start`` and ``duration`` pick a part of a file or an image sequence; ``deinterlace``
    as for :class:`AVSource`."""
    is_url = spec.startswith(NETWORK_SCHEMES)
    piped = spec in PIPES
    if format is None and not is_url and not piped:
        path = Path(spec)
        images = path.suffix.lower() in IMAGE_SUFFIXES
        pattern = images and image_pattern(path) is not None  # render_%04d.png names files, not itself
        if not pattern and not path.exists():
            raise P3MError(f"input not found: {spec}")
        if path.is_dir() or images:
            return ImageSource(path, rate or Fraction(25), short_side, start, duration, live=bool(live))
    if live is None:
        live = spec.startswith(LIVE_SCHEMES)
    opts = dict(options or {})
    if spec.startswith(("rtsp://", "rtsps://")):
        opts.setdefault("rtsp_transport", "tcp")
    if live and is_url:
        opts.setdefault("fflags", "nobuffer")  # hand frames on as they arrive; the mailbox drops late ones
    trim = {} if live else {"start": start, "duration": duration}  # live: --duration is run time
    common = {
        "format": format, "options": opts, "live": live, "short_side": short_side, "deinterlace": deinterlace,
        "camera": camera,
    }  # fmt: skip
    if piped:  # ... | p3m-live - -o out.mp4
        return AVSource("pipe:0", name=PIPE, **common, **trim)
    return AVSource(spec, **common, **trim)
