"""The time limit on a network output's connection: the process ends, where nothing else can."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from p3m_live.video import deadline

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="no SIGALRM on this system")


def test_the_deadline_is_gone_after_the_block_and_another_alarm_is_left_alone():
    with deadline.process_deadline(5) as armed:
        assert armed and 0 < signal.alarm(0) <= 5  # (reading it clears it)
        signal.alarm(5)
    assert signal.alarm(0) == 0  # disarmed: a run that connected is not ended later
    signal.alarm(100)
    try:
        with deadline.process_deadline(1) as armed:
            assert not armed
        assert 98 <= signal.alarm(0) <= 100  # (the other alarm, as it was)
    finally:
        signal.alarm(0)


@pytest.mark.parametrize("scheme", ["rtmp", "rtsp"])
def test_a_receiver_that_takes_the_connection_and_never_answers_ends_the_process(scheme):
    """A port that completes the TCP handshake (the kernel's listen backlog) and never says a
    word: without the deadline, PyAV would wait for its answer for good, holding Python's
    lock. With it (2 s here, 30 in a run), the process ends, killed by SIGALRM."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # (never accepted: nothing answers)
    url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/live/key"
    code = textwrap.dedent(f"""
        from fractions import Fraction
        from p3m_live.video import deadline
        from p3m_live.video.frames import Layout
        from p3m_live.video.sinks import FileSink
        from p3m_live.video.targets import stream_target
        deadline.CONNECT_SECONDS = 2
        FileSink(stream_target({url!r}), Layout(64, 48, "i420", False, "bt601"), rate=Fraction(25),
                 time_base=Fraction(1, 25))
        print("connected")
    """)
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=25)
    finally:
        listener.close()
    took = time.monotonic() - t0
    assert r.returncode == -signal.SIGALRM, r.stdout + r.stderr
    assert "connected" not in r.stdout and 2 <= took < 25
