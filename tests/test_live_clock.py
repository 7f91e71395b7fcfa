"""The live outputs' one clock: connections placed end to end, their own spacing and sound kept."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from p3m_live.live_clock import LiveClock
from p3m_live.video.frames import Frame

TB = Fraction(1, 90000)


def _frame(media: float | None, captured: float) -> Frame:
    pts = None if media is None else round(media / TB)
    return Frame(np.zeros((6, 4), np.uint8), "i420", pts, TB, 0, captured=captured)


def test_connections_go_end_to_end_with_their_own_spacing_and_sound():
    clock = LiveClock(TB)
    t0 = clock.t0
    a = [_frame(5000.0 + i / 30, t0 + 0.1 + i / 30 + 0.004 * (i % 2)) for i in range(3)]  # (a camera's jitter)
    for f in a:
        clock.frame(f)
    sound = av.Packet(b"\0" * 8)
    sound.time_base, sound.pts, sound.dts = Fraction(1, 48000), 48000 * 5000, 48000 * 5000
    clock.packet(sound)
    assert [f.time for f in a] == pytest.approx([0.1, 0.1 + 1 / 30, 0.1 + 2 / 30], abs=1e-4)  # spacing, no jitter
    assert float(sound.pts * sound.time_base) == pytest.approx(a[0].time, abs=1e-4)  # moved as the frames
    clock.connected()  # reopened: the new connection's clock starts at zero
    b = [_frame(i / 30, t0 + 2.0 + i / 30) for i in range(2)]
    for f in b:
        clock.frame(f)
    assert b[0].time == pytest.approx(2.0, abs=1e-4) and b[1].time - b[0].time == pytest.approx(1 / 30, abs=1e-4)
    untimed = _frame(None, t0 + 3.0)
    clock.frame(untimed)
    assert untimed.time == pytest.approx(3.0, abs=1e-4) and untimed.time_base == TB


def test_a_privacy_frame_is_timed_one_latency_ago():
    clock = LiveClock(TB)
    shown = clock.shown(np.zeros((6, 4), np.uint8), 7, lag=0.2)
    assert shown.index == 7 and shown.time_base == TB and shown.time == pytest.approx(-0.2, abs=0.05)
