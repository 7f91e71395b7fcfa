"""Live outputs on their own threads: a network stream that drops is reopened, and an
output that falls behind loses its oldest frames instead of holding the call."""

from __future__ import annotations

import io
import logging
import threading
import time
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from p3m_live.errors import P3MError
from p3m_live.video.frames import Frame, Layout
from p3m_live.video.relay import Relay
from p3m_live.video.sinks import FileSink, Sink
from p3m_live.video.targets import stream_target
from tests.media import Receiver, shapes_frame

LAYOUT = Layout(64, 48, "rgb", True, "bt601")
TB = Fraction(1, 50)


def _frame(i: int) -> tuple[Frame, np.ndarray, np.ndarray]:
    rgb = shapes_frame(i, 64, 48)
    return Frame(rgb, "rgb", i, TB, i), cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), np.zeros((48, 64), np.uint8)


def _video_pts(data: bytes) -> list[tuple[int, bool]]:
    """(pts, keyframe) of each video packet of an MPEG-TS byte string."""
    with av.open(io.BytesIO(data), format="mpegts") as c:
        return [(p.pts, p.is_keyframe) for p in c.demux(video=0) if p.size]


def test_a_stream_that_drops_is_reopened_and_the_writes_never_wait(caplog):
    """A real MPEG-TS stream over TCP: the server resets the connection and is gone for
    0.6 s. Frames keep coming; the relay tries again every 0.2 s (refused while the server
    is down), then sends a new stream that starts on a keyframe and goes on from where the
    source's clock is. No write waits on any of it."""
    caplog.set_level(logging.INFO, logger="p3m_live")
    rx = Receiver()
    target = stream_target(f"tcp://127.0.0.1:{rx.port}")

    def sink() -> FileSink:
        return FileSink(target, LAYOUT, rate=Fraction(50), time_base=TB, preset="ultrafast")

    relay = Relay(sink(), target.name, reopen=sink, reconnect_every=0.2)
    waits, i = [], 0

    def send(seconds: float) -> None:
        nonlocal i
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.monotonic()
            relay.write(*_frame(i))
            waits.append(time.monotonic() - t)
            i += 1
            time.sleep(0.02)

    send(1.0)
    rx.wait_for(1)
    rx.drop()
    dropped_at = i
    send(0.6)
    assert relay.status().startswith(f"{target.name}: reconnecting, ")  # (for the live status line)
    rx.listen()
    send(1.5)
    rx.wait_for(2)
    relay.close()
    assert len(rx.connections) == 2 and relay.reconnects == 1
    first, second = _video_pts(bytes(rx.connections[0])), _video_pts(bytes(rx.connections[1]))
    assert second[0][1] and second[0][0] > dropped_at  # a fresh stream: a keyframe first, later frames
    assert [p for p, _ in second] == sorted(p for p, _ in second) and len(second) >= 40
    assert first[-1][0] < second[0][0]
    # No write waits on the network: a write is a copy and a queue append, well under a
    # millisecond; the bound leaves room for two cores' thread scheduling under a full suite
    # (one write took 51 ms there once), still under the reconnect period a blocking write
    # would show.
    assert 0 < relay.dropped < 60 and sorted(waits)[len(waits) // 2] < 0.005 and max(waits) < 0.15
    assert "failed after" in caplog.text and "the run goes on, and it is reopened every 0.2 s" in caplog.text
    assert f"{target.name}: sending again" in caplog.text


class SlowSink(Sink):
    """A test double for an output slower than the camera (a real recorder plus a delay per
    frame, as an encoder at its limit): it keeps what it is given."""

    def __init__(self, delay: float) -> None:
        self.delay, self.frames, self.packets, self.closed = delay, [], [], None

    def write(self, frame, composite, alpha):
        time.sleep(self.delay)
        self.frames.append((frame.index, composite))

    def write_packet(self, packet):
        self.packets.append(packet)

    def close(self, failed=False):
        self.closed = failed


def test_an_output_that_falls_behind_loses_its_oldest_frames_not_the_callers_time():
    slow = SlowSink(0.05)
    relay = Relay(slow, "out.mp4", queue=4)
    sound = [av.Packet(bytes([k])) for k in range(10)]
    t0 = time.monotonic()
    for i in range(30):
        frame, composite, alpha = _frame(i)
        relay.write(frame, composite, alpha)
        composite[:] = 0  # the caller reuses its buffer (a GPU backend's page-locked one)
        if i % 3 == 0:
            relay.write_packet(sound[i // 3])
    written = time.monotonic() - t0
    relay.drain()  # (the run closes its source after this: every packet must be written by then)
    assert len(slow.packets) == len(sound) and slow.closed is None
    relay.close()
    indices = [k for k, _ in slow.frames]
    assert written < 0.3 and slow.closed is False  # 30 writes at once: none waited for the 50 ms sink
    assert indices == sorted(indices) and indices[-4:] == [26, 27, 28, 29]  # the newest frames are kept
    assert relay.dropped == 30 - len(indices) > 15
    assert relay.status() == f"out.mp4: {relay.dropped} frames dropped"
    assert all(c.any() for _, c in slow.frames)  # copies: the reused buffer did not reach the output
    assert [bytes(p) for p in slow.packets] == [bytes(p) for p in sound]  # the sound is all there, in order


class FailingSink(SlowSink):
    """A test double for a file output that fails on its third frame (a full disk)."""

    def write(self, frame, composite, alpha):
        if len(self.frames) == 2:
            raise P3MError("out.mp4: No space left on device")
        super().write(frame, composite, alpha)


def test_a_file_output_that_fails_ends_the_run_with_its_error():
    failing = FailingSink(0)
    relay = Relay(failing, "out.mp4")
    with pytest.raises(P3MError, match="No space left"):
        for i in range(100):
            relay.write(*_frame(i))
            time.sleep(0.01)
    relay.close(failed=True)  # (raised once: the run reports it, the close does not again)
    assert failing.closed is True and len(failing.frames) == 2


def test_an_error_left_at_the_end_is_raised_by_close():
    failing = FailingSink(0)
    relay = Relay(failing, "out.mp4")
    for i in range(3):
        relay.write(*_frame(i))
    with pytest.raises(P3MError, match="No space left"):
        relay.close()


def test_a_failed_output_that_a_call_outlives_stops_at_once_and_is_reported_at_the_end(caplog):
    """Where the run feeds a call, a recording that fails stops with a warning as it fails,
    is finished (kept as written), and takes no more frames; the call's writes never raise,
    and the run's end raises its error."""
    failing = FailingSink(0)
    relay = Relay(failing, "out.mp4", outlived=True)
    for i in range(30):
        relay.write(*_frame(i))
        relay.write_packet(av.Packet(b"x"))
        time.sleep(0.005)
    assert relay.drain()
    assert failing.closed is True and len(failing.frames) == 2  # finished now, not at the end
    assert relay.status() == "out.mp4: stopped"
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == ["out.mp4 stopped (out.mp4: No space left on device); the call goes on without it"]
    with pytest.raises(P3MError, match="No space left"):
        relay.close()


class StuckSink(SlowSink):
    """A test double for an output whose write does not return (a network that stalls)."""

    def __init__(self) -> None:
        super().__init__(0)
        self.release = threading.Event()

    def write(self, frame, composite, alpha):
        self.release.wait()
        super().write(frame, composite, alpha)


def test_a_stuck_output_is_not_waited_for_for_ever(monkeypatch):
    """At the end of a live run the outputs are drained before the source is closed; one
    that is stuck says so after a while (and the source is left open), then drains once it
    moves again."""
    from p3m_live.video import relay as relay_module

    monkeypatch.setattr(relay_module, "DRAIN_WAIT", 0.3)
    stuck = StuckSink()
    relay = Relay(stuck, "rtmp://example/live/...")
    relay.write(*_frame(0))
    t0 = time.monotonic()
    assert relay.drain() is False and 0.3 <= time.monotonic() - t0 < 1.0
    stuck.release.set()
    assert relay.drain() is True and len(stuck.frames) == 1
    relay.close()


def test_a_fence_is_passed_once_what_came_before_it_is_written():
    """A replaced source is closed when its outputs' fences are passed: not while a packet
    given before is still queued behind a stuck frame, and at once after it is written."""
    stuck = StuckSink()
    relay = Relay(stuck, "out.mkv")
    relay.write(*_frame(0))
    relay.write_packet(av.Packet(b"\x01"))
    fence = relay.fence()
    assert not fence.wait(0.2)
    stuck.release.set()
    assert fence.wait(1.0) and len(stuck.packets) == 1 and len(stuck.frames) == 1
    relay.close()
