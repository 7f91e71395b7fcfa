"""Nothing lost: real runs stopped with SIGINT and SIGTERM leave a playable file with its audio."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

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
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
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
    assert info["times"] == pytest.approx(probe(long_clip)["times"][:n])
