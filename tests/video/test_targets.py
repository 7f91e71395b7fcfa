"""Where -o sends a stream instead of a file: standard output and network URLs."""

from __future__ import annotations

import pytest

from p3m_live.video.targets import shown_url, stream_target


@pytest.mark.parametrize(
    "output, url, fmt",
    [
        ("-", "pipe:1", "matroska"),
        ("udp://127.0.0.1:5000?pkt_size=1316", "udp://127.0.0.1:5000?pkt_size=1316", "mpegts"),
        ("SRT://example.org:9000", "SRT://example.org:9000", "mpegts"),
        ("rtmp://a.rtmp.youtube.com/live2/abcd-efgh", "rtmp://a.rtmp.youtube.com/live2/abcd-efgh", "flv"),
        ("rtsp://server:8554/me", "rtsp://server:8554/me", "rtsp"),
    ],
)
def test_stream_targets(output, url, fmt):
    target = stream_target(output)
    assert (target.url, target.format) == (url, fmt)
    assert target.network == (output != "-")


@pytest.mark.parametrize("output", ["out.mp4", "frames/", "http://example.org/x.mp4", "weird://x", "a:b.mkv"])
def test_files_are_not_streams(output):
    assert stream_target(output) is None


def test_a_stream_key_or_passphrase_is_not_shown():
    assert shown_url("rtmp://live.twitch.tv/app/live_123_SECRET") == "rtmp://live.twitch.tv/app/..."
    assert shown_url("srt://host:9000?passphrase=hunter22hunter22") == "srt://host:9000?..."
    assert shown_url("udp://127.0.0.1:5000") == "udp://127.0.0.1:5000"
    assert "SECRET" not in stream_target("rtmps://x.example/live/SECRET?k=1").name
