"""Ctrl-C, SIGTERM and a closed terminal stop a run cleanly; outputs are then finished
without interruption.

SIGTERM (what ``kill``, systemd and container runtimes send) and SIGHUP (the terminal
closed, an ssh connection dropped) are turned into the same KeyboardInterrupt as Ctrl-C,
so all three take the one path that finishes a playable file. A run started under
``nohup`` (SIGHUP ignored) keeps ignoring it. After a hangup, the terminal that stdout and
stderr wrote to is gone (every write to it fails with EIO): they are pointed at /dev/null,
so the file is still finished, and FFmpeg's own messages cannot fail either. While outputs
are being finished, the signals are held off: a second Ctrl-C must not leave a
half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from .terminal import is_terminal

_stopped_by: int | None = None  # the signal that stopped the run, where it was not Ctrl-C
_terminals: list[int] = []  # stdout and stderr, where they were a terminal at the start
_HUP = getattr(signal, "SIGHUP", None)  # (POSIX only)


def _on_signal(signum: int, frame) -> None:
    global _stopped_by
    _stopped_by = signum
    if signum == _HUP:
        _silence_terminals()
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _silence_terminals() -> None:
    """Point the fds that wrote to the hung-up terminal at /dev/null."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in _terminals:
            os.dup2(null, fd)
    finally:
        os.close(null)


def _silence_on_hangup(signum: int, frame) -> None:
    """A hangup while files are being finished: they are finished, with nothing to say it."""
    _silence_terminals()


def _stoppers() -> list[int]:
    return [signal.SIGINT, signal.SIGTERM] + ([_HUP] if _HUP is not None else [])


def install() -> None:
    """Route SIGTERM and SIGHUP through KeyboardInterrupt (main thread only; elsewhere a no-op)."""
    global _stopped_by
    _stopped_by = None
    if threading.current_thread() is not threading.main_thread():
        return
    _terminals[:] = [s.fileno() for s in (sys.stdout, sys.stderr) if s is not None and is_terminal(s)]
    signal.signal(signal.SIGTERM, _on_signal)
    if _HUP is not None and signal.getsignal(_HUP) is not signal.SIG_IGN:  # (nohup: left ignored)
        signal.signal(_HUP, _on_signal)


def exit_code() -> int:
    """The shell's code for the signal that stopped the run: 128 + its number (130 for Ctrl-C)."""
    return 128 + (_stopped_by or signal.SIGINT)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Ignore the stopping signals inside the block (finishing files); restore afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _silence_on_hangup if s == _HUP else signal.SIG_IGN) for s in _stoppers()}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
