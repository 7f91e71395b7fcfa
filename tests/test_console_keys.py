"""A Windows console's keys, read through msvcrt: a double of msvcrt here (it cannot be
imported on this machine), and the real module's absence as the real error path."""

from __future__ import annotations

import os
import threading

import pytest

from p3m_live.keys import ConsoleKeys
from tests.key_actions import taken


class ConsoleDouble:
    """A double of ``msvcrt``'s ``kbhit`` and ``getwch``: what is typed, as a queue of
    characters, each one there for the reader when it is typed."""

    def __init__(self) -> None:
        self._typed: list[str] = []
        self._lock = threading.Lock()

    def type(self, chars: str) -> None:
        with self._lock:
            self._typed.extend(chars)

    def kbhit(self) -> bool:
        with self._lock:
            return bool(self._typed)

    def getwch(self) -> str:
        with self._lock:
            return self._typed.pop(0)


def test_console_keys_become_actions_and_a_function_keys_scan_code_is_passed_over():
    console = ConsoleDouble()
    keys = ConsoleKeys(console)
    try:
        console.type("xb")  # an unknown key, then b
        assert taken(keys, 1) == ["background"]
        # An arrow key is 0xE0 and its scan code, F-keys NUL and theirs: here scan codes that
        # happen to be letters we take; they are not typed letters.
        console.type("\xe0h\x00qf")
        console.type(" q")
        assert taken(keys, 3) == ["frame", "pause", "quit"]
        assert keys.poll() is None
    finally:
        keys.close()
    assert not keys._thread.is_alive()


@pytest.mark.skipif(os.name == "nt", reason="msvcrt exists on Windows")
def test_without_msvcrt_the_console_reader_cannot_start():
    with pytest.raises(ImportError):
        ConsoleKeys()
