"""What a source says about the recording itself, carried into every output file.

The container's metadata (creation time, location, title, camera make and model;
not what a muxer writes for itself), the first frame's SMPTE timecode (see
:mod:`p3m_live.video.timecodes`), the chapters, and Matroska's attachments (the fonts
that ASS subtitles are drawn with, cover art). For a part of the recording
(``--start``, ``--duration``) each is moved as ffmpeg would: the creation time by
the start, the timecode by as many frames, chapters cut to the part and moved to
its clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from fractions import Fraction

import av

from .timecodes import shifted_timecode, source_timecode


@dataclass(frozen=True)
class Recording:
    metadata: dict[str, str] = field(default_factory=dict)
    timecode: str | None = None
    chapters: tuple[dict, ...] = ()  # as PyAV's Container.chapters() gives them
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (file name, MIME type, bytes)

    @classmethod
    def of(cls, container: av.container.InputContainer, video: av.stream.Stream) -> Recording:
        chapters = tuple(c for c in container.chapters() if c["end"] > c["start"])
        attachments = tuple(
            (s.name, s.mimetype or "application/octet-stream", bytes(s.data))
            for s in container.streams
            if s.type == "attachment" and s.name and s.data
        )
        return cls(recording_metadata(container.metadata), source_timecode(container, video), chapters, attachments)

    def part(self, start: float, end: float | None, rate: Fraction | None) -> Recording:
        """This recording's facts for the part from ``start`` to ``end`` seconds."""
        timecode = self.timecode
        if timecode and start and rate:
            timecode = shifted_timecode(timecode, start, rate)
        metadata = shifted_metadata(self.metadata, start) if start else self.metadata
        return replace(self, metadata=metadata, timecode=timecode, chapters=part_chapters(self.chapters, start, end))


# Container metadata the muxer writes for itself; the rest (creation time, location,
# title, camera make and model) is the recording's and is kept, as ffmpeg keeps it.
MUXER_KEYS = {"major_brand", "minor_version", "compatible_brands", "encoder"}
# MXF's file-wide timecode goes on the video stream instead, moved by --start (see timecodes.py).
NOT_COPIED = {*MUXER_KEYS, "timecode"}


def recording_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """The metadata of a recording worth carrying into its outputs (see ``MUXER_KEYS``);
    MP4's per-language copies (``location-eng`` beside ``location``) are left to the muxer."""

    def language_copy(key: str) -> bool:
        base, _, language = key.rpartition("-")
        return base in metadata and len(language) == 3

    return {k: v for k, v in metadata.items() if k.lower() not in NOT_COPIED and not language_copy(k)}


CREATION_KEYS = ("creation_time", "com.apple.quicktime.creationdate")


def shifted_metadata(metadata: dict[str, str], seconds: float) -> dict[str, str]:
    """``metadata`` for a part that starts ``seconds`` into the recording: its creation
    times moved by as much, in their own ISO 8601 spelling (unparseable ones are left)."""
    out = dict(metadata)
    for key in CREATION_KEYS:
        try:
            when = datetime.fromisoformat(out[key])
        except (KeyError, ValueError):
            continue
        moved = when + timedelta(seconds=seconds)
        if out[key].endswith("Z"):
            out[key] = moved.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            text = moved.isoformat(timespec="seconds" if "." not in out[key] else "microseconds")
            compact = out[key][-5] in "+-" and out[key][-4:].isdigit()  # Apple's +0200, not +02:00
            out[key] = text[:-3] + text[-2:] if compact else text
    return out


def part_chapters(chapters: tuple[dict, ...], start: float, end: float | None) -> tuple[dict, ...]:
    """The chapters that overlap ``start``..``end`` seconds, cut to it and moved to start at 0."""
    out = []
    for c in chapters:
        tb = c["time_base"]
        begin, finish = float(c["start"] * tb), float(c["end"] * tb)
        last = finish if end is None else min(finish, end)
        if last <= start or (end is not None and begin >= end):
            continue
        cut = {**c, "start": round((max(begin, start) - start) / tb), "end": round((last - start) / tb)}
        out.append(cut)
    return tuple(out)
