"""Sources: real files decoded with PyAV, rotation, variable frame rates, images, bad input."""

from __future__ import annotations

import errno
import io
import logging
import time
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from p3m_live.errors import P3MError
from p3m_live.video.frames import Frame, matrix_of, planes_to_rgb, rotate_planes
from p3m_live.video.sinks import FileSink
from p3m_live.video.sources import NONBLOCK, AVSource, ImageSource, open_source
from tests.media import (
    audio_onset,
    audio_samples,
    combing,
    make_clip,
    make_interlaced_clip,
    probe,
    raw_h264,
    shapes_frame,
    write_heic,
)


def _frames(source):
    return [i for i in source.items() if isinstance(i, Frame)]


def test_file_frames_keep_their_timestamps_and_audio(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=10, rate=25)
    with open_source(str(clip)) as src:
        assert (src.layout.width, src.layout.height, src.layout.fmt) == (96, 64, "i420")
        assert src.rate == 25 and src.total_frames == 10 and len(src.audio_streams) == 1
        items = list(src.items())
        packets = [i for i in items if isinstance(i, av.Packet)]
        assert packets and all(p.stream.type == "audio" for p in packets)  # (packets die with the container)
    frames = [i for i in items if isinstance(i, Frame)]
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(10)])
    assert [f.index for f in frames] == list(range(10))
    assert frames[0].data.shape == (96, 96) and frames[0].data.dtype == np.uint8  # I420: (H*3/2, W)
    # The planes are the decoded picture: the disc of frame 0 is where it was drawn.
    rgb = planes_to_rgb(frames[0].data, "i420", src.layout.matrix, src.layout.full_range)
    assert np.abs(rgb.astype(int) - shapes_frame(0, 96, 64)).mean() < 6


def test_variable_frame_rate_times_survive(tmp_path):
    pts = [0, 40, 80, 200, 230, 400]
    clip = make_clip(tmp_path / "vfr.mp4", frames=6, pts=pts, time_base=Fraction(1, 1000), audio_rate=None)
    with open_source(str(clip)) as src:
        assert [f.time for f in _frames(src)] == pytest.approx([p / 1000 for p in pts])


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    clip = make_clip(tmp_path / "r.mp4", frames=2, rotation=rotation, audio_rate=None)
    with open_source(str(clip)) as src:
        lay = src.layout
        frame = _frames(src)[0]
    k = (rotation // 90) % 4
    assert lay.rotation == k * 90
    assert (lay.width, lay.height) == ((64, 96) if k % 2 else (96, 64))
    rgb = planes_to_rgb(frame.data, "i420", lay.matrix, lay.full_range)
    want = np.rot90(shapes_frame(0, 96, 64), k)
    assert rgb.shape == want.shape and np.abs(rgb.astype(int) - want).mean() < 6


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
def test_plane_rotation_moves_each_plane(fmt):
    rng = np.random.default_rng(0)
    h, w = 6, 8
    data = rng.integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)
    out = rotate_planes(data, fmt, 1)
    assert out.shape == (w * 3 // 2, h)
    flat, rot = data.reshape(-1), out.reshape(-1)
    assert np.array_equal(rot[: h * w].reshape(w, h), np.rot90(flat[: h * w].reshape(h, w)))
    if fmt == "i420":
        u = flat[h * w : h * w + h * w // 4].reshape(h // 2, w // 2)
        assert np.array_equal(rot[h * w : h * w + h * w // 4].reshape(w // 2, h // 2), np.rot90(u))
    else:
        uv = flat[h * w :].reshape(h // 2, w // 2, 2)
        assert np.array_equal(rot[h * w :].reshape(w // 2, h // 2, 2), np.rot90(uv))


def test_odd_sizes_are_cropped_to_even_rgb(tmp_path):
    clip = make_clip(tmp_path / "odd.mkv", frames=2, size=(95, 63), codec="ffv1", pix_fmt="yuv444p", audio_rate=None)
    with open_source(str(clip)) as src:
        assert (src.layout.width, src.layout.height, src.layout.fmt) == (94, 62, "rgb")
        assert _frames(src)[0].data.shape == (62, 94, 3)


def test_other_pixel_formats_become_rgb(tmp_path):
    clip = make_clip(tmp_path / "c444.mkv", frames=3, codec="ffv1", pix_fmt="yuv444p", audio_rate=None)
    with open_source(str(clip)) as src:
        frames = _frames(src)
    assert src.layout.fmt == "rgb" and len(frames) == 3
    assert np.abs(frames[1].data.astype(int) - shapes_frame(1, 96, 64)).mean() < 3


@pytest.mark.parametrize("trc, named", [(18, "HLG"), (16, "PQ"), (1, None)])
def test_hdr_tag_alone_decides_tone_mapping(tmp_path, caplog, trc, named):
    """Tone mapping follows the transfer tag FFmpeg reads, 8-bit video too, and says so once;
    an SDR (BT.709) tag gets nothing. (test_hdr.py checks the colours.)"""
    path = tmp_path / "tagged.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.color_trc, s.codec_context.color_primaries = trc, 9 if named else 1
        for i in range(3):
            f = av.VideoFrame.from_ndarray(shapes_frame(i, 64, 48), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with caplog.at_level(logging.INFO, logger="p3m_live"), AVSource(str(path)) as src:
        frames = _frames(src)
    said = [r.getMessage() for r in caplog.records if "HDR" in r.getMessage()]
    assert len(frames) == 3 and src.layout.fmt == "i420"
    if named:
        assert len(said) == 1 and named in said[0] and "tone-mapping" in said[0]
        assert (src.tone_mapper is not None) and src.layout.matrix == "bt709"
    else:
        assert said == [] and src.tone_mapper is None


def test_image_folder_is_a_frame_sequence(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), cv2.cvtColor(shapes_frame(i, 40, 30), cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(str(tmp_path), rate=Fraction(10))
    assert isinstance(src, ImageSource) and src.total_frames == 3
    frames = _frames(src)
    assert [f.time for f in frames] == pytest.approx([0, 0.1, 0.2])
    assert np.array_equal(frames[2].data, shapes_frame(2, 40, 30))
    small = _frames(open_source(str(tmp_path), rate=Fraction(10), short_side=15))  # scaled, not cropped
    want = cv2.resize(shapes_frame(2, 40, 30), (20, 16), interpolation=cv2.INTER_AREA)
    assert small[2].data.shape == (16, 20, 3) and np.abs(small[2].data.astype(int) - want).max() <= 1
    part = _frames(open_source(str(tmp_path), rate=Fraction(10), start=0.1, duration=0.1))
    assert len(part) == 1 and part[0].time == 0 and np.array_equal(part[0].data, shapes_frame(1, 40, 30))


def test_image_sequences_go_in_number_order_by_folder_or_pattern(tmp_path):
    """IMG_2 comes before IMG_10 (numbers as numbers, as file browsers sort); a printf
    pattern reads the files it names in number order, others beside them left out."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in (1, 2, 10):
        cv2.imwrite(str(folder / f"IMG_{i}.png"), np.full((16, 16, 3), i * 20, np.uint8))
    cv2.imwrite(str(folder / "notes.png"), np.zeros((16, 16, 3), np.uint8))

    def values(spec):
        with open_source(str(spec)) as src:
            return [int(f.data[0, 0, 0]) for f in _frames(src)]

    assert values(folder) == [20, 40, 200, 0]  # (notes.png after the numbers)
    assert values(folder / "IMG_%d.png") == [20, 40, 200]
    for i in (7, 8, 9, 10):
        cv2.imwrite(str(tmp_path / f"render_{i:04d}.png"), np.full((16, 16, 3), i, np.uint8))
    cv2.imwrite(str(tmp_path / "render_12.png"), np.zeros((16, 16, 3), np.uint8))  # not 4 digits
    assert values(tmp_path / "render_%04d.png") == [7, 8, 9, 10]
    with pytest.raises(P3MError, match="no images match .*frame_%04d.png"):
        open_source(str(tmp_path / "frame_%04d.png"))


def test_photos_of_other_sizes_in_a_folder_are_shown_whole(tmp_path):
    """A folder's later photos of another size or orientation are fitted into the first one's
    frame, aspect kept, on black: not stretched, and not cropped to a corner."""
    pictures = [shapes_frame(0, 48, 32), shapes_frame(1, 96, 64), shapes_frame(2, 32, 48)]
    for i, rgb in enumerate(pictures):
        cv2.imwrite(str(tmp_path / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    frames = _frames(open_source(str(tmp_path)))
    assert all(f.data.shape == (32, 48, 3) for f in frames)
    bigger = cv2.resize(pictures[1], (48, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(frames[1].data.astype(int) - bigger).max() <= 1  # the whole picture, scaled
    portrait = frames[2].data
    assert portrait[:, :13].max() == 0 and portrait[:, 34:].max() == 0  # black beside it
    inner = cv2.resize(pictures[2], (21, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(portrait[:, 13:34].astype(int) - inner).max() <= 1


def test_a_damaged_image_in_a_sequence_is_skipped(tmp_path, caplog):
    """As a damaged packet in a video: a warning, and the other frames keep their times."""
    for i in (0, 2):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), cv2.cvtColor(shapes_frame(i, 40, 30), cv2.COLOR_RGB2BGR))
    (tmp_path / "01.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    frames = _frames(open_source(str(tmp_path), rate=Fraction(10)))
    assert [f.time for f in frames] == pytest.approx([0, 0.2])
    assert np.array_equal(frames[1].data, shapes_frame(2, 40, 30))
    assert any("skipped" in r.getMessage() and "01.png" in r.getMessage() for r in caplog.records)


def test_hidden_files_in_an_image_folder_are_not_frames(tmp_path, caplog):
    """macOS leaves a ``._`` file beside each file it copies to a USB disk (same suffix, no
    picture): not a damaged frame to warn about, and not a frame."""
    for i in (0, 1):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), cv2.cvtColor(shapes_frame(i, 40, 30), cv2.COLOR_RGB2BGR))
        (tmp_path / f"._{i:02d}.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    frames = _frames(open_source(str(tmp_path), rate=Fraction(10)))
    assert [f.time for f in frames] == pytest.approx([0, 0.1])
    assert np.array_equal(frames[1].data, shapes_frame(1, 40, 30))
    assert not any("skipped" in r.getMessage() for r in caplog.records)


def _jpeg(width: int = 60, height: int = 40, seed: int = 0) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", noise)
    assert ok
    return data.tobytes()


def test_a_jpeg_cut_short_is_told_from_a_whole_one(tmp_path):
    """A partial download or copy, cut anywhere from its headers to its last byte, is cut
    short; a whole one is not, nor one with a video after it (a phone's motion photo).
    An EXIF thumbnail, a whole JPEG of its own inside the headers, does not hide the cut."""
    from p3m_live.video.frames import cut_short_jpeg

    whole = _jpeg()
    thumbnail = _jpeg(16, 12, seed=1)
    app1 = b"Exif\x00\x00" + thumbnail
    with_thumb = whole[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + whole[2:]
    cases = {
        "whole.jpg": (whole, False),
        "motion.jpg": (whole + b"\x00\x00\x00\x18ftypmp42" + bytes(1000), False),
        "thumb.jpg": (with_thumb, False),
        "thumb-cut.jpg": (with_thumb[: len(with_thumb) - 200], True),
        "in-headers.jpg": (whole[:100], True),
        "mid-scan.jpg": (whole[: len(whole) // 2], True),
        "last-byte.jpg": (whole[:-1], True),
    }
    for name, (data, cut) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert cut_short_jpeg(tmp_path / name) is cut, name
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    assert not cut_short_jpeg(tmp_path / "a.png")


def test_a_jpeg_cut_short_is_one_line_of_ours_not_libjpegs(tmp_path, fast_models):
    """libjpeg fills a cut-short picture with grey and prints "Premature end of JPEG
    file" itself, from C; the run says the photo is damaged in one line of its own, and a
    folder passes it over as any damaged image."""
    import subprocess
    import sys

    (tmp_path / "cut.jpg").write_bytes(_jpeg()[:-300])
    cmd = [sys.executable, "-m", "p3m_live.cli", str(tmp_path / "cut.jpg"), "-o", str(tmp_path / "o.png")]
    r = subprocess.run([*cmd, "--model", "fast", "-q"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Premature" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "cut.jpg cannot be read as an image" in r.stderr
    assert not (tmp_path / "o.png").exists()
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, data in enumerate([_jpeg(seed=0), _jpeg(seed=1)[:-300], _jpeg(seed=2)]):
        (folder / f"{i:02d}.jpg").write_bytes(data)
    assert [f.time for f in _frames(open_source(str(folder), rate=Fraction(10)))] == pytest.approx([0, 0.2])


def test_a_live_sources_decoder_holds_no_frame_back(tmp_path, monkeypatch):
    """A live source's first frame comes out of the decoder with the first packet: slice
    threads only. A file's frame threads (with two or more cores) hold frames back, which
    a call would see as latency that no status line counts."""
    import os

    from p3m_live.video import sources

    clip = make_clip(tmp_path / "camera.mp4", frames=12, size=(160, 96), audio_rate=None)  # (no B-frames)
    decoded: list[int] = []
    real = sources.AVSource._decode
    monkeypatch.setattr(sources.AVSource, "_decode", lambda self, packet: decoded.append(1) or real(self, packet))
    packets = {}
    for live in (True, False):
        decoded.clear()
        AVSource(str(clip), live=live).close()
        packets[live] = len(decoded)  # video packets decoded to get the first frame
    assert packets[True] == 1
    if (os.cpu_count() or 1) > 1:
        assert packets[False] > 1  # (the file's way, frame threads, would have held it back)


def test_lavfi_graph_is_a_live_source():
    src = AVSource("testsrc2=size=64x48:rate=30", format="lavfi", live=True)
    try:
        items = src.items()
        frames = [next(items) for _ in range(3)]
    finally:
        src.close()
    assert src.live and all(isinstance(f, Frame) and f.size == (64, 48) for f in frames)


class NonBlockingCameraDouble:
    """A test double for a camera read without blocking (there is no camera here): its
    ``demux`` gives the packets of a real lavfi graph, but raises PyAV's BlockingIOError
    (FFmpeg's EAGAIN, "no frame ready") for ``gaps[i]`` seconds before packet ``i``, as
    v4l2 and DirectShow do when opened with AVFMT_FLAG_NONBLOCK."""

    def __init__(self, gaps: dict[int, float]) -> None:
        self.real = av.open("testsrc2=size=64x48:rate=30", format="lavfi")
        self.gaps, self.given, self.demuxes, self.until = gaps, 0, 0, None

    def demux(self):
        self.demuxes += 1
        for packet in self.real.demux(video=0):
            if self.given in self.gaps:
                self.until = self.until or time.monotonic() + self.gaps[self.given]
                if time.monotonic() < self.until:
                    raise av.error.BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
                self.until = None
            self.given += 1
            yield packet


def test_a_camera_with_no_frame_ready_is_waited_for():
    """Short gaps (a camera at a low rate in the dark) are waited out: every packet comes,
    in order, the read going on where it stopped."""
    from p3m_live.video.sources import _waiting

    cam = NonBlockingCameraDouble({3: 0.3, 5: 0.2})
    packets = _waiting(cam.demux, stall=1.0, name="camera /dev/video0")
    got = [next(packets).pts for _ in range(8)]
    assert got == sorted(got) and len(set(got)) == 8 and cam.demuxes > 10
    cam.real.close()


def test_a_camera_that_stalls_is_a_one_line_error_after_the_stall_time():
    from p3m_live.video.sources import _waiting

    cam = NonBlockingCameraDouble({4: 60.0})
    packets = _waiting(cam.demux, stall=0.5, name="camera /dev/video0")
    assert len([next(packets) for _ in range(4)]) == 4
    t0 = time.monotonic()
    with pytest.raises(P3MError, match=r"camera /dev/video0 sent no frame for 0\.5 s \(stalled\)"):
        next(packets)
    assert 0.5 <= time.monotonic() - t0 < 1.0
    cam.real.close()


def test_a_device_read_without_blocking_is_opened_so():
    """``stall`` opens the device with FFmpeg's non-blocking flag on top of its defaults (a
    real lavfi graph here, which never has to wait, so its frames simply come)."""
    plain = AVSource("testsrc2=size=64x48:rate=30", format="lavfi", live=True)
    src = AVSource("testsrc2=size=64x48:rate=30", format="lavfi", live=True, stall=1.0)
    try:
        nonblock = int(NONBLOCK.lstrip("+"))
        assert src.container.flags == plain.container.flags | nonblock and not plain.container.flags & nonblock
        items = src.items()
        assert all(isinstance(next(items), Frame) for _ in range(5))
    finally:
        src.close(), plain.close()


def test_matrix_follows_the_tag_then_the_size():
    assert matrix_of(1, 640, 480) == "bt709" and matrix_of(5, 1920, 1080) == "bt601"
    assert matrix_of(2, 1920, 1080) == "bt709" and matrix_of(2, 640, 480) == "bt601"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.mp4", "input not found"),
        (
            lambda p: (p / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000)) and p / "noise.mp4",
            "cannot be opened as video",
        ),
        (lambda p: make_audio_only(p / "tone.m4a"), "has no video stream"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "has no images"),
    ],
)
def test_bad_inputs_give_one_line(tmp_path, make, message):
    with pytest.raises(P3MError, match=message) as e:
        open_source(str(make(tmp_path)))
    assert "\n" not in str(e.value)


def test_truncated_file_still_yields_what_it_has(tmp_path):
    clip = make_clip(tmp_path / "c.mkv", frames=20, audio_rate=None)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with open_source(str(cut)) as src:
        n = len(_frames(src))
    assert 0 < n < 20


def make_audio_only(path):
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        for i in range(5):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i * 1024
            for p in a.encode(f):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return path


def _luma(frame: Frame) -> np.ndarray:
    h = frame.data.shape[0] * 2 // 3
    return frame.data[:h]


def test_interlaced_video_is_deinterlaced_as_it_is_decoded(tmp_path):
    """Camcorder-style interlaced H.264: every frame comes out progressive (the comb teeth of
    the moving disc gone), one frame per frame, at the stream's own times, also for a part."""
    clip = make_interlaced_clip(tmp_path / "avchd.mp4", frames=8)
    with av.open(str(clip)) as c:
        raw = list(c.decode(video=0))
    assert all(f.interlaced_frame for f in raw)
    raw_combing = max(combing(f.to_ndarray()[:64]) for f in raw)
    with open_source(str(clip)) as src:
        frames = _frames(src)
    assert [f.time for f in frames] == pytest.approx([f.time for f in raw])  # the last one flushed too
    assert raw_combing > 5 and max(combing(_luma(f)) for f in frames) < raw_combing / 3  # 8.4 -> 2.1
    with open_source(str(clip), start=0.12, duration=0.12) as src:
        part = _frames(src)
    assert [f.time for f in part] == pytest.approx([0.0, 0.04, 0.08])  # moved by --start, as ever
    assert max(combing(_luma(f)) for f in part) < raw_combing / 3


def test_interlaced_video_at_field_rate_or_left_alone(tmp_path):
    """--deinterlace field: a frame per field, twice the frames at twice the rate, each half a
    frame interval after the last, progressive, and the timecode counted at the new rate;
    --deinterlace off: the frames as decoded, comb teeth and all."""
    clip = make_interlaced_clip(tmp_path / "avchd.mp4", frames=8)
    with av.open(str(clip)) as c:
        raw = list(c.decode(video=0))
    raw_combing = max(combing(f.to_ndarray()[:64]) for f in raw)
    with open_source(str(clip), deinterlace="field") as src:
        assert src.rate == 50 and src.total_frames == 16
        frames = _frames(src)
    assert len(frames) == 16
    assert np.diff([f.time for f in frames]) == pytest.approx([0.02] * 15)
    assert frames[0].time == pytest.approx(raw[0].time)
    assert max(combing(_luma(f)) for f in frames) < raw_combing / 3
    # The disc moves 4 pixels a field: the two frames of one interlaced frame differ.
    assert np.abs(_luma(frames[2]).astype(int) - _luma(frames[3]).astype(int)).mean() > 0.5
    raw_stream = raw_h264(clip, tmp_path / "avchd.h264")  # no timestamps: timed at the stream's rate first
    with open_source(str(raw_stream), deinterlace="field") as src:
        times = [f.time for f in _frames(src)]
    assert len(times) == 16 and np.diff(times) == pytest.approx([0.02] * 15)
    with open_source(str(clip), deinterlace="off") as src:
        assert src._deinterlacer is None and src.rate == 25
        frames = _frames(src)
    assert len(frames) == 8 and all(np.array_equal(f.data, r.to_ndarray()) for f, r in zip(frames, raw))


def test_field_rate_through_the_command_line(run, tmp_path):
    out = tmp_path / "50p.mp4"
    assert run(make_interlaced_clip(tmp_path / "i.mp4", frames=6), "-o", out, "--deinterlace", "field") == 0
    with av.open(str(out)) as c:
        times = [f.time for f in c.decode(video=0)]
        assert c.streams.video[0].average_rate == 50
    assert len(times) == 12 and np.diff(times) == pytest.approx([0.02] * 11)


def test_field_rate_keeps_a_fine_time_base_and_doubles_the_timecode(tmp_path):
    from p3m_live.video.deinterlace import Deinterlacer

    clip = make_interlaced_clip(tmp_path / "i.mp4", frames=2)
    with av.open(str(clip)) as c:
        v = c.streams.video[0]
        assert Deinterlacer(v, Fraction(25), fields=True).time_base == v.time_base  # 1/12800 holds 1/50 s
        v.time_base = Fraction(1, 25)
        assert Deinterlacer(v, Fraction(25), fields=True).time_base == Fraction(1, 50)
    from p3m_live.video.timecodes import doubled_timecode

    assert doubled_timecode("10:00:00:12", Fraction(25)) == "10:00:00:24"
    assert doubled_timecode("00:01:00;02", Fraction(30000, 1001)) == "00:01:00;04"  # 59.94 drops ;00 to ;03


def test_progressive_video_is_left_as_it_is(tmp_path):
    clip = make_clip(tmp_path / "p.mp4", frames=4, audio_rate=None)
    with av.open(str(clip)) as c:
        raw = [f.to_ndarray() for f in c.decode(video=0)]
    with open_source(str(clip)) as src:
        frames = _frames(src)
        assert src._deinterlacer is None
    assert all(np.array_equal(f.data, r) for f, r in zip(frames, raw)) and len(frames) == 4


def test_a_raw_h264_stream_is_timed_at_its_rate(tmp_path):
    """A raw .h264 stream carries no timestamps; its frames are timed at the rate its SPS gives,
    and --start, which cannot search it, reads it from the start and drops the frames before."""
    raw = raw_h264(make_clip(tmp_path / "c.mp4", frames=10, audio_rate=None), tmp_path / "c.h264")
    with open_source(str(raw)) as src:
        assert [f.time for f in _frames(src)] == pytest.approx([i / 25 for i in range(10)])
    with open_source(str(raw), start=0.2, duration=0.12) as src:
        assert [f.time for f in _frames(src)] == pytest.approx([0.0, 0.04, 0.08])


def _joined_and_converted(tmp_path, later_clock: float):
    """Two camcorder clips joined with cat, the first silent, the second with a tone 0.2 s
    after its first frame and its clock starting at ``later_clock``; converted to out.mkv.
    (joined file, output, the silent part)."""
    silent = make_clip(tmp_path / "a.ts", frames=15, audio_rate=48000, audio_onset=10.0)
    toned = make_clip(tmp_path / "b.ts", frames=15, audio_rate=48000, audio_onset=0.2, clock=later_clock)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(silent.read_bytes() + toned.read_bytes())
    out = tmp_path / "out.mkv"
    with open_source(str(joined)) as src:
        sink = FileSink(out, src.layout, rate=src.rate, time_base=src.time_base, audio_streams=src.audio_streams)
        for item in src.items():
            if isinstance(item, Frame):
                sink.write(item, item.data, np.zeros((64, 96), np.uint8))
            else:
                sink.write_packet(item)
        sink.close()
    return joined, out, silent


def test_joined_mpeg_ts_recordings_go_on_one_clock(tmp_path):
    """Two camcorder clips joined with cat: the second one's clock starts again, so its times
    go back. Both parts come out on one clock, every frame and all the audio, with the second
    part's sound still with its pictures: its tone starts 0.2 s after its first frame."""
    joined, out, silent = _joined_and_converted(tmp_path, later_clock=0.0)
    times = probe(out)["times"]
    assert len(times) == 30 and all(b > a for a, b in zip(times, times[1:]))
    assert max(np.diff(times)) < 0.04 + 0.05  # at the join: at most the audio's overhang more
    seconds = audio_samples(out).shape[1] / 48000
    assert seconds == pytest.approx(audio_samples(silent).shape[1] / 48000 * 2, abs=0.01)
    assert audio_onset(out) - (times[15] - times[0]) == pytest.approx(0.2, abs=0.025)
    # --start cannot search such a file by time (both parts hold the same times), so it is read
    # from the start: a part across the join has the frames of both parts, on the one clock.
    with open_source(str(joined)) as src:
        whole = [f.time for f in _frames(src)]
    with open_source(str(joined), start=0.5, duration=0.3) as src:
        cut = [f.time for f in _frames(src)]
    assert cut == pytest.approx([t - 0.5 for t in whole if 0.5 - 1e-6 <= t < 0.8 - 1e-6]) and len(cut) == 7


def test_start_in_mpeg_ts_decodes_from_the_keyframe_before_it(tmp_path, monkeypatch):
    """MPEG-TS is read from its start for --start (it cannot be searched), but only its video
    from the last keyframe a second before the start is decoded: the part's frames, times and
    audio are those of decoding it all, from well under half the packets."""
    from p3m_live.video import sources

    clip = make_clip(tmp_path / "c.ts", frames=100, gop=10, audio_rate=48000)  # 4 s, a keyframe each 0.4 s
    decoded = []
    real = sources.AVSource._decode
    monkeypatch.setattr(sources.AVSource, "_decode", lambda self, p: decoded.append(p.dts) or real(self, p))

    def part():
        decoded.clear()
        with open_source(str(clip), start=3.0, duration=0.4) as src:
            items = list(src.items())
        frames = [(f.time, f.data.tobytes()) for f in items if isinstance(f, Frame)]
        return frames, [(p.pts, bytes(p)) for p in items if not isinstance(p, Frame)], len(decoded)

    frames, audio, few = part()
    monkeypatch.setattr(sources, "_from_keyframe_before", lambda packets, *_: packets)  # decode everything
    all_frames, all_audio, every = part()
    assert frames == all_frames and len(frames) == 10
    assert audio == all_audio and len(audio) > 10
    assert every >= 85 and few <= 50  # from the last keyframe before 2.0 s (at 1.6 s), not from 0


def test_a_join_whose_clock_jumps_forward_goes_on_one_clock_too(tmp_path):
    """The later part's clock starts an hour on (another device's, a broadcast's): without
    mending, the picture would freeze for an hour. Its frames follow the earlier part's, its
    sound still 0.2 s after its first frame, and its subtitle cue with its pictures."""
    _, out, _ = _joined_and_converted(tmp_path, later_clock=3600.0)
    times = probe(out)["times"]
    assert len(times) == 30 and all(b > a for a, b in zip(times, times[1:]))
    assert max(np.diff(times)) < 0.04 + 0.05 and times[-1] < 2.0  # not an hour
    assert audio_onset(out) - (times[15] - times[0]) == pytest.approx(0.2, abs=0.025)


def test_a_sparse_stream_follows_a_forward_join():
    """A subtitle cue has no steady clock to jump: it joins the later part once its time
    reaches where that part began (and a late cue of the earlier part stays there)."""
    from types import SimpleNamespace

    from p3m_live.video.splices import Splices

    tb = Fraction(1, 1000)
    video, subs = SimpleNamespace(index=0, type="video"), SimpleNamespace(index=1, type="subtitle")
    splices = Splices([video, subs], "joined.ts")

    def packet(stream, ms):
        return SimpleNamespace(stream=stream, dts=ms, pts=ms, duration=40, time_base=tb)

    for ms in range(0, 1000, 40):
        assert splices.mend(packet(video, ms))
    early_cue = packet(subs, 500)
    assert splices.mend(early_cue) and early_cue.pts == 500  # the earlier part's own
    for ms in range(3_600_000, 3_601_000, 40):  # the clock jumps on by an hour
        assert splices.mend(packet(video, ms))
    late_cue = packet(subs, 3_600_200)
    assert splices.mend(late_cue)
    assert late_cue.pts == pytest.approx(1000 + 200, abs=1)  # 0.2 s into the later part, on the one clock


def test_a_late_tail_at_a_join_is_dropped_not_moved_back(tmp_path):
    """The demuxer hands packets out a little out of time order, so a stream of the earlier
    part can still be sending after the later part's first packet. Here the later part's
    video comes first, then the earlier part's last audio (past the end of its video): the
    later part's first audio packet would land before that tail, and is dropped; time only
    goes forward in every stream."""
    from p3m_live.video.splices import Splices

    part = make_clip(tmp_path / "a.ts", frames=15, audio_rate=48000)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 2)
    with av.open(str(joined)) as c:
        earlier, later, last, moved = [], [], {}, set()  # each stream's packets, by part
        for p in (p for p in c.demux() if p.dts is not None):
            t = float(p.dts * p.time_base)
            if t < last.get(p.stream.index, t) - 0.1:  # this stream's clock went back: the later part
                moved.add(p.stream.index)
            (later if p.stream.index in moved else earlier).append(p)
            last[p.stream.index] = t
        video_first = next(p for p in later if p.stream.type == "video")
        tail = [p for p in earlier if p.stream.type == "audio" and p.dts * p.time_base > 0.55]
        order = (
            [p for p in earlier if p not in tail] + [video_first] + tail + [p for p in later if p is not video_first]
        )
        splices = Splices(c.streams, "joined.ts")
        kept = [p for p in order if splices.mend(p)]
        assert len(splices.shifts) == 2 and len(kept) == len(order) - 1  # one join, one packet dropped
        for stream in c.streams:
            times = [float(p.dts * p.time_base) for p in kept if p.stream is stream]
            assert all(b > a for a, b in zip(times, times[1:])), stream.type


def test_iphone_heic_photos_are_read(tmp_path):
    """HEIC (iPhones' default) goes through pillow-heif: the picture, as a writable array."""
    picture = shapes_frame(2, 96, 64)
    with open_source(str(write_heic(tmp_path / "IMG_0001.HEIC", picture))) as src:
        frame = _frames(src)[0]
    assert frame.data.shape == (64, 96, 3) and frame.data.flags.writeable
    assert np.abs(frame.data.astype(int) - picture).mean() < 3


def test_a_heic_photo_without_pillow_heif_says_what_to_install(tmp_path, monkeypatch):
    import sys

    photo = write_heic(tmp_path / "p.heic", shapes_frame(0, 32, 32))
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if it were not installed: import fails
    with pytest.raises(
        P3MError, match=r"p.heic is a HEIC photo, which needs pillow-heif: pip install 'p3m-live\[heic\]'"
    ):
        open_source(str(photo))


def _read_offset(path) -> int:
    """How far this process has read into ``path`` (the file offset of its open descriptor)."""
    import os

    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                return int(open(f"/proc/self/fdinfo/{fd}").read().split()[1])  # "pos: N"
        except OSError:
            continue
    raise AssertionError(f"{path} is not open")


def test_a_part_stops_reading_where_video_and_audio_end(tmp_path):
    """A sparse subtitle stream (one cue at the start) must not hold the reading of a part to
    the end of the file: it stops once the video and the audio are past the part."""
    from tests.media import with_subtitles

    cue = "1\n00:00:00,100 --> 00:00:00,900\nHello there\n"
    clip = with_subtitles(make_clip(tmp_path / "long.mkv", frames=250, size=(192, 128)), cue, tmp_path / "sub.mkv")
    with open_source(str(clip), duration=0.4) as src:
        items = list(src.items())
        assert len([i for i in items if isinstance(i, Frame)]) == 10
        assert any(isinstance(i, av.Packet) and i.stream.type == "subtitle" for i in items)
        assert _read_offset(clip.resolve()) < clip.stat().st_size / 3


def test_the_main_video_stream_is_read_not_a_cover_picture_before_it(tmp_path):
    """A file whose first video stream is a one-frame cover picture: the video itself is read."""
    clip = make_clip(tmp_path / "c.mp4", frames=12, audio_rate=None)
    covered = tmp_path / "covered.mkv"
    with av.open(str(clip)) as inp, av.open(str(covered), "w") as out:
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 96, 64, "yuvj420p"
        video = out.add_stream_from_template(inp.streams.video[0])
        picture = av.VideoFrame.from_ndarray(np.full((64, 96, 3), 200, np.uint8), format="rgb24")
        for p in [*cover.encode(picture.reformat(format="yuvj420p")), *cover.encode(None)]:
            out.mux(p)
        for p in inp.demux(inp.streams.video[0]):
            if p.dts is not None:
                p.stream = video
                out.mux(p)
    with open_source(str(covered)) as src:
        assert src.video.index == 1 and len(_frames(src)) == 12


def _remuxed(src, dst, movflags: str):
    """``src`` copied packet for packet into ``dst`` with the mov muxer's ``movflags``."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": movflags}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if p.dts is not None:
                p.stream = streams[p.stream.index]
                o.mux(p)
    return dst


def _cut_warnings(path, caplog) -> tuple[int, list[str]]:
    with caplog.at_level(logging.WARNING, logger="p3m_live"), AVSource(str(path)) as src:
        n = len(_frames(src))
    return n, [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]


def test_an_mp4_cut_short_is_said_to_be_cut(tmp_path, caplog):
    """An unfinished download of an MP4 whose index comes first: FFmpeg reads the end of its
    data as the end of the video; the user is told that frames are missing."""
    whole = _remuxed(make_clip(tmp_path / "c.mp4", frames=50), tmp_path / "whole.mp4", "faststart")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    n, said = _cut_warnings(cut, caplog)
    assert 0 < n < 45
    assert len(said) == 1 and "of the 2.0 s its index lists" in said[0] and f"the {n} frames there are" in said[0]


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_a_matroska_file_cut_short_is_said_to_be_cut(tmp_path, suffix, caplog):
    """Matroska and WebM: the video track's DURATION tag, which FFmpeg writes at the start
    of the file when it finishes it, says how long the video is, where the data stops."""
    webm = {"codec": "libvpx-vp9", "audio_rate": None} if suffix == ".webm" else {}
    whole = make_clip(tmp_path / f"whole{suffix}", frames=50, **webm)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    n, said = _cut_warnings(cut, caplog)
    assert 0 < n < 45
    assert len(said) == 1 and "of the 2.0 s its header lists" in said[0] and f"the {n} frames there are" in said[0]


@pytest.mark.parametrize("kind", ["plain", "a clock at 1 h", "sound after", "no tag"])
def test_whole_matroska_files_are_not_said_to_be_cut(tmp_path, caplog, kind):
    """Sound running 1.5 s past the picture makes the file (and its container duration)
    longer, not the video's tag; a file with no tag says nothing (no check, no error)."""
    options = {"a clock at 1 h": {"clock": 3600.0}, "sound after": {"audio_tail": 1.5}}.get(kind, {})
    clip = make_clip(tmp_path / "c.mkv", frames=50, **options)
    if kind == "no tag":  # (written where the muxer cannot seek back: a pipe, as `-o -` is)
        piped = io.BytesIO()
        unseekable = type("Pipe", (), {"write": lambda self, b: piped.write(b), "flush": lambda self: None})()
        with av.open(str(clip)) as i, av.open(unseekable, "w", format="matroska") as o:
            video = o.add_stream_from_template(i.streams.video[0])
            for packet in i.demux(i.streams.video[0]):
                if packet.dts is not None:
                    packet.stream = video
                    o.mux(packet)
        clip = tmp_path / "untagged.mkv"
        clip.write_bytes(piped.getvalue()[: len(piped.getvalue()) * 6 // 10])  # (cut, but with nothing to tell)
        with av.open(str(clip)) as c:
            assert "DURATION" not in c.streams.video[0].metadata
        assert _cut_warnings(clip, caplog)[1] == []
        return
    assert _cut_warnings(clip, caplog) == (50, [])


@pytest.mark.parametrize("kind", ["index last", "index first", "fragmented", "a clock at 1 h", "sound after"])
def test_whole_mp4s_are_not_said_to_be_cut(tmp_path, caplog, kind):
    options = {"a clock at 1 h": {"clock": 3600.0}, "sound after": {"audio_tail": 1.5}}.get(kind, {})
    clip = make_clip(tmp_path / "c.mp4", frames=50, **options)
    if kind in ("index first", "fragmented"):
        flags = "faststart" if kind == "index first" else "frag_keyframe+empty_moov+default_base_moof"
        clip = _remuxed(clip, tmp_path / "remuxed.mp4", flags)
    assert _cut_warnings(clip, caplog) == (50, [])
