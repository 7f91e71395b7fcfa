"""SMPTE timecode: a recording's start timecode, carried into its outputs.

Cameras and recorders write the timecode of a clip's first frame (MOV and MP4 in a
``tmcd`` track, MXF in the file's metadata; FFmpeg shows it as ``timecode`` metadata).
Editors line clips up by it, the matte against its original above all, so every video
output gets the source's, moved on by ``--start``. Drop-frame timecode (``;`` before
the frames, at 29.97 and 59.94 fps) skips frame numbers 0 and 1 (0 to 3 at 59.94) at
each minute but every tenth, so that it keeps to the clock.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import av

TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")
DAY = 24 * 3600  # timecode wraps at midnight


def source_timecode(container: av.container.InputContainer, video: av.stream.Stream) -> str | None:
    """The timecode of the first frame: the video stream's, else a timecode track's, else
    the file's (MXF); None where there is none or it is not a timecode. (Matroska spells the
    key TIMECODE.)"""
    holders = [video.metadata, *(s.metadata for s in container.streams if s.type == "data"), container.metadata]
    found = [v for meta in holders for k, v in meta.items() if k.lower() == "timecode"]
    return next((tc for tc in found if TIMECODE.match(tc)), None)


def _nominal(rate: Fraction) -> int:
    """The timecode's frames per second: 30 for 29.97, 24 for 23.976."""
    return max(1, round(rate))


def _dropped(rate: Fraction, drop: bool) -> int:
    """Frame numbers skipped at a drop-frame minute: 2 at 29.97, 4 at 59.94, else none."""
    return round(rate * Fraction(1, 15)) if drop and rate.denominator != 1 else 0


def timecode_frames(tc: str, rate: Fraction) -> int:
    """Frames from 00:00:00:00 to ``tc`` at ``rate``."""
    m = TIMECODE.match(tc)
    if m is None:
        raise ValueError(f"not a timecode: {tc!r}")
    hh, mm, ss, sep, ff = m.groups()
    hh, mm, ss, ff = int(hh), int(mm), int(ss), int(ff)
    nominal, dropped = _nominal(rate), _dropped(rate, sep in ";,")
    minutes = 60 * hh + mm
    return ((hh * 3600 + mm * 60 + ss) * nominal + ff) - dropped * (minutes - minutes // 10)


def frames_timecode(frames: int, rate: Fraction, drop: bool) -> str:
    """The timecode ``frames`` frames after 00:00:00:00 at ``rate`` (wrapping at 24 h)."""
    nominal, dropped = _nominal(rate), _dropped(rate, drop)
    if dropped:
        per_ten = round(rate * 600)  # real frames in ten minutes: 17982 at 29.97
        per_minute = nominal * 60 - dropped
        frames %= nominal * DAY - dropped * (24 * 60 - 24 * 6)  # a drop-frame day: 1296 minutes drop
        tens, rest = divmod(frames, per_ten)
        frames += dropped * 9 * tens + (dropped * ((rest - dropped) // per_minute) if rest > dropped else 0)
    frames %= nominal * DAY
    seconds, ff = divmod(frames, nominal)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{';' if dropped else ':'}{ff:02d}"


def shifted_timecode(tc: str, seconds: float, rate: Fraction) -> str:
    """``tc`` of a part that starts ``seconds`` later: that of its first frame, the first at or
    after ``seconds`` at ``rate``."""
    drop = TIMECODE.match(tc).group(4) in ";,"  # type: ignore[union-attr]
    return frames_timecode(timecode_frames(tc, rate) + math.ceil(seconds * rate - 1e-6), rate, drop)


def doubled_timecode(tc: str, rate: Fraction) -> str:
    """``tc``, counted at ``rate``, as the same instant counted at twice the rate (25i
    deinterlaced to 50p: frame 12 becomes frame 24)."""
    drop = TIMECODE.match(tc).group(4) in ";,"  # type: ignore[union-attr]
    return frames_timecode(timecode_frames(tc, rate) * 2, rate * 2, drop)
