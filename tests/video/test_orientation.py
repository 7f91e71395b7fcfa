"""--rotate and --mirror, checked against FFmpeg's own transpose and hflip filters."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from p3m_live.video.frames import Frame, Layout
from p3m_live.video.orientation import TURNS, Orientation, OrientedSource, oriented
from p3m_live.video.sources import open_source
from tests.media import make_clip, probe

# FFmpeg's filters for each turn (clockwise): the oracle, written independently of numpy.
FILTERS = {0: [], 90: ["transpose=clock"], 180: ["hflip", "vflip"], 270: ["transpose=cclock"]}
AV_FORMATS = {"i420": "yuv420p", "nv12": "nv12", "rgb": "rgb24", "bgr": "bgr24"}


def ffmpeg_oriented(frames: list[av.VideoFrame], rotate: int, mirror: bool) -> list[av.VideoFrame]:
    """``frames`` through FFmpeg's filter graph: transpose or flips, then hflip."""
    chain = FILTERS[rotate] + (["hflip"] if mirror else []) or ["null"]
    first = frames[0]
    graph = av.filter.Graph()
    size = {"width": first.width, "height": first.height}
    nodes = [graph.add_buffer(**size, format=first.format.name, time_base=Fraction(1, 25))]
    for f in chain:
        name, _, arg = f.partition("=")
        nodes.append(graph.add(name, arg or None))
    nodes.append(graph.add("buffersink"))
    for a, b in itertools.pairwise(nodes):
        a.link_to(b)
    graph.configure()
    out = []
    for f in frames:
        nodes[0].push(f)
        out.append(nodes[-1].pull())
    return out


@pytest.mark.parametrize("fmt", ["i420", "nv12", "rgb", "bgr"])
@pytest.mark.parametrize(("rotate", "mirror"), list(itertools.product(TURNS, (False, True))))
def test_orientation_moves_pixels_as_ffmpeg_does(fmt, rotate, mirror):
    rng = np.random.default_rng(rotate + mirror)
    h, w = 6, 10
    shape = (h * 3 // 2, w) if fmt in ("i420", "nv12") else (h, w, 3)
    data = rng.integers(0, 256, shape, dtype=np.uint8)
    frame = Frame(data, fmt, 7, Fraction(1, 25), 3, captured=12.5)
    got = Orientation(rotate, mirror).frame(frame)
    (want,) = ffmpeg_oriented([av.VideoFrame.from_ndarray(data, format=AV_FORMATS[fmt])], rotate, mirror)
    assert np.array_equal(got.data, want.to_ndarray())
    assert got.size == (want.width, want.height) == ((h, w) if rotate in (90, 270) else (w, h))
    assert (got.pts, got.time_base, got.index, got.captured) == (7, Fraction(1, 25), 3, 12.5)


def test_a_quarter_turn_swaps_the_sides_and_the_pixel_shape():
    wide = Layout(720, 576, "i420", False, "bt601", 0, Fraction(64, 45))  # PAL 16:9
    turned = Orientation(270).layout(wide)
    assert (turned.width, turned.height, turned.sar) == (576, 720, Fraction(45, 64))
    assert Orientation(180, True).layout(wide) == wide
    assert Orientation(90).layout(turned) == wide  # (its own inverse: the source's layout back)
    with pytest.raises(ValueError, match="rotate"):
        Orientation(45)


def test_an_oriented_source_turns_frames_and_passes_sound(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=4, size=(96, 64))
    with open_source(str(clip)) as plain:
        items = list(plain.items())
        frames = [i.data for i in items if isinstance(i, Frame)]
        sound = [bytes(i) for i in items if isinstance(i, av.Packet)]
    src = OrientedSource(open_source(str(clip)), Orientation(90, mirror=True))
    with src:
        assert (src.layout.width, src.layout.height) == (64, 96)
        assert src.rate == 25 and src.total_frames == 4 and len(src.audio_streams) == 1
        items = list(src.items())
        got = [i for i in items if isinstance(i, Frame)]
        assert [bytes(i) for i in items if isinstance(i, av.Packet)] == sound
    assert [f.time for f in got] == pytest.approx([i / 25 for i in range(4)])
    oracle = ffmpeg_oriented([av.VideoFrame.from_ndarray(f, format="yuv420p") for f in frames], 90, True)
    for f, want in zip(got, oracle):
        assert np.array_equal(f.data, want.to_ndarray())


def test_after_the_files_own_rotation(tmp_path):
    """A phone clip's display matrix is applied first, then --rotate: -90 (a quarter turn
    clockwise) then 270 clockwise is the clip as it was drawn."""
    clip = make_clip(tmp_path / "phone.mp4", frames=2, rotation=-90, audio_rate=None)
    with open_source(str(make_clip(tmp_path / "drawn.mp4", frames=2, audio_rate=None))) as drawn:
        want = [f.data for f in drawn.items() if isinstance(f, Frame)]
    with OrientedSource(open_source(str(clip)), Orientation(270)) as src:
        # (the layout's rotation is the file's own, counter-clockwise)
        assert (src.layout.width, src.layout.height, src.layout.rotation) == (96, 64, 270)
        got = [f.data for f in src.items() if isinstance(f, Frame)]
    assert all(np.array_equal(a, b) for a, b in zip(got, want)) and len(got) == 2


def test_a_reopened_source_is_adopted_in_its_own_turn(tmp_path):
    """A camera back at another size of the same shape: the run's (turned) layout is turned
    back for the source, which scales to it; another shape is the source's own refusal."""
    small = make_clip(tmp_path / "small.mp4", frames=2, size=(48, 32), audio_rate=None)
    run = Orientation(90).layout(Layout(96, 64, "i420", False, "bt601"))
    with OrientedSource(open_source(str(small)), Orientation(90)) as src:
        assert src.adopt(run) is None and src.layout == run
        assert {f.size for f in src.items() if isinstance(f, Frame)} == {(64, 96)}
    square = make_clip(tmp_path / "square.mp4", frames=2, size=(64, 64), audio_rate=None)
    with OrientedSource(open_source(str(square)), Orientation(90)) as src:
        assert src.adopt(run) == "its frames have another shape"


def test_no_orientation_is_the_source_itself(tmp_path):
    with open_source(str(make_clip(tmp_path / "c.mp4", frames=2, audio_rate=None))) as src:
        assert oriented(src, Orientation()) is src
        assert isinstance(oriented(src, Orientation(mirror=True)), OrientedSource)


def _decoded(path: Path, stream: int = 0) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray() for f in c.decode(video=stream)]


def test_the_run_is_the_run_on_a_clip_turned_by_ffmpeg(run, tmp_path):
    """End to end: ``--rotate 90 --mirror`` gives, to the bit (FFV1), what the same run gives
    on the clip's decoded frames turned and flipped by FFmpeg; the sound is kept."""
    clip = make_clip(tmp_path / "talk.mp4", frames=6, size=(96, 64))
    with av.open(str(clip)) as c:
        frames = list(c.decode(video=0))
    turned = tmp_path / "turned.mkv"
    with av.open(str(turned), "w") as out:
        v = out.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = 64, 96, "yuv420p"
        for i, f in enumerate(ffmpeg_oriented(frames, 90, True)):
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    flags = ["--codec", "ffv1", "--background", "#3050a0"]
    assert run(clip, "-o", tmp_path / "a.mkv", "--alpha-out", tmp_path / "a", "--rotate", "90", "--mirror", *flags) == 0
    assert run(turned, "-o", tmp_path / "b.mkv", "--alpha-out", tmp_path / "b", *flags) == 0
    a, b = _decoded(tmp_path / "a.mkv"), _decoded(tmp_path / "b.mkv")
    assert len(a) == 6 and a[0].shape == (96 * 3 // 2, 64)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    mattes = [sorted(p.iterdir()) for p in (tmp_path / "a", tmp_path / "b")]
    assert [p.read_bytes() for p in mattes[0]] == [p.read_bytes() for p in mattes[1]]
    with av.open(str(tmp_path / "a.mkv")) as c:
        assert len(c.streams.audio) == 1


def test_a_live_source_reopened_is_turned_again(run, tmp_path, capsys):
    """A live source that ends (a lavfi graph after 0.4 s) is reopened through the same
    orientation, so it fits the run's turned layout: every frame out is 48x64."""
    out = tmp_path / "live.mp4"
    src = "testsrc2=size=64x48:rate=30:duration=0.4"
    argv = [src, "--format", "lavfi", "--live", "-o", out, "--duration", "3", "--rotate", "270", "--backend", "torch"]
    assert run(*argv) == 0
    err = capsys.readouterr().err
    assert "the source is back" in err and "restart p3m-live" not in err
    info = probe(out)
    assert info["sizes"] == {(48, 64)} and len(info["times"]) > 12


def test_a_turn_that_is_not_a_quarter_is_one_line(run, tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", frames=2, audio_rate=None)
    with pytest.raises(SystemExit) as e:
        run(clip, "-o", tmp_path / "o.mp4", "--rotate", "45")
    assert e.value.code == 2 and "--rotate" in capsys.readouterr().err
