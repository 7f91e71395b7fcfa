"""Live mode's one clock for the outputs, across reconnects and privacy frames.

A live source's own timestamps cannot time the outputs by themselves: a stream that
is reopened starts a new clock (often at zero again), and the privacy frames that
cover the gap have no timestamps at all. Left so, a recording squeezes the gap into
a few ticks and runs the new connection's frames backwards, and the encoder can only
clamp them. So the outputs are timed on the run's clock (seconds since the run
started). Each connection's media times are moved onto it by one offset, fixed at
its first timed frame or packet. Within a connection the source's own spacing is
kept (no capture jitter), and its sound is moved by the same offset, so it stays in
sync after a reconnect too. Privacy frames are timed by when they are shown, less
the current latency, which is when a real frame shown then was captured.
"""

from __future__ import annotations

import time
from fractions import Fraction

import av
import numpy as np

from .video.frames import Frame


class LiveClock:
    """Times frames and packets of successive source connections on one run clock, in
    ``time_base`` (the outputs')."""

    def __init__(self, time_base: Fraction) -> None:
        self.time_base = time_base
        self.t0 = time.monotonic()
        self._offset: float | None = None  # run time minus media time, for this connection

    def connected(self) -> None:
        """A new connection: its clock is placed anew at its first timed item."""
        self._offset = None

    def _place(self, media_time: float, wall: float) -> float:
        if self._offset is None:
            self._offset = (wall - self.t0) - media_time
        return media_time + self._offset

    def frame(self, frame: Frame) -> None:
        """Put ``frame`` on the run clock (a frame without a time: when it was captured)."""
        t = frame.time
        run_time = self._place(t, frame.captured) if t is not None else frame.captured - self.t0
        frame.pts, frame.time_base = round(run_time / self.time_base), self.time_base

    def packet(self, packet: av.Packet) -> av.Packet:
        """Move ``packet`` (the source's sound) by its connection's offset."""
        tb = packet.time_base
        when = packet.pts if packet.pts is not None else packet.dts
        if when is None or tb is None:
            return packet
        shift = round((self._place(float(when * tb), time.monotonic()) - float(when * tb)) / tb)
        if packet.pts is not None:
            packet.pts += shift
        if packet.dts is not None:
            packet.dts += shift
        return packet

    def shown(self, data: np.ndarray, index: int, lag: float) -> Frame:
        """A frame of the outputs' own (a privacy frame, ``data``), timed now less ``lag``."""
        pts = round((time.monotonic() - lag - self.t0) / self.time_base)
        return Frame(data, "i420", pts, self.time_base, index)
