"""Waiting for a key reader's actions, for the terminal and console key tests."""

from __future__ import annotations

import time

from p3m_live.keys import TerminalKeys


def taken(keys: TerminalKeys, n: int, timeout: float = 3.0) -> list[str]:
    """The first ``n`` actions the reader gives within ``timeout`` seconds (fewer if not)."""
    got, end = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        action = keys.poll()
        if action is None:
            time.sleep(0.01)
        else:
            got.append(action)
    return got
