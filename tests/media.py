"""Real media for the tests, made with PyAV: moving shapes, a tone, variable frame rates, rotation;
and a real TCP server that takes a stream."""

from __future__ import annotations

import socket
import struct
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def shapes_frame(i: int, width: int, height: int) -> np.ndarray:
    """A deterministic RGB frame: a gradient with a disc that moves with ``i``."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = (xx * 255 // max(width - 1, 1)).astype(np.uint8)
    img[..., 1] = (yy * 255 // max(height - 1, 1)).astype(np.uint8)
    img[..., 2] = 96
    cx, cy = (i * 3) % width, height // 2
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(width, height) // 4) ** 2
    img[disc] = (250, 230, 200)
    return img


def make_clip(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (96, 64),
    rate: int = 25,
    audio_rate: int | None = 16000,
    audio_codec: str = "aac",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio_onset: float = 0.0,
    gop: int | None = None,
    timecode: str | None = None,
    audio_layout: str = "mono",
    sar: Fraction | None = None,
    clock: float = 0.0,
    audio_tail: float = 0.0,
) -> Path:
    """Encode a clip; ``pts`` (in ``time_base``) gives variable frame timing; the tone starts
    ``audio_onset`` seconds in (silence before), to measure audio against video; ``gop``: a
    keyframe every so many frames (default: the encoder's); ``timecode``: the first frame's;
    ``clock``: seconds the file's clock starts at (a broadcast's or another camera's);
    ``audio_tail``: seconds the sound goes on after the last frame."""
    w, h = size
    with av.open(str(path), "w", options={"output_ts_offset": str(clock)} if clock else {}) as out:
        v = out.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            v.options = {"preset": "ultrafast", "crf": "10"}
        if gop:
            v.codec_context.gop_size = gop  # a keyframe every ``gop`` frames
        if timecode:
            v.metadata["timecode"] = timecode  # MOV and MP4 make a timecode track of it
        if sar:
            v.codec_context.sample_aspect_ratio = sar  # anamorphic pixels (DV, DVD, HDV)
        tb = time_base or Fraction(1, rate)
        v.time_base = tb
        v.codec_context.time_base = tb
        if rotation:
            v.set_display_rotation(rotation)
        a = None
        if audio_rate:
            a = out.add_stream(audio_codec, rate=audio_rate)
            a.layout = audio_layout  # (the mono tone is upmixed by the encoder's resampler)
        video = []
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(shapes_frame(i, w, h), format="rgb24")
            f.pts = pts[i] if pts is not None else i
            f.time_base = tb
            video.append(f)
        encode_all(out, v, video)
        if a is not None:
            duration = (frames / rate if pts is None else float((pts[-1] + 1) * tb)) + audio_tail
            n = int(duration * audio_rate)
            t = np.arange(n) / audio_rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t) * (t >= audio_onset)).astype(np.float32)
            audio = []
            for start in range(0, n, 1024):
                chunk = tone[start : start + 1024][None]
                fmt = "fltp" if audio_codec in ("aac", "libopus") else "s16"
                if fmt == "s16":
                    chunk = (chunk * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
                af.sample_rate = audio_rate
                af.pts = start
                audio.append(af)
            encode_all(out, a, audio)
    return path


def encode_all(out: av.container.OutputContainer, stream, frames) -> None:
    """Encode ``frames`` into ``stream`` and mux the packets, then flush the encoder."""
    for f in [*frames, None]:
        for p in stream.encode(f):
            out.mux(p)


def probe(path: Path) -> dict:
    """Frame times, size, rotation and audio packets of a file, decoded with PyAV."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times, rotations, sizes = [], set(), set()
        for f in c.decode(v):
            times.append(f.time)
            rotations.add(f.rotation)
            sizes.add((f.width, f.height))
    with av.open(str(path)) as c:
        audio = [(p.pts, p.duration, bytes(p)) for s in c.streams.audio for p in c.demux(s) if p.size]
        audio_codec = c.streams.audio[0].codec_context.name if c.streams.audio else None
    return {"times": times, "rotations": rotations, "sizes": sizes, "audio": audio, "audio_codec": audio_codec}


def fields_frame(i: int, width: int = 96, height: int = 64) -> np.ndarray:
    """Frame ``i`` of an interlaced camera filming a disc moving right: its even rows see the
    disc at time i, its odd rows half a frame later, 4 pixels on (the comb teeth of motion)."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 2] = 96
    for parity, t in ((0, i), (1, i + 0.5)):
        disc = ((xx - 20 - 8 * t) ** 2 + (yy - height // 2) ** 2 < (height // 4) ** 2) & (yy % 2 == parity)
        img[disc] = (250, 230, 200)
    return img


def make_interlaced_clip(path: Path, frames: int = 8, size: tuple[int, int] = (96, 64)) -> Path:
    """Interlaced H.264 (top field first, coded as fields), as camcorders record it."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = *size, "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "10", "flags": "+ilme+ildct", "x264-params": "tff=1"}
        video = []
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(fields_frame(i, *size), format="rgb24")
            f.pts = i
            video.append(f)
        encode_all(out, v, video)
    return path


def write_heic(path: Path, rgb: np.ndarray) -> Path:
    """``rgb`` as a HEIC photo, as iPhones take them (pillow-heif's libheif and x265)."""
    import pillow_heif

    h, w = rgb.shape[:2]
    pillow_heif.from_bytes(mode="RGB", size=(w, h), data=np.ascontiguousarray(rgb).tobytes()).save(
        str(path), quality=95
    )
    return path


def raw_h264(clip: Path, path: Path) -> Path:
    """``clip``'s H.264 video as a raw Annex B stream (.h264): no container, no timestamps."""
    from av.bitstream import BitStreamFilterContext

    with av.open(str(clip)) as inp, av.open(str(path), "w", format="h264") as out:
        src = inp.streams.video[0]
        dst = out.add_stream_from_template(src)
        annexb = BitStreamFilterContext("h264_mp4toannexb", src)
        for packet in inp.demux(src):
            for p in annexb.filter(packet if packet.dts is not None else None):
                p.stream = dst
                out.mux(p)
    return path


def combing(luma: np.ndarray) -> float:
    """How far odd rows stand from the mean of the rows around them (comb teeth), per pixel."""
    y = luma.astype(np.float64)
    return float(np.abs(y[1:-1:2] - (y[0:-2:2] + y[2::2]) / 2).mean())


def audio_onset(path: Path, threshold: float = 0.05) -> float:
    """When the first audio stream's sound starts, in seconds after the first video frame."""
    with av.open(str(path)) as c:
        video_start = next(c.decode(video=0)).time
    with av.open(str(path)) as c:
        for f in c.decode(audio=0):
            loud = np.flatnonzero(np.abs(f.to_ndarray().astype(np.float64)).max(axis=0) > threshold * _full_scale(f))
            if loud.size:
                return f.time + loud[0] / f.sample_rate - video_start
    raise AssertionError(f"{path} has no sound")


def _full_scale(frame: av.AudioFrame) -> float:
    return {"s16": 32768.0, "s16p": 32768.0, "s32": 2.0**31, "s32p": 2.0**31}.get(frame.format.name, 1.0)


def audio_samples(path: Path) -> np.ndarray:
    """Every decoded sample of the first audio stream, as float (channels, samples)."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray().astype(np.float64) / _full_scale(f) for f in c.decode(audio=0)]
    return np.concatenate(frames, axis=1)


def portrait_i420(path: Path, width: int, height: int) -> np.ndarray:
    """A shared portrait, resized to ``width`` x ``height``, as one I420 frame (the input every
    backend test feeds)."""
    import cv2

    rgb = cv2.resize(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), (width, height))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)


def make_hdr_clip(
    path: Path,
    rgb48: np.ndarray,
    frames: int = 3,
    transfer: int = 18,
    codec: str = "ffv1",
    rotation: int = 0,
    max_cll: int | None = None,
    primaries: int = 9,
) -> Path:
    """A 10-bit BT.2020 HDR clip (HLG by default, 16 for PQ), tagged the way phones tag theirs,
    from 16-bit HDR signal values in BT.2020 RGB: one picture (H, W, 3) repeated ``frames``
    times, or the frames themselves (N, H, W, 3). ``max_cll`` (nits; libx265 only) is written
    as content light level SEI; ``primaries`` is the colour primaries tag (1: BT.709)."""
    from av.video.reformatter import ColorRange, Colorspace

    pictures = rgb48 if rgb48.ndim == 4 else [rgb48] * frames
    h, w = rgb48.shape[-3:-1]
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p10le"
        cc = v.codec_context
        cc.color_trc, cc.color_primaries, cc.colorspace, cc.color_range = transfer, primaries, 9, 1
        if codec == "libx265":
            cll = f":max-cll={max_cll},0" if max_cll else ""
            v.options = {"preset": "ultrafast", "x265-params": "log-level=error:lossless=1" + cll}
        if rotation:
            v.set_display_rotation(rotation)
        video = []
        for i, picture in enumerate(pictures):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb48le").reformat(
                format="yuv420p10le", dst_colorspace=Colorspace.BT2020, dst_color_range=ColorRange.MPEG
            )
            f.pts = i
            video.append(f)
        encode_all(out, v, video)
    return path


def with_subtitles(video: Path, srt: str, path: Path) -> Path:
    """``video`` with a subtitle stream from SubRip text, muxed into ``path`` (.mkv)."""
    cues = path.with_suffix(".srt")
    cues.write_text(srt)
    with av.open(str(video)) as vin, av.open(str(cues)) as sin, av.open(str(path), "w") as out:
        streams = {}
        for st in [*vin.streams, *sin.streams]:
            streams[st] = out.add_stream_from_template(st)
            streams[st].time_base = st.time_base
        packets = [p for c in (vin, sin) for p in c.demux() if p.dts is not None]
        for p in sorted(packets, key=lambda p: float(p.dts * p.time_base)):
            p.stream = streams[p.stream]
            out.mux(p)
    cues.unlink()
    return path


def with_chapters(video: Path, titles: list[str], seconds: float, path: Path) -> Path:
    """``video`` with chapters of ``seconds`` each, named ``titles``, copied into ``path``."""
    with av.open(str(video)) as vin, av.open(str(path), "w") as out:
        streams = {st.index: out.add_stream_from_template(st, opaque=True) for st in vin.streams}
        ms = Fraction(1, 1000)
        step = round(seconds * 1000)
        chapters = [{"id": i + 1, "start": i * step, "end": (i + 1) * step, "time_base": ms, "metadata": {"title": t}}
                    for i, t in enumerate(titles)]  # fmt: skip
        out.set_chapters(chapters)
        for p in vin.demux():
            if p.dts is not None:
                p.stream = streams[p.stream.index]
                out.mux(p)
    return path


class Receiver:
    """A real TCP server on loopback taking ``-o tcp://...`` (MPEG-TS): it keeps what each
    connection sent. ``drop()`` resets the open connection and stops listening (a server
    restart); ``listen()`` takes connections again on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self.connections: list[bytearray] = []
        self._conn: socket.socket | None = None
        self.listen()

    def listen(self) -> None:
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.port))
        self.port = self._server.getsockname()[1]
        self._server.listen(1)
        self._thread = threading.Thread(target=self._serve, args=(self._server,), daemon=True)
        self._thread.start()

    def _serve(self, server: socket.socket) -> None:
        try:
            conn, _ = server.accept()
        except OSError:  # closed by drop() before a connection came
            return
        self._conn, data = conn, bytearray()
        self.connections.append(data)
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            data.extend(chunk)

    def drop(self) -> None:
        self._server.close()
        if self._conn is not None:  # a reset (linger 0): the sender's next write fails
            self._conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._conn.shutdown(socket.SHUT_RD)  # (wakes the reading thread; sends nothing)
            self._conn.close()
        self._thread.join(5)

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while (len(self.connections) < n or len(self.connections[n - 1]) < 2000) and time.monotonic() < end:
            time.sleep(0.01)
