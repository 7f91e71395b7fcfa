"""Nothing lost: real runs stopped with SIGINT, SIGTERM or a closed terminal leave a playable
file with its audio; one killed hard leaves all but its last second."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable

import av
import pytest

from tests.conftest import torch_args
from tests.media import make_clip, probe


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """40 s of 96x64 video with a tone: far longer than the few seconds each run gets."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", frames=1000)


def _wait_for_fragments(proc: subprocess.Popen, partial, n: int, timeout: float = 120) -> None:
    """Until the partial MP4 holds ``n`` fragments (a second of video each) or the run ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.exists() and partial.read_bytes().count(b"moof") >= n:
            return
        time.sleep(0.2)


def _ctrl_c_on() -> None:
    """In the child: SIGINT as a shell starts a command in the foreground, even where the
    tests run as a background job (``cmd &`` in a script), whose commands ignore it. (A run
    started so keeps ignoring it, as a background job should.)"""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_finishes_a_playable_file(long_clip, seed32_ckpt, tmp_path, sig, code):
    out = tmp_path / "out.mp4"
    cmd = [
        sys.executable,
        "-m",
        "p3m_live.cli",
        str(long_clip),
        "-o",
        str(out),
        *torch_args(seed32_ckpt),
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_on)
    started = time.monotonic()
    # Wait until frames are in the file (its first one-second fragment), however slow the machine.
    _wait_for_fragments(proc, tmp_path / "out.partial.mp4", 1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == code, rest
    assert "Traceback" not in rest and "interrupted" in rest
    assert time.monotonic() - started < 150
    assert not list(tmp_path.glob("*.partial*")) and out.exists()
    info = probe(out)
    n = len(info["times"])
    assert 0 < n < 1000  # some frames, not all
    assert info["times"] == pytest.approx(probe(long_clip)["times"][:n])
    with av.open(str(out)) as c:
        audio_seconds = sum(f.samples / f.sample_rate for f in c.decode(audio=0))
    assert abs(audio_seconds - n / 25) < 1.0  # the audio up to that point, not the whole 40 s


def test_a_run_killed_hard_leaves_a_playable_partial_file(long_clip, seed32_ckpt, tmp_path):
    """SIGKILL (or a crash, or power loss) runs no cleanup: the partial MP4, written as
    fragments of a second, still plays up to its last fragment, with the source's times."""
    out = tmp_path / "out.mp4"
    partial = tmp_path / "out.partial.mp4"
    cmd = [sys.executable, "-m", "p3m_live.cli", str(long_clip), "-o", str(out), "-q", *torch_args(seed32_ckpt)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    _wait_for_fragments(proc, partial, 3)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.kill()
    proc.wait(timeout=30)
    assert partial.exists() and not out.exists()
    info = probe(partial)
    n = len(info["times"])
    assert 25 <= n < 1000  # at least a second of frames, not all
    # The source's times: the first n, but for a B-frame whose anchor made the last fragment
    # while it would have made the next (a fragment is cut between packets, in decode order).
    source = probe(long_clip)["times"]
    assert info["times"][: n - 2] == pytest.approx(source[: n - 2])
    assert set(info["times"]) <= set(source[: n + 2])


def test_a_run_killed_hard_has_written_all_but_its_last_second(seed32_ckpt, tmp_path):
    """A source that stops sending (a stream that stalls, a pipe) leaves the run waiting: what
    it has made so far is on disk, but for the one fragment still being filled. FFmpeg's own
    256 KiB buffer held all of it (8 s of small frames) until flush_packets."""
    fed = make_clip(tmp_path / "fed.mkv", frames=200)
    out, partial = tmp_path / "out.mp4", tmp_path / "out.partial.mp4"
    cmd = [sys.executable, "-m", "p3m_live.cli", "-", "-o", str(out), "-q", *torch_args(seed32_ckpt)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        proc.stdin.write(fed.read_bytes())
        proc.stdin.flush()  # (and left open: the run waits for more)
        _wait_for_fragments(proc, partial, 7, timeout=60)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=30)
    n = len(probe(partial)["times"])
    assert 150 <= n < 200  # 8 s fed, fragments of a second: at most the last one lost


def _own_terminal(hangup: object = signal.SIG_DFL) -> Callable[[], None]:
    """In the child: a session of its own, the pty on its stdin its controlling terminal, and
    SIGHUP as ``hangup`` (its default, as a shell starts it, even where the tests run under
    nohup; or ignored, as under nohup)."""

    def start() -> None:
        signal.signal(signal.SIGHUP, hangup)
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    return start


def _run_and_close_its_terminal(clip, out, ckpt, hangup: object = signal.SIG_DFL) -> int:
    """A run whose stdin, stdout and stderr are a terminal, closed once a second is written
    (its window closed, its ssh connection dropped): the run's exit code."""
    master, slave = pty.openpty()
    cmd = [sys.executable, "-m", "p3m_live.cli", str(clip), "-o", str(out), *torch_args(ckpt)]
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, preexec_fn=_own_terminal(hangup))
    os.close(slave)
    try:
        _wait_for_fragments(proc, out.with_suffix(".partial.mp4"), 1)
        assert proc.poll() is None, "the run ended before its terminal was closed"
        os.close(master)  # the hangup
        return proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(os.name != "posix", reason="terminals that hang up are POSIX")
def test_a_closed_terminal_finishes_the_file(long_clip, seed32_ckpt, tmp_path):
    """The kernel sends SIGHUP, and every later write to that terminal fails. The run still
    finishes a playable file, and exits 129 (128 + SIGHUP) as a shell reports it."""
    out = tmp_path / "out.mp4"
    assert _run_and_close_its_terminal(long_clip, out, seed32_ckpt) == 128 + signal.SIGHUP
    assert not list(tmp_path.glob("*.partial*"))
    n = len(probe(out)["times"])
    assert 25 <= n < 1000


@pytest.mark.skipif(os.name != "posix", reason="terminals that hang up are POSIX")
def test_a_run_under_nohup_outlives_its_terminal(seed32_ckpt, tmp_path):
    """SIGHUP ignored: the run goes on to the end, whole, though nothing it says can be shown
    (its progress and its closing table once failed it, and left the file partial)."""
    clip = make_clip(tmp_path / "in.mp4", frames=100)
    out = tmp_path / "out.mp4"
    assert _run_and_close_its_terminal(clip, out, seed32_ckpt, hangup=signal.SIG_IGN) == 0
    assert not list(tmp_path.glob("*.partial*"))
    assert probe(out)["times"] == probe(clip)["times"]


@pytest.mark.skipif(os.name != "posix", reason="terminals that hang up are POSIX")
def test_the_progress_bar_stops_showing_on_a_hung_up_terminal(hung_up_terminal):
    """The first writes after a hangup fail before SIGHUP is handled (the race the test above
    can lose): they must not end the run with an error of their own."""
    from p3m_live.stats import Progress

    progress = Progress(total=10, stream=hung_up_terminal, interval=0)
    progress.update(1)
    progress.finish(10)
    assert progress.stream is None


@pytest.mark.skipif(os.name != "posix", reason="terminals that hang up are POSIX")
def test_error_lines_to_a_hung_up_terminal_keep_the_exit_code(hung_up_terminal, tmp_path, monkeypatch):
    from p3m_live.cli import main

    monkeypatch.setattr(sys, "stderr", hung_up_terminal)
    assert main([str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "out.mp4")]) == 2


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX")
@pytest.mark.parametrize("nohup", [False, True])
def test_a_run_under_nohup_keeps_ignoring_hangups(nohup, monkeypatch):
    from p3m_live import signals

    before = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM)}  # (given back after)
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)
        signals.install()
        monkeypatch.setattr(signals, "_terminals", [])  # (the test's own terminal stays as it is)
        assert (signal.getsignal(signal.SIGHUP) is signal.SIG_IGN) == nohup
        if not nohup:
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGHUP)
            assert signals.exit_code() == 129
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        monkeypatch.setattr(signals, "_stopped_by", None)
