"""The live outputs' one clock: connections placed end to end, their own spacing and sound kept."""

from __future__ import annotations

import time
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
    sound = av.Packet(b"\0" * 8)  # arriving now, 0.1 s before the first frame, with a time to match
    sound.time_base, sound.pts, sound.dts = Fraction(1, 48000), 48000 * 4999.9, 48000 * 4999.9
    clock.packet(sound)
    assert [f.time for f in a] == pytest.approx([0.1, 0.1 + 1 / 30, 0.1 + 2 / 30], abs=1e-4)  # spacing, no jitter
    assert float(sound.pts * sound.time_base) == pytest.approx(a[0].time - 0.1, abs=0.01)  # moved as the frames
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


def test_frames_that_waited_in_a_buffer_are_timed_as_they_arrive_then_by_their_own_clock():
    """A camera's first frames, held while the model loaded, come at once and late for their
    times: they are timed as they arrive, and the frames after them by the camera's own
    spacing from the promptest arrival, so nothing runs ahead of the sound."""
    clock = LiveClock(TB)
    t0 = clock.t0
    held = [_frame(i / 30, t0 + 1.0 + 0.001 * i) for i in range(4)]  # 0 to 0.1 s, all at 1 s
    steady = [_frame(4 / 30 + i / 30, t0 + 1.01 + (i + 1) / 30) for i in range(5)]  # then in real time
    for f in [*held, *steady]:
        clock.frame(f)
    times = [f.time for f in [*held, *steady]]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert held[-1].time == pytest.approx(1.003, abs=1e-3)  # as it came, not 0.9 s ahead of it
    assert steady[-1].time == pytest.approx(1.01 + 5 / 30, abs=0.02)  # on its arrival, by the camera's spacing


def test_a_file_played_live_keeps_one_offset():
    """A file played live is paced here to its own times, so its first frame places it for
    good: a later frame whose pacing sleep ended sooner (here 20 ms) does not move the
    clock, which would break the frames' spacing; and its sound follows."""
    clock = LiveClock(TB)
    clock.connected(steady=True)
    t0 = clock.t0
    first = _frame(0.0, t0 + 0.52)  # its sleep overslept by 20 ms
    clock.frame(first)
    sound = av.Packet(b"\0" * 8)  # demuxed now, 0.5 s "early" for its time
    sound.time_base, sound.pts, sound.dts = Fraction(1, 48000), 0, 0
    clock.packet(sound)
    later = _frame(0.04, t0 + 0.54)
    clock.frame(later)
    assert later.time - first.time == pytest.approx(0.04, abs=1e-4)
    assert float(sound.pts * sound.time_base) == pytest.approx(first.time, abs=1e-4)  # on the same offset


def test_a_streams_early_sound_does_not_move_its_frames():
    """A stream's sound arriving ahead of its picture follows the frames' clock; it does not
    shift the frames after it (a microphone, sound alone, places its own clock)."""
    clock = LiveClock(TB)
    t0 = clock.t0
    first = _frame(0.0, t0 + 0.5)
    clock.frame(first)
    early = av.Packet(b"\0" * 8)  # its time is 1 s on, yet here it is already
    early.time_base, early.pts, early.dts = Fraction(1, 48000), 48000, 48000
    clock.packet(early)
    later = _frame(1 / 30, t0 + 0.5 + 1 / 30)
    clock.frame(later)
    assert later.time - first.time == pytest.approx(1 / 30, abs=1e-4)
    assert float(early.pts * early.time_base) == pytest.approx(first.time + 1.0, abs=1e-4)
    mic = LiveClock(TB, t0, sound_only=True)  # sound alone: an early packet places it
    for media in (0.0, 1.0):  # the second comes 30 ms on, yet 1 s on in its own time
        p = _sound(media, 0.02)
        assert mic.packet(p) is p
        time.sleep(0.03)
    assert float(p.pts * p.time_base) == pytest.approx(time.monotonic() - 0.03 - t0, abs=0.02)


SOUND_TB = Fraction(1, 48000)
PACKET = 1024 / 48000  # seconds of sound in a packet (AAC's frame)


def _sound(media: float, duration: float = PACKET) -> av.Packet:
    p = av.Packet(b"\0" * 8)
    p.time_base, p.pts, p.dts = SOUND_TB, round(media / SOUND_TB), round(media / SOUND_TB)
    p.duration = round(duration / SOUND_TB)
    return p


def _microphone(monkeypatch, arrivals: list[tuple[float, float]]) -> list[tuple[float, float] | None]:
    """(media time, arrival) packets through a microphone's clock: each one's (start, end) on
    the run clock, or None where it was dropped."""
    import types

    import p3m_live.live_clock as live_clock

    now = [0.0]
    monkeypatch.setattr(live_clock, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    mic = LiveClock(TB, 0.0, sound_only=True)
    placed = []
    for media, arrival in arrivals:
        now[0] = arrival
        p = mic.packet(_sound(media))
        placed.append(None if p is None else (float(p.pts * p.time_base), float((p.pts + p.duration) * p.time_base)))
    return placed


def test_a_microphone_s_buffered_burst_is_dropped_not_overlapped(monkeypatch):
    """A device's buffer read at once: 6 packets (128 ms) at 0.5 s, then real time. Sound must
    not run back (MP4 and MOV refuse it) nor lag behind the picture for good: what is older
    than the sound already sent is dropped, and what follows goes end to end."""
    burst = [(i * PACKET, 0.5 + 0.0001 * i) for i in range(6)]
    steady = [((6 + i) * PACKET, 0.5 + (i + 1) * PACKET) for i in range(20)]
    placed = _microphone(monkeypatch, burst + steady)
    kept = [p for p in placed if p is not None]
    assert all(b[0] >= a[1] - 1e-9 for a, b in zip(kept, kept[1:]))  # in order, never overlapping
    assert sum(p is None for p in placed[:6]) >= 4  # the burst's older packets
    assert all(p is not None for p in placed[7:])  # real time: none lost
    assert all(b[0] == pytest.approx(a[1], abs=1e-4) for a, b in zip(kept[1:], kept[2:]))  # end to end
    assert kept[-1][0] == pytest.approx(steady[-1][1], abs=PACKET / 2)  # in step with when it came


def test_a_microphone_s_jitter_moves_its_sound_without_a_gap(monkeypatch):
    """Packets a few ms early or late (a busy machine): none dropped, all end to end."""
    jitter = [0.0, 0.003, -0.002, 0.004, 0.0, -0.003, 0.002, 0.0]
    placed = _microphone(monkeypatch, [(i * PACKET, 0.2 + i * PACKET + j) for i, j in enumerate(jitter)])
    assert None not in placed
    assert all(b[0] == pytest.approx(a[1], abs=1e-4) for a, b in zip(placed, placed[1:]))


def test_overlapping_subtitle_cues_are_kept(tmp_path):
    """Only sound is kept end to end: subtitle cues may overlap (two speakers at once)."""
    from tests.media import make_clip, with_subtitles

    srt = "1\n00:00:00,000 --> 00:00:01,000\nOne\n\n2\n00:00:00,500 --> 00:00:01,500\nTwo\n"
    path = with_subtitles(make_clip(tmp_path / "v.mkv", frames=2, audio_rate=None), srt, tmp_path / "s.mkv")
    clock = LiveClock(TB)
    clock.connected(steady=True)
    with av.open(str(path)) as c:
        cues = [p for p in c.demux(subtitles=0) if p.size]
        placed = [clock.packet(p) for p in cues]
    assert len(cues) == 2 and None not in placed
    assert float((placed[1].pts - placed[0].pts) * placed[0].time_base) == pytest.approx(0.5, abs=1e-3)


def test_a_stream_s_sound_stays_in_order_when_a_prompter_frame_moves_the_clock(monkeypatch):
    """An RTSP camera's sound follows its frames' offset; a frame that comes 50 ms more
    promptly than the first moves the offset back by 50 ms. The sound after it must not run
    back over what was sent (an MP4 recording would fail): it is dropped up to where the
    sound had got to, and goes on end to end."""
    import types

    import p3m_live.live_clock as live_clock

    now = [0.0]
    monkeypatch.setattr(live_clock, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    clock = LiveClock(TB, 0.0)
    clock.frame(_frame(0.0, 0.3))  # late: offset 0.3
    placed = []
    for i in range(10):
        if i == 5:
            clock.frame(_frame(0.5, 0.75))  # 50 ms more prompt: offset 0.25
        now[0] = 0.3 + i * PACKET
        p = clock.packet(_sound(i * PACKET))
        placed.append(None if p is None else float(p.pts * p.time_base))
    kept = [t for t in placed if t is not None]
    assert all(b >= a + PACKET - 1e-4 for a, b in zip(kept, kept[1:]))  # never back over sent sound
    assert placed[:5] == pytest.approx([0.3 + i * PACKET for i in range(5)], abs=1e-4)
    assert None in placed[5:] and placed[-1] == pytest.approx(0.25 + 9 * PACKET, abs=PACKET)
