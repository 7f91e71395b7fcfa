"""Interlaced video (camcorders' AVCHD, broadcasts) made progressive as it is decoded.

Each interlaced frame holds two fields, half a frame interval apart; anything that
moves shows comb teeth, which the network would matte and the composite would keep.
FFmpeg's bwdif turns each frame into one progressive frame (``send_frame``: 25i in,
25p out), or each field into one (``send_field``: 25i in, 50p out, the motion as
smooth as the camera saw it, twice the frames to matte). It looks one frame ahead,
so a frame comes out one frame later, and the last one when it is flushed. Its
output counts time in half steps of the input's time base; frames come back in the
stream's own time base where that holds half a frame interval exactly, else in
the half steps.
"""

from __future__ import annotations

from fractions import Fraction

import av


def is_interlaced(frame: av.VideoFrame) -> bool:
    return bool(frame.interlaced_frame)


MODES = ("auto", "field", "off")  # --deinterlace: a frame per frame, a frame per field, never


class Deinterlacer:
    """bwdif between a video stream's decoder and the rest of the run; ``fields``: a frame
    per field (twice the rate)."""

    def __init__(self, stream: av.video.stream.VideoStream, rate: Fraction | None, fields: bool = False) -> None:
        self.fields = fields
        self.time_base: Fraction = stream.time_base
        if fields and rate and (1 / (2 * rate) / self.time_base).denominator != 1:
            self.time_base = self.time_base / 2  # (a 1/25 time base cannot say 1/50 s)
        self._graph = av.filter.Graph()
        self._src = self._graph.add_buffer(template=stream)
        mode = "send_field" if fields else "send_frame"
        bwdif = self._graph.add("bwdif", f"mode={mode}:parity=auto:deint=interlaced")  # progressive frames pass
        self._sink = self._graph.add("buffersink")
        self._src.link_to(bwdif)
        bwdif.link_to(self._sink)
        self._graph.configure()

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """Hand in one decoded frame; the progressive frames ready now (none for the first)."""
        self._src.push(frame)
        return self._ready()

    def flush(self) -> list[av.VideoFrame]:
        """The last frame, at the end of the stream."""
        self._src.push(None)
        return self._ready()

    def _ready(self) -> list[av.VideoFrame]:
        out = []
        while True:
            try:
                frame = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
            if frame.pts is not None:
                frame.pts = round(frame.pts * frame.time_base / self.time_base)
            frame.time_base = self.time_base
            out.append(frame)
