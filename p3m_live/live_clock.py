"""Live mode's one clock for the outputs, across reconnects and privacy frames.

A live source's own timestamps cannot time the outputs by themselves: a stream that
is reopened starts a new clock (often at zero again), and the privacy frames that
cover the gap have no timestamps at all. Left so, a recording squeezes the gap into
a few ticks and runs the new connection's frames backwards, and the encoder can only
clamp them. So the outputs are timed on the run's clock (seconds since the run
started). Each connection's media times are moved onto it by one offset: the
smallest gap between a frame's or packet's arrival and its media time (see
``_place``). Within a connection the source's own spacing is kept (no capture
jitter), and its sound is moved by the same offset, so it stays in sync after a
reconnect too. Each sound stream stays in order, as MP4 and MOV require: a packet
placed a little before the end of the one before it (a prompter packet moved the
offset) follows that one; one placed half its length or more before it (a burst read
from a device's buffer, older than what was sent already) is dropped, so the sound
stays in step with the picture rather than running late behind it for the rest of
the run. A microphone is a timeline of its own on the same clock. Privacy
frames are timed by when they are shown, less the current latency, which is when a
real frame shown then was captured.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import av
import numpy as np

from .video.frames import Frame


class LiveClock:
    """Times frames and packets of successive source connections on one run clock, in
    ``time_base`` (the outputs')."""

    def __init__(self, time_base: Fraction, t0: float | None = None, sound_only: bool = False) -> None:
        """``t0``: the run's start (monotonic seconds), for a second timeline on the same
        clock (a microphone, ``sound_only``); default now. Where there are frames, they
        place the clock and the sound follows: a stream's sound often arrives ahead of its
        picture, and placing by it would move the frames once, early on."""
        self.time_base = time_base
        self.t0 = time.monotonic() if t0 is None else t0
        self._sound_places = sound_only
        self._offset: float | None = None  # run time minus media time, for this connection
        self._steady = False
        self._sound_ends: dict[int, Fraction] = {}  # run time (s) each sound stream's last packet ends

    def connected(self, steady: bool = False) -> None:
        """A new connection: its clock is placed anew. ``steady``: at its first timed item, for
        good (a file played live, which is paced to its own times here, so nothing in it
        arrives early or late); otherwise by its promptest item (see ``_place``)."""
        self._offset = None
        self._steady = steady

    def _place(self, media_time: float, wall: float, placing: bool = True) -> float:
        """``media_time`` on the run clock: moved by the smallest gap yet between an item's
        arrival (``wall``) and its media time. Items that waited in a buffer (a camera's
        first frames, held while the model loaded) or came in a burst arrive late for their
        time. The promptest one says where the connection's clock lies, so a burst is timed
        as it arrives and the rest keep their own spacing after it. Without ``placing`` the
        item only follows (unless it is the first)."""
        gap = (wall - self.t0) - media_time
        if self._offset is None or (placing and gap < self._offset and not self._steady):
            self._offset = gap
        return media_time + self._offset

    def frame(self, frame: Frame) -> None:
        """Put ``frame`` on the run clock (a frame without a time: when it was captured)."""
        t = frame.time
        run_time = self._place(t, frame.captured) if t is not None else frame.captured - self.t0
        frame.pts, frame.time_base = round(run_time / self.time_base), self.time_base

    def packet(self, packet: av.Packet) -> av.Packet | None:
        """Move ``packet`` (the source's sound) by its connection's offset; None where it
        is dropped, as older than the sound already sent (see the module's docstring)."""
        tb = packet.time_base
        when = packet.pts if packet.pts is not None else packet.dts
        if when is None or tb is None:
            return packet
        media = float(when * tb)
        shift = round((self._place(media, time.monotonic(), self._sound_places) - media) / tb)
        start = packet.dts if packet.dts is not None else when
        stream = packet.stream
        audio = stream is None or stream.type == "audio"  # (subtitle cues may overlap)
        index = stream.index if stream is not None else 0
        end = self._sound_ends.get(index) if audio else None
        if end is not None and (behind := end - (start + shift) * tb) > 0:
            if behind * 2 >= (packet.duration or 0) * tb:
                return None
            shift = math.ceil(end / tb) - start
        if packet.pts is not None:
            packet.pts += shift
        if packet.dts is not None:
            packet.dts += shift
        if audio:
            self._sound_ends[index] = (start + shift + max(packet.duration or 0, 1)) * tb
        return packet

    def shown(self, data: np.ndarray, index: int, lag: float) -> Frame:
        """A frame of the outputs' own (a privacy frame, ``data``), timed now less ``lag``."""
        pts = round((time.monotonic() - lag - self.t0) / self.time_base)
        return Frame(data, "i420", pts, self.time_base, index)
