"""Status lines on stderr, which may be a terminal that has hung up."""

from __future__ import annotations

import sys
from typing import TextIO


def say(text: str, stream: TextIO | None = None) -> bool:
    """Write ``text`` to ``stream`` (stderr as it is now, redirections included) at once, and
    whether it could be. A terminal that hung up fails every write (EIO) before its SIGHUP is
    handled (see signals): a line unshown must not end the run, nor change its exit code."""
    try:
        stream = stream or sys.stderr
        stream.write(text)
        stream.flush()
        return True
    except OSError:
        return False


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (stderr as it is now) is a terminal: where a bar redrawn in place
    belongs (a log file would get a copy of it per redraw). A closed stream, or one with no
    file behind it (a test's capture), is not."""
    try:
        stream = stream or sys.stderr
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False
