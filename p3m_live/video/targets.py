"""Composite outputs that are not files: standard output and network streams.

``-o -`` writes Matroska to standard output, for a program that reads it (``ffplay -``,
``ffmpeg -i - ...``): it holds almost any stream and needs no seeking. ``-o`` with a
network URL sends the composite as a live stream, in the container its protocol
carries: MPEG-TS over SRT, UDP and TCP, FLV over RTMP (Twitch, YouTube, an OBS or
nginx server), RTP, or RTSP to a server that takes a published stream. Such an
output has no name to move into place and nothing to rewrite; what can fail is the
reader or the network, and that is said in one line.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

STDOUT = "-"
STDOUT_FORMAT = "matroska"
NETWORK_FORMATS = {
    "srt": "mpegts",
    "udp": "mpegts",
    "tcp": "mpegts",
    "rtp": "rtp_mpegts",
    "rtmp": "flv",
    "rtmps": "flv",
    "rtsp": "rtsp",
}
# Streaming services want a keyframe at least every 4 s (Twitch and YouTube say 2); x264's
# default is every 250 frames, 10 s at 25 fps, and a viewer who joins waits for the next one.
KEYFRAME_SECONDS = 2


@dataclass(frozen=True)
class Target:
    url: str  # what FFmpeg opens
    format: str  # the muxer
    name: str  # for messages: an RTMP stream key (the secret part of the URL) is not shown

    @property
    def network(self) -> bool:
        return self.url != "pipe:1"


def stream_target(output: str | None) -> Target | None:
    """Where ``-o OUTPUT`` sends a stream instead of writing a file, or None for a file name
    (or no ``-o``)."""
    if not output:
        return None
    if output == STDOUT:
        return Target("pipe:1", STDOUT_FORMAT, "standard output")
    scheme, sep, _ = output.partition("://")
    if sep and scheme.lower() in NETWORK_FORMATS:
        return Target(output, NETWORK_FORMATS[scheme.lower()], shown_url(output))
    return None


def shown_url(url: str) -> str:
    """``url`` for a log line: scheme, host and port, and the path but its last part (an
    RTMP stream key, say) and any query (SRT's passphrase), which are hidden."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    host = host.split("?")[0]
    if not slash:
        return f"{scheme}://{host}" + ("?..." if "?" in rest else "")
    parts = path.split("?")[0].split("/")
    return f"{scheme}://{host}/" + "/".join([*parts[:-1], "..."])


def stdout_problem() -> str | None:
    """Why ``-o -`` cannot write here, or None: video on a terminal would only garble it."""
    try:
        if os.isatty(sys.stdout.fileno()):
            return "standard output is a terminal"
    except (AttributeError, OSError, ValueError):
        return "there is no standard output"
    return None
