"""Recordings joined end to end (camcorder clips joined with ``cat``, DVD cells), on one clock.

In MPEG-TS and MPEG-PS each part keeps its own clock, so at a join every stream's
time jumps: back (the second part's clock starts again) or forward (it starts
anywhere, as broadcasts' and other devices' do), and encoders and muxers refuse
time that goes back, while a jump forward would freeze the picture for as long. FFmpeg
flags such formats (``AVFMT_TS_DISCONT``); for them, the first stream whose time goes
back by more than ``JOIN``, or a video or audio stream whose time jumps forward by
more than ``JUMP`` (ffmpeg's own threshold for these formats), marks a join. Every
stream of the later part then moves on by one shift, to where the earlier part ended
(the end of its longest stream), so audio stays with video; a sparse stream
(subtitles) has no steady clock to jump, so its packets join a forward-jumped part once
their time reaches where that part began. A packet that would still land before its
stream's last one (the tail of a stream that the demuxer hands out late) is dropped,
so time only goes forward.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import av

log = logging.getLogger("p3m_live")

AVFMT_TS_DISCONT = 0x200  # FFmpeg: "format allows timestamp discontinuities"
JOIN = 0.1  # seconds a stream's time must go back to count as a join
JUMP = 10.0  # seconds a video or audio stream's time must jump forward (ffmpeg's dts_delta_threshold)


def has_joins(container: av.container.InputContainer) -> bool:
    """Whether ``container``'s format can hold parts on clocks of their own."""
    return bool(container.format.flags & AVFMT_TS_DISCONT)


class Splices:
    """Moves the packets of ``streams`` onto one clock across joins (see the module)."""

    def __init__(self, streams: Sequence[av.stream.Stream], name: str) -> None:
        self.name = name
        self.shifts = [0.0]  # seconds added to each part, in order
        self._begins: list[float | None] = [None]  # raw time a forward-jumped part begins at
        self._steady = {s.index for s in streams if s.type in ("video", "audio")}
        self._part = {s.index: 0 for s in streams}  # the part each stream is in
        self._last = {s.index: float("-inf") for s in streams}  # each stream's last time, moved
        self._end = float("-inf")  # where the latest part ends so far, moved

    def mend(self, packet: av.Packet) -> bool:
        """Move ``packet``'s timestamps onto the one clock; False where it must be dropped."""
        index = packet.stream.index
        raw = packet.dts if packet.dts is not None else packet.pts
        if raw is None or index not in self._part:
            return True
        own = float(raw * packet.time_base)
        t = own + self.shifts[self._part[index]]
        last = self._last[index]
        back = t < last - JOIN
        forward = index in self._steady and last > float("-inf") and t > last + JUMP
        begins = self._begins[-1]
        caught_up = begins is not None and self._part[index] < len(self.shifts) - 1 and own >= begins - JOIN
        if back or forward or caught_up:  # into the next part
            if self._part[index] == len(self.shifts) - 1:  # the first stream there: a new join
                self.shifts.append(self.shifts[-1] + self._end - t)
                self._begins.append(own if forward else None)
                log.info("%s: parts joined at %.2f s: continuing them on one clock", self.name, self._end)
            self._part[index] = len(self.shifts) - 1
            t = own + self.shifts[-1]
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
