"""Weight resolution order, and the download: real HTTP on loopback, atomic, clear when offline."""

from __future__ import annotations

import http.server
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from p3m_live.errors import P3MError
from p3m_live.model import weights as W


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(W.WEIGHTS_ENV, raising=False)
    return tmp_path / "cache" / "p3m-live" / W.RELEASE_NAME


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b"x" * 300_000
    lie_about_length = False
    content_type = "application/octet-stream"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        n = len(self.body) + (1000 if self.lie_about_length else 0)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield handler, f"http://127.0.0.1:{httpd.server_port}/w.pth"
    httpd.shutdown()
    httpd.server_close()


def test_explicit_path_wins(tmp_path, cache, monkeypatch):
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"1")
    env = tmp_path / "env.pth"
    env.write_bytes(b"2")
    monkeypatch.setenv(W.WEIGHTS_ENV, str(env))
    assert W.resolve_weights(explicit) == explicit
    assert W.resolve_weights() == env


def test_env_pointing_nowhere(tmp_path, cache, monkeypatch):
    monkeypatch.setenv(W.WEIGHTS_ENV, str(tmp_path / "gone.pth"))
    with pytest.raises(P3MError, match="P3M_LIVE_WEIGHTS"):
        W.resolve_weights()


def test_cache_is_used(cache):
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"3")
    assert W.resolve_weights(download=False) == cache


def test_no_download_gives_manual_instructions(cache):
    with pytest.raises(P3MError) as e:
        W.resolve_weights(download=False)
    assert str(cache) in str(e.value) and W.GDRIVE_ID in str(e.value)


def test_download_into_cache(cache, server):
    handler, url = server
    got = W.resolve_weights(url=url)
    assert got == cache and got.read_bytes() == handler.body
    assert list(cache.parent.iterdir()) == [cache]  # no temporary file left behind


def test_truncated_download_leaves_nothing(cache, server):
    handler, url = server
    handler.lie_about_length = True
    with pytest.raises(P3MError, match="stopped at"):
        W.resolve_weights(url=url)
    assert not cache.exists() and list(cache.parent.iterdir()) == []


def test_html_page_is_refused(cache, server):
    handler, url = server
    handler.content_type = "text/html; charset=utf-8"
    with pytest.raises(P3MError, match="web page"):
        W.resolve_weights(url=url)
    assert not cache.exists()


def test_offline_message(cache):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(P3MError) as e:
        W.resolve_weights(url=f"http://127.0.0.1:{port}/w.pth")
    assert "cannot be downloaded" in str(e.value) and str(cache) in str(e.value)


def test_the_download_bar_shows_on_a_terminal_only_and_never_fails_the_download(cache, server, monkeypatch, capsys):
    """On a terminal the bar is drawn and its line ended; into a file or pipe nothing (a
    copy of the bar per megabyte); on a terminal that hung up (every write fails with EIO)
    the download still completes."""
    from tests.terminal import Terminal

    if os.name != "posix":
        pytest.skip("pseudo-terminals are POSIX")
    handler, url = server
    assert W.download_file(url, cache) == cache and capsys.readouterr().err == ""  # (captured: not a terminal)
    for hung_up in (False, True):
        cache.unlink()
        terminal = Terminal()
        if hung_up:
            terminal.hang_up()
        with monkeypatch.context() as m:
            m.setattr(sys, "stderr", terminal.stream)
            assert W.download_file(url, cache).read_bytes() == handler.body
        if not hung_up:
            shown = terminal.shown()
            assert "downloading weights [" in shown and shown.endswith("0.3/0.3 MB\r\n")  # (the tty's own \r\n)
        terminal.close()
