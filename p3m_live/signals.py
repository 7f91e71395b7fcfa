"""Ctrl-C and SIGTERM stop a run cleanly; outputs are then finished without interruption.

SIGTERM (what ``kill``, systemd and container runtimes send) is turned into the
same KeyboardInterrupt as Ctrl-C, so both take the one path that finishes a
playable file. While outputs are being finished, both signals are held off: a
second Ctrl-C must not leave a half-written file behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_terminated = False


def _on_sigterm(signum, frame) -> None:
    global _terminated
    _terminated = True
    raise KeyboardInterrupt("SIGTERM")


def install() -> None:
    """Route SIGTERM through KeyboardInterrupt (main thread only; elsewhere a no-op)."""
    global _terminated
    _terminated = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def exit_code() -> int:
    """The shell's code for the signal that stopped the run: 143 for SIGTERM, else 130."""
    return 143 if _terminated else 130


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM inside the block (finishing files); restore afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
