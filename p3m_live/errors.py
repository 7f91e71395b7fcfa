"""The one project error type.

Anything the user can fix (a missing file, a wrong checkpoint, a bad option)
raises :class:`P3MError` with a one-line message that names the problem and what
to do; the command line prints it and exits with code 2, never a traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path


class P3MError(Exception):
    """A problem with the user's input or set-up, explained in one line."""


def reason(e: BaseException) -> str:
    """The system's own words for an OS or FFmpeg error (its strerror), else its message."""
    return getattr(e, "strerror", None) or str(e)


def out_of_room(e: BaseException) -> bool:
    """Whether a write failed for want of space: the disk, or the user's quota, full."""
    return getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)


def no_room(what: str, path: Path | None) -> P3MError:
    """The one line for a full disk: ``what`` could not be written, and where to make room
    (``path``'s folder; None for standard output)."""
    where = f"in {path.parent}" if path is not None else "where it goes"
    return P3MError(f"the disk is full: {what}; free some space {where} or write to another disk")


def write_error(e: OSError, path: Path) -> P3MError:
    """The one line for a file that could not be written: a full disk, or the system's reason."""
    if out_of_room(e):
        return no_room(f"{path.name} could not be written", path)
    return P3MError(f"cannot write {path} ({reason(e)}); choose a writable folder")
