"""Recordings joined end to end (camcorder clips joined with ``cat``, DVD cells), on one clock.

In MPEG-TS and MPEG-PS each part keeps its own clock, so at a join every stream's
time goes back (to the second part's start), and encoders and muxers refuse
time that goes back. FFmpeg flags such formats (``AVFMT_TS_DISCONT``); for them,
the first stream whose time goes back by more than ``JOIN`` marks a join. Every
stream of the later part then moves on by one shift, to where the earlier part
ended (the end of its longest stream), so audio stays with video. A packet that
would still land before its stream's last one (the tail of a stream that the
demuxer hands out late) is dropped, so time only goes forward.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import av

log = logging.getLogger("p3m_live")

AVFMT_TS_DISCONT = 0x200  # FFmpeg: "format allows timestamp discontinuities"
JOIN = 0.1  # seconds a stream's time must go back to count as a join


def has_joins(container: av.container.InputContainer) -> bool:
    """Whether ``container``'s format can hold parts on clocks of their own."""
    return bool(container.format.flags & AVFMT_TS_DISCONT)


class Splices:
    """Moves the packets of ``streams`` onto one clock across joins (see the module)."""

    def __init__(self, streams: Sequence[av.stream.Stream], name: str) -> None:
        self.name = name
        self.shifts = [0.0]  # seconds added to each part, in order
        self._part = {s.index: 0 for s in streams}  # the part each stream is in
        self._last = {s.index: float("-inf") for s in streams}  # each stream's last time, moved
        self._end = float("-inf")  # where the latest part ends so far, moved

    def mend(self, packet: av.Packet) -> bool:
        """Move ``packet``'s timestamps onto the one clock; False where it must be dropped."""
        index = packet.stream.index
        raw = packet.dts if packet.dts is not None else packet.pts
        if raw is None or index not in self._part:
            return True
        t = float(raw * packet.time_base) + self.shifts[self._part[index]]
        if t < self._last[index] - JOIN:  # this stream went back: into the next part
            if self._part[index] == len(self.shifts) - 1:  # the first stream there: a new join
                self.shifts.append(self.shifts[-1] + self._end - t)
                log.info("%s: parts joined at %.2f s: continuing them on one clock", self.name, self._end)
            self._part[index] = len(self.shifts) - 1
            t = float(raw * packet.time_base) + self.shifts[-1]
        if t < self._last[index]:
            return False
        shift = self.shifts[self._part[index]]
        if shift:
            step = round(shift / packet.time_base)
            packet.dts = packet.dts + step if packet.dts is not None else None
            packet.pts = packet.pts + step if packet.pts is not None else None
        self._last[index] = t
        self._end = max(self._end, t + float((packet.duration or 0) * packet.time_base))
        return True
