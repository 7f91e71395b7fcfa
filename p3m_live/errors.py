"""The one project error type.

Anything the user can fix (a missing file, a wrong checkpoint, a bad option)
raises :class:`P3MError` with a one-line message that names the problem and what
to do; the command line prints it and exits with code 2, never a traceback.
"""


class P3MError(Exception):
    """A problem with the user's input or set-up, explained in one line."""


def reason(e: BaseException) -> str:
    """The system's own words for an OS or FFmpeg error (its strerror), else its message."""
    return getattr(e, "strerror", None) or str(e)
