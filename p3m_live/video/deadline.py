"""A time limit on a call that Python cannot interrupt: the process ends when it is over.

PyAV opens an output's connection (``avio_open``, and the RTSP muxer's handshake in its
header) holding Python's lock and without FFmpeg's interrupt callback. A receiver that
takes the TCP connection and never answers (a wrong port, a hung server) then holds the
whole process for good: no other thread runs, and neither Ctrl-C nor SIGTERM gets
through, since Python handles signals only between bytecodes. What still works is the
kernel: SIGALRM, left at its default action, ends the process when the alarm rings
(the shell says "Alarm clock"; the exit status is 128 + 14).
"""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Iterator

CONNECT_SECONDS = 30.0  # a connection and its handshake take seconds even far away


def available() -> bool:
    """Whether a deadline can be set: there is SIGALRM (not on Windows), at its default."""
    return hasattr(signal, "SIGALRM") and signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


@contextlib.contextmanager
def process_deadline(seconds: float) -> Iterator[bool]:
    """End the process if the block has not finished within ``seconds``; yields whether the
    limit is armed. It is not where it is not :func:`available`, or where an alarm is
    already set (that one is left as it was)."""
    if not available():
        yield False
        return
    pending = signal.alarm(max(1, math.ceil(seconds)))
    if pending:  # someone else's alarm: put it back and leave it alone
        signal.alarm(pending)
        yield False
        return
    try:
        yield True
    finally:
        signal.alarm(0)
