"""The terminal's keys in a live run, on a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import subprocess
import sys
import termios
import time

import pytest

from p3m_live.keys import PosixKeys, TerminalKeys
from tests.key_actions import taken

pytestmark = pytest.mark.skipif(os.name != "posix", reason="terminal keys are POSIX only")


def test_keys_are_read_one_at_a_time_and_the_terminal_is_given_back():
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        keys = PosixKeys(slave)
        during = termios.tcgetattr(slave)
        assert not during[3] & (termios.ICANON | termios.ECHO)  # cbreak: no line buffering, no echo
        assert during[3] & termios.ISIG  # Ctrl-C still interrupts
        os.write(master, b"xb\x1b[Afq")  # an unknown key and an arrow (Esc [ A) do nothing
        assert taken(keys, 3) == ["background", "frame", "quit"]
        assert keys.poll() is None
        keys.close()
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_stdin_that_is_not_a_terminal_gives_no_keys(monkeypatch):
    r, w = os.pipe()
    try:
        with os.fdopen(r) as pipe:
            monkeypatch.setattr(sys, "stdin", pipe)
            assert TerminalKeys.of_stdin() is None
    finally:
        os.close(w)


def _controlling_terminal() -> None:
    """In the child: a session of its own, with the pty on its stdin as its terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.parametrize("stop", ["q", "SIGTERM"])
def test_a_live_run_takes_b_f_and_q_from_its_terminal(tmp_path, fast_models, stop):
    """A real process whose standard input is a pseudo-terminal, its controlling one: b
    switches the background, f turns auto framing on, and q (or a SIGTERM) ends the run,
    long before its --duration, with a finished file and the terminal as it was."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    out = tmp_path / "live.mp4"
    cmd = [sys.executable, "-m", "p3m_live.cli", "testsrc2=size=96x64:rate=30,realtime", "--format", "lavfi",
           "--live", "-o", str(out), "--duration", "20", "--model", "fast", "--backend", "torch"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdin=slave, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_controlling_terminal)  # fmt: skip
    lines, rest = [], ""
    try:
        for line in proc.stderr:
            lines.append(line)
            if "keys: b next background" in line:
                break
        start = time.monotonic()
        for key in (b"b", b"f"):
            time.sleep(0.6)
            os.write(master, key)
        time.sleep(0.6)
        if stop == "q":
            os.write(master, b"q")
        else:
            proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
        took = time.monotonic() - start
        after = termios.tcgetattr(slave)  # (while the pty is open: closing its master hangs it up)
    finally:
        if proc.poll() is None:
            proc.kill()
        err = "".join(lines) + (rest or "")
        os.close(master)
    assert proc.returncode == 0, err  # (a live run stopped is a live run ended: Ctrl-C, SIGTERM or q)
    assert "background: colour #00b140" in err and "auto framing on" in err and took < 10
    assert after == before
    os.close(slave)
    from tests.media import probe

    assert len(probe(out)["times"]) > 10
