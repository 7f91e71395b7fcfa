"""SMPTE timecode: read from the source, moved by --start, drop-frame counted right."""

from __future__ import annotations

import random
from fractions import Fraction

import av
import pytest

from p3m_live.video.timecodes import frames_timecode, shifted_timecode, source_timecode, timecode_frames
from tests.media import make_clip

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("frames", "tc"),
    [
        (0, "00:00:00;00"),
        (1799, "00:00:59;29"),
        (1800, "00:01:00;02"),  # ;00 and ;01 do not exist at a minute...
        (17981, "00:09:59;29"),
        (17982, "00:10:00;00"),  # ... but every tenth one
        (19782, "00:11:00;02"),
        (107892, "01:00:00;00"),  # an hour of 29.97 fps is 107892 frames, and 01:00:00;00
    ],
)
def test_drop_frame_timecode_at_29_97(frames, tc):
    assert frames_timecode(frames, NTSC, drop=True) == tc
    assert timecode_frames(tc, NTSC) == frames


def test_drop_frame_round_trips_and_wraps_at_midnight():
    day = 30 * 86400 - 2 * (1440 - 144)  # frames in a drop-frame day at 29.97
    for rate, drop in ((NTSC, 2), (Fraction(60000, 1001), 4)):
        per_day = round(rate.numerator / rate.denominator) * 86400 - drop * (1440 - 144)
        assert all(timecode_frames(frames_timecode(n, rate, True), rate) == n
                   for n in random.Random(5).sample(range(per_day), 5000))  # fmt: skip
        assert frames_timecode(per_day, rate, True).startswith("00:00:00;00")
    assert frames_timecode(day - 1, NTSC, True) == "23:59:59;29"


def test_non_drop_timecode_moves_by_the_start():
    assert shifted_timecode("01:00:00:00", 2.0, Fraction(25)) == "01:00:02:00"
    assert shifted_timecode("23:59:59:24", 0.04, Fraction(25)) == "00:00:00:00"
    assert shifted_timecode("10:00:00:00", 10.0, NTSC) == "10:00:10:00"  # 29.97 counted as 30, no drops
    assert shifted_timecode("01:00:00:00", 1.49, Fraction(25)) == "01:00:01:13"  # the first frame at or after it
    assert shifted_timecode("00:00:59;29", 1001 / 30000, NTSC) == "00:01:00;02"


def test_source_timecode_from_the_stream_the_track_or_the_file(tmp_path):
    mov = make_clip(tmp_path / "c.mov", frames=3, timecode="01:02:03:04")
    with av.open(str(mov)) as c:  # the video stream's, beside its tmcd track
        assert source_timecode(c, c.streams.video[0]) == "01:02:03:04"
    plain = make_clip(tmp_path / "p.mp4", frames=3)
    with av.open(str(plain)) as c:
        assert source_timecode(c, c.streams.video[0]) is None
    mkv = tmp_path / "g.mkv"  # a file-wide timecode (as MXF has it), and a value that is none
    with av.open(str(plain)) as inp, av.open(str(mkv), "w") as out:
        out.metadata["timecode"] = "05:00:00:00"
        s = out.add_stream_from_template(inp.streams.video[0], opaque=True)
        s.metadata["timecode"] = "soon"
        for p in inp.demux(inp.streams.video[0]):
            if p.dts is not None:
                p.stream = s
                out.mux(p)
    with av.open(str(mkv)) as c:
        assert source_timecode(c, c.streams.video[0]) == "05:00:00:00"


def test_recording_part_cuts_chapters_and_moves_timecode_and_creation():
    from p3m_live.video.recording import Recording

    ms = Fraction(1, 1000)
    chapters = tuple({"id": i, "start": i * 1000, "end": (i + 1) * 1000, "time_base": ms, "metadata": {"title": str(i)}}
                     for i in range(3))  # fmt: skip
    rec = Recording({"creation_time": "2026-05-01T10:00:00.000000Z"}, "10:00:00:00", chapters)
    part = rec.part(1.5, 2.5, Fraction(25))
    assert [(c["start"], c["end"], c["metadata"]["title"]) for c in part.chapters] == [(0, 500, "1"), (500, 1000, "2")]
    assert part.timecode == "10:00:01:13" and part.metadata["creation_time"] == "2026-05-01T10:00:01.500000Z"
    assert rec.part(0.0, None, Fraction(25)) == rec  # the whole recording: as it is
    assert rec.part(3.0, None, Fraction(25)).chapters == ()  # past every chapter
