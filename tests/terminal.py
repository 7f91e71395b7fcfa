"""A pseudo-terminal for tests of what a program shows on its terminal (POSIX only)."""

from __future__ import annotations

import contextlib
import os
import select


class Terminal:
    """A pseudo-terminal for a test to write to as a program writes to its stderr: what was
    shown is read from the other end; ``hang_up`` closes that end, after which every write
    fails with EIO, as on a terminal whose window was shut."""

    def __init__(self) -> None:
        import pty

        self._master, slave = pty.openpty()
        self.stream = open(slave, "w", buffering=1)  # noqa: SIM115 (line by line, as stderr writes; closed in close)

    def shown(self) -> str:
        """Everything written so far (the terminal's own \\r\\n for each \\n)."""
        out = b""
        while select.select([self._master], [], [], 0.2)[0]:
            out += os.read(self._master, 65536)
        return out.decode()

    def hang_up(self) -> None:
        os.close(self._master)
        self._master = -1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
        if self._master >= 0:
            os.close(self._master)
