"""The keys of a live run: in the preview window, and in the terminal it was started from.

A virtual camera often runs without a preview (no display, or the call's own view
is enough), so the terminal takes the same keys: ``b`` next background, ``f``
auto framing on or off, ``h`` hide (the background alone, on demand), ``q`` quit
(and, with a preview, ``m`` the matte, space pause). The terminal is put in cbreak
mode while the run lasts (keys one at a time, not echoed; Ctrl-C still interrupts)
and restored after. Only a terminal that is standard input and whose foreground
this process is (not ``p3m-live &``, which reading would stop) is read. POSIX only:
on Windows the preview's keys are the keys.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import sys
import threading

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


class TerminalKeys:
    """Keys pressed in a terminal, read on a thread of their own into a queue."""

    def __init__(self, fd: int) -> None:
        import termios
        import tty

        self.fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._actions: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="p3m-keys", daemon=True)
        self._thread.start()

    @classmethod
    def of_stdin(cls) -> TerminalKeys | None:
        """Keys from standard input where it is this process's terminal, else None."""
        if os.name != "posix" or not sys.stdin.isatty():
            return None
        fd = sys.stdin.fileno()
        if not _in_foreground(fd):
            return None
        return cls(fd)

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready or not _in_foreground(self.fd):  # (moved to the background: reading would stop us)
                continue
            try:
                data = os.read(self.fd, 64)
            except OSError:
                return
            if not data:  # the terminal closed
                return
            for code in data:
                if (action := KEYS.get(code)) is not None:
                    self._actions.put(action)

    def poll(self) -> str | None:
        """The oldest action not taken yet, or None."""
        try:
            return self._actions.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop reading and give the terminal its settings back."""
        import termios

        self._stop.set()
        self._thread.join(timeout=1.0)
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


def _in_foreground(fd: int) -> bool:
    """Whether this process's group is the terminal's foreground (a terminal that is not
    this process's controlling one has no job control to mind)."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True
