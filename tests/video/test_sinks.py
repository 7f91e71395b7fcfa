"""Sinks: encoded files under a temporary name, matte/foreground tracks with real alpha, the virtual camera."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from p3m_live.errors import P3MError
from p3m_live.video.frames import Frame, Layout
from p3m_live.video.sinks import FileSink, MatteSink, VirtualCamSink, check_output, partial_path
from tests.media import shapes_frame

LAYOUT = Layout(64, 48, "rgb", True, "bt601")
TB = Fraction(1, 25)


def _frames(n: int = 4):
    """(frame, composite I420, alpha) triples with a known alpha ramp."""
    out = []
    for i in range(n):
        rgb = shapes_frame(i, 64, 48)
        alpha = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
        alpha[:, : 8 * i] = 0
        out.append((Frame(rgb, "rgb", i, TB, i), cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), alpha))
    return out


def _decode_alpha(path, decoder: str | None = None):
    """Decode every frame as RGBA (with ``decoder`` instead of FFmpeg's default, e.g. libvpx-vp9)."""
    frames = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        if decoder is None:
            return [f.to_ndarray(format="rgba") for f in c.decode(stream)]
        ctx = av.CodecContext.create(decoder, "r")
        for packet in c.demux(stream):
            frames += [f.to_ndarray(format="rgba") for f in ctx.decode(packet)]
    return frames


def test_file_appears_only_when_finished(tmp_path):
    out = tmp_path / "out.mp4"
    sink = FileSink(out, LAYOUT, rate=Fraction(25), time_base=TB)
    for f, c, a in _frames():
        sink.write(f, c, a)
    assert not out.exists()  # (the encoder may still hold every packet)
    sink.close()
    sink.close()  # twice is harmless
    assert out.exists() and not partial_path(out).exists()
    assert b"moof" not in out.read_bytes()  # written in fragments, finished as a plain MP4
    with av.open(str(out)) as c:
        times = [f.time for f in c.decode(video=0)]
        assert c.streams.video[0].codec_context.colorspace == 5  # tagged with the matrix used
    assert times == pytest.approx([0, 0.04, 0.08, 0.12])


def test_encoder_options_and_strictly_increasing_times(tmp_path):
    out = tmp_path / "out.mkv"
    sink = FileSink(out, LAYOUT, rate=Fraction(25), time_base=TB, crf=30, preset="ultrafast")
    assert sink.enc.stream.options == {}  # after opening: what libx264 did not take (nothing)
    for f, c, a in _frames(3):
        f.pts = 5  # a source that repeats a timestamp
        sink.write(f, c, a)
    sink.close()
    with av.open(str(out)) as c:
        times = [f.time for f in c.decode(video=0)]
    assert len(times) == 3 and times == sorted(set(times))


def test_an_encoder_that_cannot_start_fails_before_any_frame(tmp_path):
    """libx264 itself refuses the preset when it opens, so the error comes now with the options
    named, and no partial file is left."""
    out = tmp_path / "out.mp4"
    with pytest.raises(P3MError, match=r"libx264 encoder cannot start here .*preset=fastest"):
        FileSink(out, LAYOUT, rate=Fraction(25), time_base=TB, preset="fastest")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codec", ["h264_nvenc", "hevc_nvenc"])
def test_nvenc_options_are_in_ffmpegs_option_table(codec):
    """NVENC cannot run here (no GPU), but FFmpeg checks option values before it looks for one:
    an invalid value for any key we set is refused as an argument error (so the key is NVENC's),
    and our whole set is accepted (the open then fails for want of a GPU, or succeeds on one)."""
    from p3m_live.video.sinks import ENCODER_OPTIONS, QUALITY_OPTION

    def open_with(options):
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 320, 240, "yuv420p", Fraction(1, 30)
        ctx.options = options
        try:
            ctx.open()
        except av.error.FFmpegError as e:
            return e
        return None

    ours = ENCODER_OPTIONS[codec]
    assert QUALITY_OPTION[codec] in ours
    for key in ours:
        assert isinstance(open_with({key: "not-a-value"}), av.error.ArgumentError), key
    assert not isinstance(open_with(ours), av.error.ArgumentError)


def test_crf_sets_the_encoders_own_quality_option():
    from p3m_live.video.sinks import encoder_options

    assert encoder_options("libx264", 30, "slow") == {"crf": "30", "preset": "slow"}
    nvenc = encoder_options("h264_nvenc", 30, None)
    assert nvenc["cq"] == "30" and "crf" not in nvenc and nvenc["rc"] == "vbr"
    assert encoder_options("mpeg4", None, None) == {}  # FFmpeg's own defaults


def test_options_an_encoder_ignores_are_named(tmp_path, caplog):
    """FFmpeg's mpeg4 encoder has no crf: --crf would silently do nothing, so it is said."""
    sink = FileSink(tmp_path / "out.mkv", LAYOUT, rate=Fraction(25), time_base=TB, codec="mpeg4", crf=20)
    sink.close()
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == ["mpeg4 ignores crf=20"]


@pytest.mark.parametrize(
    "name, decoder, tolerance",
    [("fg.mov", None, 1), ("fg.webm", "libvpx-vp9", 12), ("fg.mkv", None, 0)],
)
def test_foreground_track_carries_real_alpha(tmp_path, name, decoder, tolerance):
    sink = MatteSink(tmp_path / name, "fg", LAYOUT, rate=Fraction(25), time_base=TB)
    frames = _frames()
    for f, c, a in frames:
        sink.write(f, c, a, f.data)
    sink.close()
    decoded = _decode_alpha(tmp_path / name, decoder)
    assert len(decoded) == len(frames)
    for rgba, (_, _, a) in zip(decoded, frames):
        assert np.abs(rgba[..., 3].astype(int) - a).max() <= tolerance
        assert rgba[..., 3].min() == 0 and rgba[..., 3].max() >= 255 - tolerance


def test_matroska_without_a_shape_in_the_bitstream_gets_square_pixels(tmp_path, caplog):
    """Matroska keeps non-square pixels only where the codec's bitstream says them (H.264
    here): FFV1 and VP9 frames are stretched to the width players would show, so the
    picture keeps its shape; an H.264 .mkv stays as it was, tagged."""
    caplog.set_level("INFO", logger="p3m_live")
    wide = Layout(64, 48, "rgb", True, "bt601", sar=Fraction(4, 3))
    frames = _frames(2)
    fg = MatteSink(tmp_path / "fg.mkv", "fg", wide, rate=Fraction(25), time_base=TB)
    composites = [FileSink(tmp_path / name, wide, rate=Fraction(25), time_base=TB) for name in ("out.webm", "out.mkv")]
    for f, c, a in frames:
        fg.write(f, c, a, f.data)
        for sink in composites:
            sink.write(f, c, a)
    fg.close()
    for sink in composites:
        sink.close()
    stretched = cv2.resize(frames[1][2], (86, 48), interpolation=cv2.INTER_CUBIC)
    rgba = _decode_alpha(tmp_path / "fg.mkv")[1]
    assert rgba.shape == (48, 86, 4)  # 64 x 4/3, to an even width
    assert np.abs(rgba[..., 3].astype(int) - stretched).max() <= 3
    shapes = {}
    for name in ("fg.mkv", "out.webm", "out.mkv"):
        with av.open(str(tmp_path / name)) as c:
            st = c.streams.video[0]
            shapes[name] = (st.width, st.sample_aspect_ratio or 1)
    assert shapes == {"fg.mkv": (86, 1), "out.webm": (86, 1), "out.mkv": (64, Fraction(4, 3))}
    said = [r.getMessage() for r in caplog.records if "square pixels" in r.getMessage()]
    assert len(said) == 2 and said[0].startswith("fg.mkv: ffv1 cannot say") and "86x48" in said[0]


def test_png_sequences_are_exact(tmp_path):
    """A foreground track's PNGs hold the colours the frame graph made, and its alpha."""
    frames = _frames(3)
    colours = np.random.default_rng(9).integers(0, 256, frames[2][0].data.shape, dtype=np.uint8)
    fg = MatteSink(tmp_path / "fg", "fg", LAYOUT, rate=None, time_base=TB)
    matte = MatteSink(tmp_path / "m" / "matte.png", "alpha", LAYOUT, rate=None, time_base=TB)
    for i, (f, c, a) in enumerate(frames):
        fg.write(f, c, a, colours if i == 2 else f.data)
        matte.write(f, c, a)
    names = sorted(p.name for p in (tmp_path / "fg").iterdir())
    assert names == ["000000.png", "000001.png", "000002.png"]
    rgba = [cv2.imread(str(tmp_path / "fg" / name), cv2.IMREAD_UNCHANGED) for name in names]
    assert np.array_equal(rgba[2][..., 3], frames[2][2])
    assert np.array_equal(rgba[2][..., 2::-1], colours)  # BGRA on disk, RGB in memory
    assert np.array_equal(rgba[1][..., 2::-1], frames[1][0].data)
    grey = cv2.imread(str(tmp_path / "m" / "matte_000001.png"), cv2.IMREAD_UNCHANGED)
    assert grey.ndim == 2 and np.array_equal(grey, frames[1][2])


def test_matte_in_an_ordinary_video_is_grey(tmp_path):
    sink = MatteSink(tmp_path / "matte.mp4", "alpha", LAYOUT, rate=Fraction(25), time_base=TB)
    frames = _frames(2)
    for f, c, a in frames:
        sink.write(f, c, a)
    sink.close()
    with av.open(str(tmp_path / "matte.mp4")) as c:
        grey = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    assert len(grey) == 2 and np.abs(grey[1].astype(int) - frames[1][2]).mean() < 3


def test_a_decoding_time_that_cannot_be_is_mended_and_any_other_kept():
    from p3m_live.video.sinks import sane_dts

    b_frames = [(0, -2), (3, -1), (1, 0), (2, 1), (6, 2), (4, 3), (5, 4)]  # (pts, dts): I P B B P B B
    last = None
    for pts, dts in b_frames:
        assert sane_dts(pts, dts, last, 64) == dts
        last = dts
    assert sane_dts(0, -94104733237248, None, 64) == 0  # (x265's uninitialised delay: heap garbage)
    assert sane_dts(1, 281466386841599, 0, 64) == 1  # (later than the picture itself)
    assert sane_dts(5, 3, 3, 64) == 5 and sane_dts(2, 3, 3, 64) == 4  # (not after the last one)
    assert sane_dts(7, None, 3, 64) is None and sane_dts(None, 5, 3, 64) == 5


@pytest.mark.parametrize("frames", [1, 2])
def test_a_clip_shorter_than_x265s_b_frame_delay_is_written(tmp_path, frames):
    """x265 gives one or two frames a garbage decoding time, at random (x265 issue 781): the
    MP4 muxer refused about one such file in four, ending the run. Eight in a row now play."""
    lay = Layout(96, 64, "i420", False, "bt601")
    composite = cv2.cvtColor(shapes_frame(0, 96, 64), cv2.COLOR_RGB2YUV_I420)
    for k in range(8):
        path = tmp_path / f"short{k}.mp4"
        sink = FileSink(path, lay, rate=Fraction(25), time_base=TB, codec="libx265")
        for i in range(frames):
            sink.write(Frame(composite, "i420", i, TB, i), composite, np.zeros((64, 96), np.uint8))
        sink.close()
        with av.open(str(path)) as c:
            assert len(list(c.decode(video=0))) == frames


@pytest.mark.parametrize(("size", "matrix"), [((1280, 720), "bt709"), ((320, 240), "bt601")])
@pytest.mark.parametrize(
    ("name", "codec"),
    [("c.mp4", None), ("c.webm", None), ("c.mov", "prores_ks"), ("c.mkv", "libx264rgb"), ("c.avi", "mjpeg"),
     ("h.mp4", "libx265"), ("vp8.webm", "libvpx"), ("cf.mov", "cfhd"), ("m4.mp4", "mpeg4")],
)  # fmt: skip
def test_a_composite_reads_back_as_its_colours_whatever_the_encoder(tmp_path, size, matrix, name, codec):
    """The composite, converted for its encoder's own pixel format, decodes (as readers do,
    by the stream's tags) to the colours the frame graph made: in the source's matrix, and
    for JPEG and VP8 in BT.601, which their YUV always is (an HD MJPEG or VP8 file read back
    15 levels off); an HD CineForm or MPEG-4 file, whose bitstream says nothing of colour, is
    tagged by its container (MOV and MP4 write the tags once primaries and transfer are set)."""
    from p3m_live.spec import rgb_to_planes

    w, h = size
    rgb = np.zeros((1, h, w, 3), np.uint8)
    rgb[0, :, : w // 2], rgb[0, :, w // 2 :] = (200, 40, 40), (40, 200, 60)
    lay = Layout(w, h, "i420", False, matrix)
    composite = rgb_to_planes(rgb, matrix, False)[0]
    sink = FileSink(tmp_path / name, lay, rate=Fraction(25), time_base=TB, codec=codec)
    for i in range(2):
        sink.write(Frame(composite, "i420", i, TB, i), composite, np.zeros((h, w), np.uint8))
    sink.close()
    with av.open(str(tmp_path / name)) as c:
        shown = next(c.decode(video=0)).to_ndarray(format="rgb24")
    for x, want in ((w // 4, (200, 40, 40)), (3 * w // 4, (40, 200, 60))):
        assert np.abs(shown[h // 2, x].astype(int) - want).max() <= 4, x


@pytest.mark.parametrize(("size", "matrix", "tags"), [((1280, 720), "bt709", {1}), ((320, 240), "bt601", {5, 6})])
@pytest.mark.parametrize(("name", "tolerance"), [("fg.mov", 2), ("fg.webm", 4), ("fg.mp4", 4), ("fg.mkv", 0)])
def test_a_foreground_tracks_colours_are_tagged_and_read_back(tmp_path, size, matrix, tags, name, tolerance):
    """An editor reads a track's YUV in the matrix it is tagged with (and an untagged HD one
    as BT.709): the colours are converted in the source's matrix and tagged so. (They went
    out in swscale's BT.601, untagged: an HD track's red read back 14 levels off.)"""
    w, h = size
    lay = Layout(w, h, "i420", False, matrix)
    sink = MatteSink(tmp_path / name, "fg", lay, rate=Fraction(25), time_base=TB, paired=name == "fg.mp4")
    colours = np.zeros((h, w, 3), np.uint8)
    colours[:, : w // 2], colours[:, w // 2 :] = (200, 40, 40), (40, 200, 60)
    alpha = np.full((h, w), 255, np.uint8)
    for i in range(2):
        sink.write(Frame(np.zeros((h * 3 // 2, w), np.uint8), "i420", i, TB, i), np.zeros(0), alpha, colours)
    sink.close()
    with av.open(str(tmp_path / name)) as c:
        frame = next(c.decode(video=0))
    rgb = frame.to_ndarray(format="rgb24")  # (PyAV converts in the frame's tagged matrix and range)
    assert frame.colorspace in (tags if name != "fg.mkv" else {0})  # (FFV1 here holds RGB itself)
    for x, want in ((w // 4, (200, 40, 40)), (3 * w // 4, (40, 200, 60))):
        assert np.abs(rgb[h // 2, x].astype(int) - want).max() <= tolerance, x


@pytest.mark.parametrize("pix_fmt", ["yuva444p10le", "yuva420p", "yuv420p", "bgra"])
def test_a_matte_is_the_exact_luma_of_its_frame(pix_fmt):
    """grey_frame: every matte value is its limited-range luma code at the format's depth
    (255 is 940 in 10 bits, so an opaque matte reads back opaque), chroma neutral, alpha
    opaque; or grey in RGB."""
    from p3m_live.video.sinks import grey_frame

    grey = np.ascontiguousarray(np.tile(np.arange(256, dtype=np.uint8), (6, 2))[:, :500])
    frame = grey_frame(grey, pix_fmt)
    if pix_fmt == "bgra":
        assert np.array_equal(frame.to_ndarray(), np.dstack([grey, grey, grey, np.full_like(grey, 255)]))
        return
    bits = 10 if "10" in pix_fmt else 8
    dtype = np.uint16 if bits == 10 else np.uint8
    planes = [np.frombuffer(p, dtype).reshape(p.height, -1)[:, : p.width] for p in frame.planes]
    want = np.round((16 + grey.astype(float) * 219 / 255) * 2 ** (bits - 8))
    assert np.array_equal(planes[0], want) and planes[0].max() == 235 << (bits - 8)
    assert all((p == 128 << (bits - 8)).all() for p in planes[1:3])
    assert all((p == 2**bits - 1).all() for p in planes[3:])
    assert len(planes) == (4 if pix_fmt.startswith("yuva") else 3)


def test_foreground_needs_a_format_with_alpha_or_a_matte_beside_it(tmp_path):
    """An .mp4 holds no alpha: refused, unless the matte has an output of its own (--alpha-out),
    when it takes the colours alone (Robust Video Matting's pair of videos)."""
    with pytest.raises(P3MError, match="cannot carry an alpha channel; .* add --alpha-out"):
        MatteSink(tmp_path / "fg.mp4", "fg", LAYOUT, rate=None, time_base=TB)
    sink = MatteSink(tmp_path / "fg.mp4", "fg", LAYOUT, rate=Fraction(25), time_base=TB, paired=True)
    frames = _frames(2)
    colours = [np.roll(f.data, 7, axis=1) for f, _, _ in frames]  # (not the frame's own)
    for (f, c, a), rgb in zip(frames, colours):
        sink.write(f, c, a, rgb)
    sink.close()
    with av.open(str(tmp_path / "fg.mp4")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
        got = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    err = [np.abs(got[1].astype(int) - want).mean() for want in (colours[1], frames[1][0].data)]
    assert len(got) == 2 and err[0] < 6 and err[0] < 0.5 * err[1]  # (4:2:0 and H.264 lose a little)


def test_outputs_are_checked_before_writing(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"x")
    with pytest.raises(P3MError, match="is the input"):
        check_output(src, [src], overwrite=True)
    with pytest.raises(P3MError, match="--overwrite"):
        check_output(src, [], overwrite=False)
    with pytest.raises(P3MError, match="does not exist"):
        check_output(tmp_path / "no" / "out.mp4", [], overwrite=False)
    check_output(tmp_path / "new.mp4", [src], overwrite=False)


class CameraDouble:
    """Stands in for pyvirtualcam.Camera: no virtual camera device exists on this machine."""

    def __init__(self, width, height, fps, fmt, device):
        self.args = (width, height, fps, fmt, device)
        self.device = device or "/dev/video-double"
        self.sent: list[np.ndarray] = []
        self.closed = False

    def send(self, frame):
        assert frame.size == self.args[0] * self.args[1] * 3 // 2  # pyvirtualcam's I420 rule
        self.sent.append(frame.copy())

    def close(self):
        self.closed = True


def test_a_virtual_camera_that_goes_away_is_one_clear_error():
    class GoneCamera(CameraDouble):
        """A double whose device vanishes after one frame, as pyvirtualcam raises then."""

        def send(self, frame):
            if self.sent:
                raise RuntimeError("error writing frame to /dev/video-double: No such device")
            super().send(frame)

    sink = VirtualCamSink(LAYOUT, 30.0, camera_factory=GoneCamera)
    (f, c, a), *_ = _frames(1)
    sink.write(f, c, a)
    with pytest.raises(P3MError, match="virtual camera stopped taking frames .*No such device.*start it again"):
        sink.write(f, c, a)
    sink.close()


def test_virtual_camera_gets_i420_frames():
    sink = VirtualCamSink(LAYOUT, 30.0, camera_factory=CameraDouble)
    frames = _frames(2)
    for f, c, a in frames:
        sink.write(f, c, a)
    sink.close()
    cam = sink.camera
    assert cam.args == (64, 48, 30.0, "I420", None) and cam.closed
    assert np.array_equal(cam.sent[1], frames[1][1])


def test_no_virtual_camera_device_says_how_to_make_one():
    pytest.importorskip("pyvirtualcam")
    import glob

    if glob.glob("/dev/video*"):
        pytest.skip("this machine has video devices; the no-device path cannot be shown")
    with pytest.raises(P3MError, match="modprobe v4l2loopback .*exclusive_caps=1") as e:
        VirtualCamSink(LAYOUT, 30.0)
    assert "\n" not in str(e.value)
