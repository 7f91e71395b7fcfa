"""The keys of a live run: in the preview window, and in the terminal it was started from.

A virtual camera often runs without a preview (no display, or the call's own view
is enough), so the terminal takes the same keys: ``b`` next background, ``f``
auto framing on or off, ``h`` hide (the background alone, on demand), ``q`` quit
(and, with a preview, ``m`` the matte, space pause). On POSIX the terminal is put in
cbreak mode while the run lasts (keys one at a time, not echoed; Ctrl-C still
interrupts) and restored after; only a terminal that is standard input and whose
foreground this process is (not ``p3m-live &``, which reading would stop) is read.
On Windows the console's keys are read with ``msvcrt``, which neither echoes them
nor waits for Enter, so there is nothing to restore.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import sys
import threading
from collections.abc import Iterable

# Key codes (as OpenCV's waitKey and a terminal give them) -> actions; the preview also
# takes Esc, which a terminal sends at the start of every arrow key.
KEYS = {
    ord("q"): "quit",
    ord("b"): "background",
    ord("f"): "frame",
    ord("h"): "hide",
    ord("m"): "matte",
    ord(" "): "pause",
}
HELP = "b next background, f auto framing, h hide, q quit"
POLL_S = 0.1  # how long a reader waits for a key before it looks whether it should stop


class TerminalKeys:
    """Keys pressed in a terminal, read on a thread of their own into a queue. The
    reading itself is the platform's: :meth:`_codes` gives what was typed, as codes."""

    def __init__(self) -> None:
        self._actions: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="p3m-keys", daemon=True)
        self._thread.start()

    @staticmethod
    def of_stdin() -> TerminalKeys | None:
        """Keys from the terminal this process was started from, where standard input is
        one (a run from a script or a service has none), else None."""
        if not sys.stdin.isatty():
            return None
        if os.name == "nt":
            return ConsoleKeys()
        fd = sys.stdin.fileno()
        return PosixKeys(fd) if _in_foreground(fd) else None

    def _read(self) -> None:
        while not self._stop.is_set():
            codes = self._codes()
            if codes is None:  # the terminal closed
                return
            for code in codes:
                if (action := KEYS.get(code)) is not None:
                    self._actions.put(action)

    def _codes(self) -> Iterable[int] | None:
        """What was typed within about POLL_S seconds (maybe nothing), or None at the end."""
        raise NotImplementedError

    def poll(self) -> str | None:
        """The oldest action not taken yet, or None."""
        try:
            return self._actions.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop reading (and give the terminal its settings back)."""
        self._stop.set()
        self._thread.join(timeout=1.0)


class PosixKeys(TerminalKeys):
    """A POSIX terminal, in cbreak mode while it is read."""

    def __init__(self, fd: int) -> None:
        import termios
        import tty

        self.fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        super().__init__()

    def _codes(self) -> Iterable[int] | None:
        ready, _, _ = select.select([self.fd], [], [], POLL_S)
        if not ready or not _in_foreground(self.fd):  # (moved to the background: reading would stop us)
            return ()
        try:
            data = os.read(self.fd, 64)
        except OSError:
            return None
        return data or None  # (nothing at all: the terminal closed)

    def close(self) -> None:
        import termios

        super().close()
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


class ConsoleKeys(TerminalKeys):
    """A Windows console, through ``msvcrt`` (``console``: a stand-in for it in tests).

    A function or arrow key comes as two codes, a prefix (NUL or 0xE0) and the key's
    scan code; the second is not a typed letter and is passed over."""

    PREFIXES = ("\x00", "\xe0")

    def __init__(self, console=None) -> None:
        if console is None:
            import msvcrt as console  # (Windows only)
        self._console = console
        super().__init__()

    def _codes(self) -> Iterable[int] | None:
        codes = []
        while self._console.kbhit():
            char = self._console.getwch()
            if char in self.PREFIXES:
                self._console.getwch()  # (the key's scan code)
                continue
            codes.append(ord(char))
        if not codes:
            self._stop.wait(POLL_S)
        return codes


def _in_foreground(fd: int) -> bool:
    """Whether this process's group is the terminal's foreground (a terminal that is not
    this process's controlling one has no job control to mind)."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True
