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
