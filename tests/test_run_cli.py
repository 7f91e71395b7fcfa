"""The main job end to end through the command line, on real files made with PyAV."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from p3m_live.cli import main
from p3m_live.video.backgrounds import HELP as BACKGROUND_HELP
from tests.media import encode_all, make_clip, probe, shapes_frame, with_chapters, with_subtitles, write_heic


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    """12 frames of moving shapes at 25 fps with a 440 Hz tone."""
    return make_clip(tmp_path_factory.mktemp("talk") / "talk.mp4", frames=12)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_file_to_file_keeps_frames_times_and_audio(run, talk, tmp_path, backend):
    out = tmp_path / "out.mp4"
    before = talk.read_bytes()
    assert run(talk, "-o", out, "--background", "#00ff00", "--backend", backend) == 0
    src, dst = probe(talk), probe(out)
    assert dst["times"] == pytest.approx(src["times"]) and len(dst["times"]) == 12
    assert dst["sizes"] == {(96, 64)}
    assert dst["audio_codec"] == "aac" and dst["audio"] == src["audio"]  # copied packet by packet
    assert talk.read_bytes() == before  # the input is never touched
    assert not list(tmp_path.glob("*.partial*"))


def test_variable_frame_rate_is_kept(run, tmp_path):
    pts = [0, 40, 80, 200, 230, 400, 420]
    clip = make_clip(tmp_path / "vfr.mkv", frames=7, pts=pts, time_base=Fraction(1, 1000))
    out = tmp_path / "out.mkv"
    assert run(clip, "-o", out) == 0
    assert probe(out)["times"] == pytest.approx([p / 1000 for p in pts])
    assert probe(out)["audio"] == probe(clip)["audio"]


def test_rotated_clip_comes_out_upright(run, tmp_path):
    clip = make_clip(tmp_path / "phone.mp4", frames=3, rotation=-90, audio_rate=None)
    fg = tmp_path / "fg"
    assert run(clip, "-o", tmp_path / "out.mp4", "--fg-out", fg, "--background", "blur") == 0
    info = probe(tmp_path / "out.mp4")
    assert info["sizes"] == {(64, 96)} and info["rotations"] == {0}
    rgba = cv2.cvtColor(cv2.imread(str(fg / "000000.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    want = np.rot90(shapes_frame(0, 96, 64), 3)  # -90: a quarter turn clockwise
    assert np.abs(rgba[..., :3].astype(int) - want).mean() < 6


def test_alpha_and_foreground_tracks_agree(run, talk, tmp_path):
    matte, fg_mov, fg_webm = tmp_path / "matte", tmp_path / "fg.mov", tmp_path / "fg.webm"
    code = run(talk, "--alpha-out", matte, "--fg-out", fg_mov, "--background", "none")
    assert code == 0 and run(talk, "--fg-out", fg_webm, "--background", "none") == 0
    pngs = sorted(matte.iterdir())
    assert len(pngs) == 12
    with av.open(str(fg_mov)) as c:
        mov = [f.to_ndarray(format="rgba") for f in c.decode(video=0)]
        assert c.streams.video[0].codec_context.name == "prores"
    with av.open(str(fg_webm)) as c:
        vp9 = av.CodecContext.create("libvpx-vp9", "r")  # FFmpeg's own vp9 decoder drops the alpha
        webm = [f.to_ndarray(format="rgba") for p in c.demux(video=0) for f in vp9.decode(p)]
    assert len(mov) == len(webm) == 12
    for png, a, b in zip(pngs, mov, webm):
        grey = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert np.abs(a[..., 3].astype(int) - grey).max() <= 1
        assert np.abs(b[..., 3].astype(int) - grey).mean() < 3
    assert any(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).std() > 0 for p in pngs)  # a real matte, not constant


def test_foreground_colours_alone_beside_their_matte(run, talk, tmp_path):
    """Robust Video Matting's pair, --fg-out fg.mp4 --alpha-out pha.mp4: ordinary videos, the
    colours the same as a foreground track's with alpha (PNGs), to within H.264's loss."""
    fg, pha, pngs = tmp_path / "fg.mp4", tmp_path / "pha.mp4", tmp_path / "fg"
    assert run(talk, "--fg-out", fg, "--alpha-out", pha, "--background", "none") == 0
    assert run(talk, "--fg-out", pngs, "--background", "none") == 0
    with av.open(str(fg)) as c:
        colours = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(colours) == len(list(pngs.iterdir())) == 12
    want = cv2.cvtColor(cv2.imread(str(pngs / "000005.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGB)
    assert np.abs(colours[5] - want).mean() < 3


def _composite_error(out, matte, colour) -> float:
    """Mean error of frame 0 of ``out`` against alpha * source + (1 - alpha) * colour."""
    with av.open(str(out)) as c:
        got = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    a = cv2.imread(str(matte / "000000.png"), cv2.IMREAD_UNCHANGED)[..., None] / 255.0
    want = a * shapes_frame(0, 96, 64) + (1 - a) * np.array(colour, float)
    return float(np.abs(got - want).mean())


def test_colour_background_is_composited_with_the_alpha(run, talk, tmp_path):
    out, matte = tmp_path / "out.mkv", tmp_path / "m"
    assert run(talk, "-o", out, "--alpha-out", matte, "--background", "#ff0000", "--crf", "0") == 0
    err = _composite_error(out, matte, (255, 0, 0))
    assert err < 6 and _composite_error(out, matte, (0, 0, 255)) > 4 * err


def test_image_and_video_backgrounds(run, talk, tmp_path, portrait_paths):
    bg_video = make_clip(tmp_path / "bg.mp4", frames=4, size=(50, 40), audio_rate=None)
    for bg in (portrait_paths[0][0], bg_video):
        out = tmp_path / f"out-{bg.stem}.mp4"
        assert run(talk, "-o", out, "--background", bg, "--max-frames", "5") == 0
        assert len(probe(out)["times"]) == 5


def test_a_folder_of_backgrounds_starts_with_the_first_by_name(run, talk, tmp_path):
    """Offline, where nothing switches: the run over a folder is the run over its first file
    in name order, to the bit (FFV1)."""
    folder = tmp_path / "bgs"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name in ("9.png", "10.png", "b.png"):
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    flags = ["--codec", "ffv1", "--max-frames", "3"]
    assert run(talk, "-o", tmp_path / "folder.mkv", "--background", folder, *flags) == 0
    assert run(talk, "-o", tmp_path / "nine.mkv", "--background", folder / "9.png", *flags) == 0
    assert run(talk, "-o", tmp_path / "ten.mkv", "--background", folder / "10.png", *flags) == 0
    decoded = {}
    for name in ("folder", "nine", "ten"):
        with av.open(str(tmp_path / f"{name}.mkv")) as c:
            decoded[name] = np.stack([f.to_ndarray() for f in c.decode(video=0)])
    assert np.array_equal(decoded["folder"], decoded["nine"]) and not np.array_equal(decoded["nine"], decoded["ten"])


def test_a_transparent_image_puts_the_blurred_room_behind_it(run, talk, tmp_path):
    """--background logo.png with transparency: where it is opaque, the run is the run over
    the same image made opaque; where it is transparent, the run over the first blur listed
    (blur:8, to switch to live). Compared on the lossless (FFV1) planes of three real frames,
    with the same foreground colours throughout (auto keeps the frame's over a blur alone)."""
    from PIL import Image

    logo = np.zeros((64, 96, 4), np.uint8)
    logo[:, :32] = (220, 40, 30, 255)  # the left third opaque, the rest transparent
    Image.fromarray(logo).save(tmp_path / "logo.png")
    Image.fromarray(logo[..., :3]).save(tmp_path / "opaque.png")
    planes = {}
    runs = {"logo": [tmp_path / "logo.png", "blur:8"], "opaque": [tmp_path / "opaque.png"], "blur": ["blur:8"]}
    for name, backgrounds in runs.items():
        out = tmp_path / f"{name}.mkv"
        listed = [arg for bg in backgrounds for arg in ("--background", bg)]
        assert run(talk, "-o", out, *listed, "--foreground", "quick", "--codec", "ffv1", "--max-frames", "3") == 0
        with av.open(str(out)) as c:
            planes[name] = np.stack([f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]).astype(int)
    y = slice(None, 64)
    assert planes["logo"].shape == (3, 96, 96)
    assert np.abs(planes["logo"][:, y, :28] - planes["opaque"][:, y, :28]).max() <= 1
    assert np.abs(planes["logo"][:, y, 36:] - planes["blur"][:, y, 36:]).max() <= 1
    assert np.abs(planes["opaque"][:, y, 36:] - planes["blur"][:, y, 36:]).mean() > 5  # (they do differ there)


def test_a_contained_background_shows_whole_with_the_blurred_room_in_its_margins(run, talk, tmp_path):
    """--background-fit contain: a 3:1 image behind the 3:2 talk is the run over that image
    padded to the frame's shape with transparent rows, blur:16 behind them; covering, the
    image fills those rows instead."""
    from PIL import Image

    wide = np.zeros((32, 96, 3), np.uint8)
    wide[:, :48], wide[:, 48:] = (220, 40, 30), (30, 40, 220)
    padded = np.zeros((64, 96, 4), np.uint8)
    padded[16:48, :, :3], padded[16:48, :, 3] = wide, 255
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(padded).save(tmp_path / "padded.png")
    planes = {}
    runs = {"contained": ["wide.png", "--background-fit", "contain"], "padded": ["padded.png"], "covered": ["wide.png"]}
    for name, (image, *fit) in runs.items():
        out = tmp_path / f"{name}.mkv"
        assert run(talk, "-o", out, "--background", tmp_path / image, *fit, "--codec", "ffv1", "--max-frames", "3") == 0
        with av.open(str(out)) as c:
            planes[name] = np.stack([f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]).astype(int)
    assert planes["contained"].shape == (3, 96, 96)
    assert np.abs(planes["contained"] - planes["padded"]).max() <= 1
    margins = np.r_[0:12, 52:64]  # (luma rows clear of the image's edges)
    assert np.abs(planes["contained"][:, margins] - planes["covered"][:, margins]).mean() > 5


def test_a_contained_background_of_the_frames_shape_runs_as_a_covering_one(run, talk, tmp_path, monkeypatch):
    """Nothing to show the room in: the same pixels as covering, from the image's own
    graph, not the mix graph (which would blend the image over a blur it never shows)."""
    import p3m_live.run_cli as run_cli

    opened, real = [], run_cli.open_backend
    monkeypatch.setattr(
        run_cli, "open_backend", lambda name, spec, *a, **k: opened.append(spec) or real(name, spec, *a, **k)
    )
    image = np.zeros((64, 96, 3), np.uint8)  # (the talk's own shape)
    image[:, :48], image[:, 48:] = (220, 40, 30), (30, 40, 220)
    cv2.imwrite(str(tmp_path / "bg.png"), image)
    planes = {}
    for name, fit in (("contained", "contain"), ("covered", "cover")):
        out = tmp_path / f"{name}.mkv"
        argv = ["--background", tmp_path / "bg.png", "--background-fit", fit, "--codec", "ffv1", "--max-frames", "3"]
        assert run(talk, "-o", out, *argv) == 0
        with av.open(str(out)) as c:
            planes[name] = np.stack([f.to_ndarray(format="yuv420p") for f in c.decode(video=0)])
    assert np.array_equal(planes["contained"], planes["covered"])
    assert [spec.background for spec in opened] == ["image", "image"]


def test_erode_pulls_the_written_matte_in(run, talk, tmp_path, capsys):
    """--erode 2 end to end: the matte written is OpenCV's 5x5 erosion of the one written
    without it, frame for frame; --erode 17 is one line."""
    mattes = {}
    for r in (0, 2):
        out = tmp_path / f"matte{r}.mkv"
        assert run(talk, "--alpha-out", out, "--background", "none", "--erode", r, "--max-frames", "4") == 0
        with av.open(str(out)) as c:
            mattes[r] = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    assert len(mattes[2]) == 4 and not np.array_equal(mattes[0][0], mattes[2][0])
    for plain, eroded in zip(mattes[0], mattes[2]):
        assert np.array_equal(eroded, cv2.erode(plain, np.ones((5, 5), np.uint8)))
    assert run(talk, "-o", tmp_path / "o.mp4", "--erode", "17") == 2
    err = capsys.readouterr().err
    assert "erode must be a whole number of pixels from 0 to 16" in err and err.count("\n") == 1


def test_image_folder_to_video(run, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(shapes_frame(i, 48, 32), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.mp4"
    assert run(folder, "-o", out, "--fps", "10") == 0
    assert probe(out)["times"] == pytest.approx([0, 0.1, 0.2, 0.3])
    assert run(folder, "-o", tmp_path / "small.mp4", "--downscale", "16", "--fps", "10") == 0
    assert probe(tmp_path / "small.mp4")["sizes"] == {(24, 16)}
    assert run(folder, "-o", tmp_path / "part.mp4", "--fps", "10", "--start", "0.1", "--duration", "0.2") == 0
    assert probe(tmp_path / "part.mp4")["times"] == pytest.approx([0, 0.1])  # images 1 and 2


def test_a_photos_matte_and_cut_out_are_written_as_named(run, tmp_path):
    """A photo's --alpha-out NAME.png is NAME.png itself; a sequence's are numbered."""
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(shapes_frame(3, 48, 32), cv2.COLOR_RGB2BGR))
    assert run(photo, "--alpha-out", tmp_path / "a.png", "--fg-out", tmp_path / "fg.png", "--background", "none") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "fg.png", "photo.jpg"]  # not a_000000.png
    assert cv2.imread(str(tmp_path / "fg.png"), cv2.IMREAD_UNCHANGED).shape == (32, 48, 4)
    heic = write_heic(tmp_path / "IMG_0002.heic", shapes_frame(3, 48, 32))  # an iPhone photo
    assert run(heic, "--alpha-out", tmp_path / "h.png", "--background", "none") == 0
    assert cv2.imread(str(tmp_path / "h.png"), cv2.IMREAD_UNCHANGED).shape == (32, 48)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(shapes_frame(i, 48, 32), cv2.COLOR_RGB2BGR))
    (tmp_path / "seq").mkdir()
    assert run(folder, "--alpha-out", tmp_path / "seq" / "m.png", "--background", "none") == 0
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["m_000000.png", "m_000001.png"]


def test_the_composite_as_pngs(run, talk, tmp_path, capsys):
    """-o NAME.png for a photo is its composite, over the new background where the matte is
    clear; for a video, numbered PNGs (a folder or a printf pattern) that are the very frames
    of a lossless video of the same run."""
    photo = tmp_path / "photo.jpg"
    picture = shapes_frame(3, 48, 32)
    cv2.imwrite(str(photo), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    assert run(photo, "-o", tmp_path / "c.png", "--alpha-out", tmp_path / "a.png", "--background", "#00ff00") == 0
    comp = cv2.cvtColor(cv2.imread(str(tmp_path / "c.png")), cv2.COLOR_BGR2RGB)
    alpha = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)
    assert comp.shape == (32, 48, 3) and (alpha < 8).any() and (alpha > 247).any()
    clear, solid = alpha < 8, alpha > 247

    def luma(rgb):  # (compared in luma: 4:2:0 chroma blurs colours across the matte's edge)
        return rgb.astype(float) @ (0.299, 0.587, 0.114)

    assert np.abs(luma(comp[clear]) - luma(np.array([0, 255, 0]))).mean() < 6
    assert np.abs(luma(comp[solid]) - luma(picture[solid])).mean() < 6
    frames = tmp_path / "frames"
    assert run(talk, "-o", frames) == 0
    capsys.readouterr()
    assert run(talk, "-o", tmp_path / "f_%03d.png", "--crf", "30") == 0
    assert "--crf and --preset are for video outputs" in capsys.readouterr().err
    assert run(talk, "-o", tmp_path / "lossless.mkv", "--codec", "ffv1") == 0
    names = sorted(p.name for p in frames.iterdir())
    assert names == [f"{i:06d}.png" for i in range(12)]
    with av.open(str(tmp_path / "lossless.mkv")) as c:
        video = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    for i, want in enumerate(video):
        png = cv2.cvtColor(cv2.imread(str(frames / names[i])), cv2.COLOR_BGR2RGB)
        assert np.abs(png.astype(int) - want.astype(int)).max() <= 1, i
        assert np.array_equal(png, cv2.cvtColor(cv2.imread(str(tmp_path / f"f_{i:03d}.png")), cv2.COLOR_BGR2RGB))


def test_downscale_scales_the_picture_and_keeps_times_and_audio(run, tmp_path):
    """A big clip (192x128) run at a short side of 64: everything comes out at 96x64, the picture
    is the source scaled (not cropped), and the frame times and audio are the source's."""
    big = make_clip(tmp_path / "big.mp4", frames=6, size=(192, 128))
    out, fg = tmp_path / "out.mp4", tmp_path / "fg"
    assert run(big, "-o", out, "--fg-out", fg, "--downscale", "64") == 0
    src, dst = probe(big), probe(out)
    assert dst["sizes"] == {(96, 64)} and dst["times"] == pytest.approx(src["times"]) and dst["audio"] == src["audio"]
    rgba = cv2.cvtColor(cv2.imread(str(fg / "000002.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    want = cv2.resize(shapes_frame(2, 192, 128), (96, 64), interpolation=cv2.INTER_AREA)
    assert rgba.shape == (64, 96, 4) and np.abs(rgba[..., :3].astype(int) - want).mean() < 6
    # a phone clip keeps its orientation (the short side is the width), and small input is kept
    phone = make_clip(tmp_path / "phone.mp4", frames=2, size=(192, 128), rotation=-90, audio_rate=None)
    assert run(phone, "-o", tmp_path / "p.mp4", "--downscale", "64") == 0
    assert probe(tmp_path / "p.mp4")["sizes"] == {(64, 96)}
    assert run(big, "-o", tmp_path / "same.mp4", "--downscale", "720") == 0
    assert probe(tmp_path / "same.mp4")["sizes"] == {(192, 128)}


def test_start_and_duration_cut_a_part_with_its_audio(run, tmp_path):
    """--start 0.5 --duration 1 of a 2 s clip: the frames from 0.5 s up to 1.5 s, and the audio
    packets of that second, all moved to start at 0 (as ffmpeg -ss -t does), in sync."""
    clip = make_clip(tmp_path / "long.mp4", frames=50)
    out, fg = tmp_path / "part.mp4", tmp_path / "fg"
    assert run(clip, "-o", out, "--fg-out", fg, "--start", "0.5", "--duration", "1") == 0
    src, dst = probe(clip), probe(out)
    kept = [t - 0.5 for t in src["times"] if 0.5 <= t < 1.5]
    assert len(kept) == 25 and dst["times"] == pytest.approx(kept)
    sr = 16000
    want_audio = [p for p in src["audio"] if 0.5 * sr <= p[0] < 1.5 * sr]
    assert [bytes_ for _, _, bytes_ in dst["audio"]] == [bytes_ for _, _, bytes_ in want_audio]
    assert dst["audio"][0][0] == want_audio[0][0] - 0.5 * sr  # moved by exactly the start
    first = cv2.cvtColor(cv2.imread(str(fg / "000000.png")), cv2.COLOR_BGR2RGB)
    assert np.abs(first.astype(int) - shapes_frame(13, 96, 64)).mean() < 6  # 0.52 s is frame 13


def test_the_recordings_metadata_is_kept(run, tmp_path):
    """A phone clip's creation time, location, make and model, and its audio's language, go
    into every output (as ffmpeg keeps them); the muxer's own keys are the output's."""
    from p3m_live.video.recording import recording_metadata, shifted_metadata

    clip = tmp_path / "phone.mp4"  # MP4 keeps the language tag "deu"; MOV knows it as "ger"
    tags = {
        "creation_time": "2026-05-01T10:20:30.000000Z",
        "com.apple.quicktime.creationdate": "2026-05-01T12:20:30+0200",
        "com.apple.quicktime.location.ISO6709": "+48.8577+002.2950+035.000/",
        "com.apple.quicktime.make": "Apple",
    }
    with av.open(str(clip), "w", container_options={"movflags": "use_metadata_tags"}) as out:
        out.metadata.update(tags)
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        a = out.add_stream("aac", rate=16000)
        a.layout, a.metadata["language"] = "mono", "deu"
        frames = []
        for i in range(4):
            frames.append(av.VideoFrame.from_ndarray(shapes_frame(i, 96, 64), format="rgb24"))
            frames[-1].pts = i
        encode_all(out, v, frames)
        tone = av.AudioFrame.from_ndarray(np.zeros((1, 2560), np.float32), format="fltp", layout="mono")
        tone.sample_rate, tone.pts = 16000, 0
        encode_all(out, a, [tone])
    mp4, fg, matte = tmp_path / "out.mp4", tmp_path / "fg.mov", tmp_path / "matte.mkv"
    assert run(clip, "-o", mp4, "--fg-out", fg, "--alpha-out", matte) == 0
    for path, keys in ((mp4, ["creation_time"]), (fg, list(tags)), (matte, ["creation_time"])):
        with av.open(str(path)) as c:
            got = {k.lower(): v for k, v in c.metadata.items()}
            assert all(got.get(k.lower()) == tags[k] for k in keys), (path.name, got)
            assert "lavf" in got["encoder"].lower()  # the muxer's own, not the source's
    with av.open(str(mp4)) as c:
        assert c.streams.audio[0].metadata.get("language") == "deu"
    kept = recording_metadata({"major_brand": "qt  ", "ENCODER": "x", "location": "+1+2/", "location-eng": "+1+2/"})
    assert kept == {"location": "+1+2/"}
    part = tmp_path / "part.mov"  # a part starting 0.1 s in was recorded 0.1 s later
    assert run(clip, "-o", part, "--start", "0.1") == 0
    with av.open(str(part)) as c:
        assert c.streams.audio[0].metadata.get("language") == "ger"  # MOV's table knows German as "ger" only
        assert c.metadata["creation_time"] == "2026-05-01T10:20:30.100000Z"
        assert c.metadata["com.apple.quicktime.creationdate"] == "2026-05-01T12:20:30+0200"  # whole seconds
        assert c.metadata["com.apple.quicktime.make"] == "Apple"
    moved = shifted_metadata({"com.apple.quicktime.creationdate": "2026-05-01T23:59:30+0200", "title": "t"}, 90.5)
    assert moved == {"com.apple.quicktime.creationdate": "2026-05-02T00:01:00+0200", "title": "t"}


SRT = "1\n00:00:00,100 --> 00:00:00,900\nHello there\n\n2\n00:00:01,000 --> 00:00:01,800\nSecond line\n"


def _subtitles(path, durations: bool = False):
    """The cues of the first subtitle stream, decoded (whatever the codec): time, text."""
    with av.open(str(path)) as c:
        if not c.streams.subtitles:
            return None
        st = c.streams.subtitles[0]
        cues = []
        for p in c.demux(st):
            cue = st.codec_context.decode2(p) if p.size else None
            text = b"".join(r.dialogue for r in cue.rects) if cue is not None else b""
            if text:  # (mov_text fills the gaps between cues with empty ones)
                cues.append((float(p.pts * p.time_base), float(p.duration * p.time_base), text))
    return [(round(t, 3), round(d, 3), text) if durations else (round(t, 3), text) for t, d, text in cues]


def test_subtitles_are_copied_or_converted_where_the_container_takes_them(run, tmp_path, capsys):
    """A talk with SubRip subtitles: kept in .mkv with their times (moved by --start like the
    rest; a cue still showing at either end of a part is cut to it); MP4 and MOV cannot hold
    SubRip, so there they become mov_text, and in WebM WebVTT, with the same cues; MPEG-TS
    holds no text subtitles, so there they are left out with a warning, not an error."""
    clip = with_subtitles(make_clip(tmp_path / "talk.mkv", frames=50), SRT, tmp_path / "subbed.mkv")
    assert run(clip, "-o", tmp_path / "out.mkv") == 0
    cues = [(0.1, 0.8, b"Hello there"), (1.0, 0.8, b"Second line")]
    assert _subtitles(tmp_path / "out.mkv", durations=True) == cues
    part = [(0.0, 0.4, b"Hello there"), (0.5, 0.5, b"Second line")]
    assert run(clip, "-o", tmp_path / "part.mkv", "--start", "0.5", "--duration", "1.0") == 0
    assert _subtitles(tmp_path / "part.mkv", durations=True) == part
    for name, codec in (("out.mp4", "mov_text"), ("out.webm", "webvtt")):  # (.mov: as .mp4, the same muxer)
        assert run(clip, "-o", tmp_path / name) == 0
        with av.open(str(tmp_path / name)) as c:
            assert c.streams.subtitles[0].codec_context.name == codec
        assert _subtitles(tmp_path / name, durations=True) == cues, name
    assert run(clip, "-o", tmp_path / "part.mp4", "--start", "0.5", "--duration", "1.0") == 0
    assert _subtitles(tmp_path / "part.mp4", durations=True) == part
    capsys.readouterr()
    assert run(clip, "-o", tmp_path / "out.ts") == 0
    assert _subtitles(tmp_path / "out.ts") is None and len(probe(tmp_path / "out.ts")["times"]) == 50
    assert "subtitles: srt cannot go into .ts" in capsys.readouterr().err


def test_audio_the_container_cannot_take_is_reencoded(run, talk, tmp_path):
    out = tmp_path / "out.webm"
    assert run(talk, "-o", out, "--background", "blur") == 0
    info = probe(out)
    assert info["audio_codec"] == "opus" and len(info["times"]) == 12
    with av.open(str(out)) as c:
        seconds = sum(f.samples / f.sample_rate for f in c.decode(audio=0))
    assert seconds == pytest.approx(12 / 25, abs=0.05)


def test_config_file_gives_defaults(run, talk, tmp_path, monkeypatch):
    cfg = tmp_path / "p3m.toml"
    cfg.write_text('background = "#0000ff"\ncrf = 0\noverwrite = true\n')
    out, matte = tmp_path / "out.mkv", tmp_path / "m"
    out.write_bytes(b"old")
    assert run(talk, "-o", out, "--alpha-out", matte, "--config", cfg, "--max-frames", "1") == 0
    err = _composite_error(out, matte, (0, 0, 255))
    assert err < 6 and _composite_error(out, matte, (255, 0, 0)) > 4 * err


def test_a_missing_input_is_the_only_line(seed32_ckpt, tmp_path, capsys):
    """Not after a line about the backend chosen for a run that never starts (not quiet)."""
    from p3m_live.cli import main

    assert main([str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4"), "--weights", str(seed32_ckpt)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"p3m-live: error: input not found: {tmp_path / 'missing.mp4'}"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/missing.mp4", "-o", "{tmp}/o.mp4"], "input not found"),
        (["{noise}", "-o", "{tmp}/o.mp4"], "cannot be opened as video"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--format", "nosuchfmt"], "no 'nosuchfmt' input format; check --format"),
        (["{talk}", "-o", "{talk}"], "is the input"),
        (["{talk}", "-o", "{existing}"], "--overwrite"),
        (["{talk}"], "no output"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--background", "nowhere.jpg"], "background 'nowhere.jpg'"),
        (["{talk}", "--fg-out", "{tmp}/fg.mp4"], "or add --alpha-out for the matte beside the colours alone"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--background", "none"], "--background none"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--model-size", "100"], "multiple of 32"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--config", "{badcfg}"], "unknown option 'colour'"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--virtual-cam"], "--virtual-cam is a live output"),
        (["{talk}", "--webcam"], "give one input"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--codec", "nosuch264"], "nosuch264 encoder is not available"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--preset", "fastest"], "check --preset and --crf"),
        (["{talk}", "-o", "{tmp}/o.gif"], ".gif files cannot hold libx264 video"),
        (["{talk}", "-o", "{tmp}/o.jpg"], "the composite is a video (.mp4, .mov, .mkv, .webm) or PNGs"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--device", "cuda"], "nothing here sees a CUDA GPU"),  # not the CPU quietly
        (["{talk}", "-o", "/proc/o.mp4"], "cannot write into /proc"),  # a folder nobody can create files in
        (["{talk}", "-o", "{tmp}/o.mp4", "--downscale", "8"], "--downscale is the short side"),
        (["--webcam", "--camera-size", "0x0", "-o", "{tmp}/o.mp4"], "--camera-size 0x0 is too small for a camera"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--start", "9"], "--start 9 is past the end of"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--start", "0.2", "--live"], "--start is for files"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--duration", "0"], "--duration 0 is nothing to run"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--background", "#12345"], "'#12345' is not a colour: write #RRGGBB"),
        (["{talk}", "-o", "{tmp}/o.mp4", "--start", "0.3", "--duration", "0.01"], "holds no frame of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run, talk, tmp_path, capsys, args, message):
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).bytes(4000))
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    badcfg = tmp_path / "bad.toml"
    badcfg.write_text('colour = "red"\n')
    names = {"tmp": tmp_path, "noise": noise, "talk": talk, "existing": existing, "badcfg": badcfg}
    assert run(*[a.format(**names) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("p3m-live: error: ") and message in err[-1]
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.partial.mp4").exists()


def test_hardware_encoder_encodes_or_says_why(run, talk, tmp_path, capsys):
    """PyAV's FFmpeg has NVENC built in; it opens only where an NVIDIA GPU and driver exist. Either
    way the run must be clean: a playable file, or one line naming the fix (this machine: no GPU)."""
    out = tmp_path / "o.mp4"
    code = run(talk, "-o", out, "--codec", "h264_nvenc")
    if code == 0:
        assert len(probe(out)["times"]) == 12
    else:
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and "h264_nvenc encoder" in err[-1] and "choose another --codec" in err[-1]
        assert list(tmp_path.iterdir()) == []


def test_live_virtual_camera_without_a_device(seed32_ckpt, tmp_path):
    """The real no-device path, in a real process: exit 2 and the modprobe line."""
    pytest.importorskip("pyvirtualcam")
    import glob

    if glob.glob("/dev/video*"):
        pytest.skip("this machine has video devices")
    cmd = [
        sys.executable,
        "-m",
        "p3m_live.cli",
        "testsrc2=size=64x48:rate=30",
        "--format",
        "lavfi",
        "--live",
        "--virtual-cam",
        "--weights",
        str(seed32_ckpt),
        "--model-size",
        "32",
        "--backend",
        "torch",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "modprobe v4l2loopback" in r.stderr and "Traceback" not in r.stderr


def _headless_env() -> dict[str, str]:
    """This process's environment without a display, as over SSH or in a container."""
    import os

    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}


def test_preview_without_a_display_is_one_line_not_an_abort(talk, seed32_ckpt, tmp_path):
    """Real processes: OpenCV's Qt plugin aborts the process (SIGABRT, exit 134) where Linux has
    no display, so --preview is refused before anything opens; a plain --webcam run, whose
    preview was only the default, feeds the virtual camera alone."""
    common = ["--weights", str(seed32_ckpt), "--model-size", "32", "--backend", "torch"]
    cli = [sys.executable, "-m", "p3m_live.cli"]
    runs = {
        "file": [str(talk), "-o", str(tmp_path / "o.mp4"), "--preview"],
        "live": ["testsrc2=size=64x48:rate=30", "--format", "lavfi", "--live", "--preview"],
        "webcam": ["--webcam", "testsrc2=size=64x48:rate=30", "--format", "lavfi"],
    }
    for name, argv in runs.items():
        r = subprocess.run(cli + argv + common, capture_output=True, text=True, timeout=120, env=_headless_env())
        assert r.returncode == 2, (name, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and "Aborted" not in r.stderr
        if name == "webcam":  # on to the virtual camera, which has no device here either
            assert "no preview window (no display" in r.stderr and "modprobe v4l2loopback" in r.stderr
        else:
            assert r.stderr.strip().splitlines()[-1].startswith("p3m-live: error: --preview cannot open a window")
    assert list(tmp_path.iterdir()) == []


def test_standard_input(talk, seed32_ckpt, tmp_path):
    """Real processes reading a real pipe: `... | p3m-live - -o out.mp4` converts it with its
    audio; a live run from a pipe ends with it (a pipe is never reopened); an MP4 with its
    index at the end, which a pipe cannot carry, is one line saying what can."""
    mkv = tmp_path / "talk.mkv"
    assert main(["--weights", str(seed32_ckpt), "--model-size", "32", "-q", str(talk), "-o", str(mkv)]) == 0
    cli = [sys.executable, "-m", "p3m_live.cli", "--weights", str(seed32_ckpt), "--model-size", "32", "-q"]
    out = tmp_path / "out.mp4"
    r = subprocess.run([*cli, "-", "-o", str(out)], input=mkv.read_bytes(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(probe(out)["times"]) == 12
    assert [p[2] for p in probe(out)["audio"]] == [p[2] for p in probe(mkv)["audio"]]  # copied
    live = tmp_path / "live.mkv"
    r = subprocess.run([*cli, "-", "--live", "-o", str(live)], input=mkv.read_bytes(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 0 < len(probe(live)["times"]) <= 12 and b"reopen" not in r.stderr
    late_index = make_clip(tmp_path / "big.mp4", frames=40, size=(640, 360), audio_rate=None)  # moov at the end
    r = subprocess.run([*cli, "-", "-o", str(tmp_path / "x.mp4")], input=late_index.read_bytes(), capture_output=True)
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    assert r.stderr.decode().strip().splitlines()[-1].endswith("or give the file's path instead of -")


def test_timecode_goes_into_every_video_output(run, tmp_path):
    """A camera's start timecode is on the composite and on the mattes, as a timecode track
    in MOV and MP4 and a tag in Matroska, moved on by --start (0.2 s at 25 fps: 5 frames),
    and the fragmented MOV is still rewritten as a plain one."""
    clip = make_clip(tmp_path / "cam.mov", frames=12, timecode="01:00:00:00")
    outs = [tmp_path / "out.mov", tmp_path / "matte.mov", tmp_path / "fg.mkv"]
    assert run(clip, "-o", outs[0], "--alpha-out", outs[1], "--fg-out", outs[2], "--start", "0.2") == 0
    for out in outs:
        with av.open(str(out)) as c:
            tags = {k.lower(): v for k, v in c.streams.video[0].metadata.items()}
            assert tags["timecode"] == "01:00:00:05", out.name
            if out.suffix == ".mov":
                assert [s.metadata["timecode"] for s in c.streams if s.type == "data"] == ["01:00:00:05"]
                assert b"moof" not in out.read_bytes()  # rewritten as a plain MOV, not left in fragments
    plain = tmp_path / "plain.mp4"
    assert run(make_clip(tmp_path / "nt.mp4", frames=4), "-o", plain) == 0
    with av.open(str(plain)) as c:
        assert "timecode" not in c.streams.video[0].metadata and len(c.streams) == 2  # none made up


def test_chapters_go_into_every_video_output_cut_to_the_part(run, tmp_path):
    """Chapters of 0.2 s each: a plain run keeps them all in MP4 (through the fragment
    rewrite) and in the matte's MOV; a part from 0.1 s to 0.5 s has the three it overlaps,
    cut to it and on its clock."""
    clip = with_chapters(make_clip(tmp_path / "c.mp4", frames=20), ["A", "B", "C", "D"], 0.2, tmp_path / "ch.mkv")

    def chapters(path):
        with av.open(str(path)) as c:
            return [(round(float(ch["start"] * ch["time_base"]), 3), round(float(ch["end"] * ch["time_base"]), 3),
                     ch["metadata"].get("title")) for ch in c.chapters()]  # fmt: skip

    whole = [(0.0, 0.2, "A"), (0.2, 0.4, "B"), (0.4, 0.6, "C"), (0.6, 0.8, "D")]
    assert chapters(clip) == whole
    assert run(clip, "-o", tmp_path / "out.mp4", "--alpha-out", tmp_path / "matte.mov") == 0
    assert chapters(tmp_path / "out.mp4") == chapters(tmp_path / "matte.mov") == whole
    assert b"moof" not in (tmp_path / "out.mp4").read_bytes()
    assert run(clip, "-o", tmp_path / "part.mkv", "--start", "0.1", "--duration", "0.4") == 0
    assert chapters(tmp_path / "part.mkv") == [(0.0, 0.1, "A"), (0.1, 0.3, "B"), (0.3, 0.4, "C")]


def test_attachments_go_into_matroska_composites(run, tmp_path):
    """The font an ASS track is drawn with (a Matroska attachment) goes into an .mkv composite,
    byte for byte; not into the matte, nor into an .mp4, which has no attachments (and the run
    does not fail for it)."""
    subbed = with_subtitles(make_clip(tmp_path / "c.mp4", frames=6), SRT, tmp_path / "s.mkv")
    font = b"\x00\x01\x00\x00" + bytes(range(256)) * 4
    clip = tmp_path / "fonts.mkv"
    with av.open(str(subbed)) as inp, av.open(str(clip), "w") as out:
        streams = {s.index: out.add_stream_from_template(s, opaque=True) for s in inp.streams}
        out.add_attachment("Talk Sans.ttf", "font/ttf", font)
        for p in inp.demux():
            if p.dts is not None:
                p.stream = streams[p.stream.index]
                out.mux(p)

    def attachments(path):
        with av.open(str(path)) as c:
            return [(s.name, s.mimetype, bytes(s.data)) for s in c.streams if s.type == "attachment"]

    assert run(clip, "-o", tmp_path / "out.mkv", "--alpha-out", tmp_path / "matte.mkv") == 0
    assert attachments(tmp_path / "out.mkv") == [("Talk Sans.ttf", "font/ttf", font)]
    assert attachments(tmp_path / "matte.mkv") == []
    assert run(clip, "-o", tmp_path / "out.mp4") == 0
    assert attachments(tmp_path / "out.mp4") == []


def test_anamorphic_video_stays_anamorphic(run, tmp_path):
    """DV and DVD at 16:9 store 4:3-ish frames with wide pixels: every output is tagged with
    the same pixel shape (the ProRes mattes through the fragment rewrite too), so players
    show them as wide as the source."""
    clip = make_clip(tmp_path / "dv.mp4", frames=4, sar=Fraction(64, 45))
    outs = [tmp_path / "out.mp4", tmp_path / "out.mkv", tmp_path / "matte.mov", tmp_path / "fg.mov"]
    assert run(clip, "-o", outs[0], "--alpha-out", outs[2], "--fg-out", outs[3]) == 0
    assert run(clip, "-o", outs[1]) == 0
    for out in outs:
        with av.open(str(out)) as c:
            assert c.streams.video[0].sample_aspect_ratio == Fraction(64, 45), out.name
    square = tmp_path / "square.mp4"
    assert run(make_clip(tmp_path / "sq.mp4", frames=2), "-o", square) == 0
    with av.open(str(square)) as c:
        assert c.streams.video[0].sample_aspect_ratio in (None, 0, 1)


@pytest.mark.parametrize("name", ["out.mp4", "out.mkv"])
def test_a_full_disk_is_one_line_and_keeps_what_was_written(run, talk, small_disk, capsys, name):
    """A disk that fills up mid-run (or as the file is closed) is named as such, with what to
    do, not as a muxer refusing streams; what was written stays as NAME.partial.ext. (The MP4
    muxer reports nothing here: the file's read-back finds it short.)"""
    before = talk.read_bytes()
    disk = small_disk("8k")
    assert run(talk, "-o", disk / name, "--crf", "0") == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"p3m-live: error: the disk is full: {name} could not be written")
    assert f"free some space in {disk} or write to another disk" in err and "Traceback" not in err
    assert "refused" not in err and "could not be finished cleanly" not in err
    assert [p.name for p in disk.iterdir()] == [name.replace(".", ".partial.")]
    assert talk.read_bytes() == before


def test_pngs_on_a_full_disk_are_one_line_and_leave_no_cut_file(run, talk, small_disk, capfd):
    """The composite as PNGs onto a disk that fills: the frame that does not fit is named, no
    cut PNG is left behind it, and libpng's own "Write Error" does not show."""
    disk = small_disk("24k")
    assert run(talk, "-o", disk / "frames") == 2
    err = capfd.readouterr().err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"p3m-live: error: the disk is full: (\d{{6}})\.png could not be written; free some space in "
        rf"{re.escape(str(disk / 'frames'))} or write to another disk",
        last,
    ), last
    assert "libpng" not in err and "Traceback" not in err
    failed = re.search(r"(\d{6})\.png", last).group(1)
    written = sorted(p.name for p in (disk / "frames").iterdir())
    assert written == [f"{i:06d}.png" for i in range(int(failed))]
    assert all(cv2.imread(str(disk / "frames" / n)) is not None for n in written)  # whole PNGs only


def test_no_room_to_rewrite_a_fragmented_mp4_keeps_it_whole(run, talk, small_disk, caplog):
    """A finished MP4 on a disk without room for its plain copy stays fragmented, whole."""
    disk = small_disk("256k")
    assert run(talk, "-o", disk / "out.mp4") == 0
    assert [p.name for p in disk.iterdir()] == ["out.mp4"]
    assert b"moof" in (disk / "out.mp4").read_bytes()
    assert len(probe(disk / "out.mp4")["times"]) == 12
    assert any("stays fragmented (no room on the disk to rewrite it)" in r.getMessage() for r in caplog.records)


def test_standard_output(talk, seed32_ckpt, tmp_path):
    """Real processes writing a real pipe: `p3m-live IN -o - | ...` gets the same frames and
    audio as a file output, as Matroska; a reader that quits early, or a full disk behind it,
    ends the run in one line; a terminal gets no video bytes; the mattes cannot go there."""
    cli = [sys.executable, "-m", "p3m_live.cli", "--weights", str(seed32_ckpt), "--model-size", "32", "-q"]
    r = subprocess.run([*cli, str(talk), "-o", "-"], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    piped = tmp_path / "piped.mkv"
    piped.write_bytes(r.stdout)
    filed = tmp_path / "filed.mkv"
    assert subprocess.run([*cli, str(talk), "-o", str(filed)], capture_output=True, timeout=120).returncode == 0
    with av.open(str(piped)) as c:
        assert c.format.name.startswith("matroska")
    assert probe(piped)["times"] == probe(filed)["times"] and len(probe(piped)["times"]) == 12
    assert [a[2] for a in probe(piped)["audio"]] == [a[2] for a in probe(talk)["audio"]]  # copied

    # The reader is gone before the first frame is out: the first write meets EPIPE.
    proc = subprocess.Popen([*cli, str(talk), "-o", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("p3m-live: error: the program reading standard output closed it")

    with open("/dev/full", "wb") as full:  # standard output into a file on a full disk
        r = subprocess.run([*cli, str(talk), "-o", "-"], stdout=full, stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 2
    assert r.stderr.decode().strip().splitlines() == [
        "p3m-live: error: the disk is full: standard output could not be written after 0 frames; "
        "free some space where it goes or write to another disk"
    ]

    import pty

    leader, follower = pty.openpty()
    try:
        r = subprocess.run([*cli, str(talk), "-o", "-"], stdout=follower, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 2
    assert "standard output is a terminal; pipe it into a program" in r.stderr.decode()
    assert not any(tmp_path.glob("-*"))


def test_a_live_stream_over_udp(run, talk, tmp_path, capsys):
    """-o udp://... sends the composite as MPEG-TS, at the source's pace (a network output is
    live), with no frame held back for reordering (x264's zero latency); a receiver that is
    not there, or --offline, is one line, and an RTMP stream key is never printed."""
    import socket
    import threading

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    received = bytearray()

    def receive():
        rx.settimeout(60)  # (the run starts slowly: the model loads first)
        try:
            while True:
                received.extend(rx.recv(65536))
                rx.settimeout(2)
        except OSError:
            pass

    thread = threading.Thread(target=receive)
    thread.start()
    port = rx.getsockname()[1]
    assert run(talk, "-o", f"udp://127.0.0.1:{port}?pkt_size=1316", "--model", "p3m") == 0
    thread.join()
    rx.close()
    stream = tmp_path / "received.ts"
    stream.write_bytes(bytes(received))
    with av.open(str(stream)) as c:
        assert c.format.name == "mpegts" and c.streams.video[0].codec_context.name == "h264"
        packets = [p for p in c.demux(video=0) if p.size]
    assert 4 <= len(packets) <= 12 and all(p.pts == p.dts for p in packets)  # (live: late frames are dropped)
    assert probe(stream)["audio_codec"] == "aac"  # and the talk's sound with it
    capsys.readouterr()
    listener = socket.socket()  # a port nothing listens on: bound, never listening
    listener.bind(("127.0.0.1", 0))
    assert run(talk, "-o", f"tcp://127.0.0.1:{listener.getsockname()[1]}", "--model", "p3m") == 2
    listener.close()
    assert "failed after 0 frames (Connection refused)" in capsys.readouterr().err
    assert run(talk, "-o", "udp://127.0.0.1:9", "--offline") == 2
    assert "is a live stream" in capsys.readouterr().err
    assert run(talk, "-o", f"rtmp://127.0.0.1:{port}/live/SECRET-KEY", "--model", "p3m") == 2
    err = capsys.readouterr().err
    assert "rtmp://127.0.0.1" in err and "SECRET" not in err


@pytest.mark.parametrize(
    "scheme, fmt, opts",
    [
        ("rtsp", None, {"rtsp_flags": "listen", "listen_timeout": "60"}),
        ("rtmp", "flv", {"listen": "1", "timeout": "60"}),
    ],
)
def test_a_published_stream_reaches_its_server(seed32_ckpt, talk, capsys, scheme, fmt, opts):
    """-o rtsp://... and rtmp://... publish to a server, here FFmpeg's own listener: the
    picture, and the talk's AAC copied, not re-encoded (RTSP's muxer is asked what it takes
    through RTP's, as it sends each stream so). The log says it is connecting first: where a
    receiver never answers, that is the line the run stops at, with its time limit (see
    README)."""
    import socket
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"{scheme}://127.0.0.1:{port}/live/KEY"
    got: dict = {"video": 0}

    def serve():  # (no PyAV timeout: its callback would wait for the GIL the sender holds)
        with av.open(url, format=fmt, options=opts) as c:
            got["codecs"] = [st.codec_context.name for st in c.streams]
            with contextlib.suppress(av.error.FFmpegError):  # (RTMP's end is an I/O error here)
                for packet in c.demux(video=0):
                    got["video"] += bool(packet.size)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    time.sleep(0.3)  # (listening)
    capsys.readouterr()
    assert main(["--weights", str(seed32_ckpt), "--model-size", "64", str(talk), "-o", url]) == 0  # (no -q)
    server.join(20)
    err = capsys.readouterr().err
    said = f"output: {scheme}://127.0.0.1:{port}/live/... ({fmt or 'rtsp'}), connecting, giving up after 30 s"
    assert said in err
    assert "KEY" not in err and "re-encoding" not in err
    assert got["codecs"] == ["h264", "aac"] and got["video"] >= 4  # (live: late frames may be dropped)


def test_mattes_cannot_go_to_standard_output(run, talk, tmp_path, capsys):
    assert run(talk, "--alpha-out", "-") == 2
    assert "only the composite can go to standard output" in capsys.readouterr().err


def test_a_live_run_of_a_file_keeps_its_sound(run, tmp_path):
    """A file played live (into the virtual camera, a stream, a recording) keeps its audio:
    every packet copied as it is, on the frames' clock, though late frames are dropped; the
    sound after the last frame too (read as the run ends)."""
    talk = make_clip(tmp_path / "talk.mp4", frames=12, audio_tail=0.3)
    out = tmp_path / "live.mkv"
    assert run(talk, "--live", "-o", out, "--model", "p3m") == 0
    got, want = probe(out), probe(talk)
    assert [a[2] for a in got["audio"]] == [a[2] for a in want["audio"]]
    assert 0 < len(got["times"]) <= 12
    steps = np.diff(got["times"]) / 0.04  # each frame at its own time (the sound's clock), gaps where dropped
    assert np.allclose(steps, np.round(steps), atol=0.05) and (steps >= 1 - 1e-6).all()


def test_live_run_to_a_file(run, tmp_path, monkeypatch):
    """Also: every background's frame graph is opened before any output starts, so that
    switching with b never stalls a call (an export, a TensorRT build)."""
    import p3m_live.run_cli as run_cli

    events = []
    real_open, real_sinks = run_cli.open_backend, run_cli._sinks
    monkeypatch.setattr(run_cli, "open_backend", lambda *a, **k: events.append(a[1].background) or real_open(*a, **k))
    monkeypatch.setattr(run_cli, "_sinks", lambda *a: events.append("outputs") or real_sinks(*a))
    out = tmp_path / "live.mp4"
    code = run(
        "testsrc2=size=64x48:rate=30",
        "--format",
        "lavfi",
        "--live",
        "-o",
        out,
        "--duration",
        "1.5",
        "--backend",
        "torch",
    )
    assert code == 0
    assert len(probe(out)["times"]) >= 3
    assert events == ["blur", "color", "outputs"]  # blur (the default), then green added for b


def test_http_stream_input(run, talk, tmp_path):
    """A network input over loopback HTTP (what an http:// camera or file server gives)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(talk.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{talk.name}"
        out = tmp_path / "out.mp4"
        assert run(url, "-o", out) == 0
    finally:
        server.shutdown()
    assert probe(out)["times"] == pytest.approx(probe(talk)["times"])
    assert probe(out)["audio"] == probe(talk)["audio"]


def test_fast_model_needs_no_p3m_weights(talk, tmp_path, fast_models, capsys):
    """The main job on a machine without P3M-Net's weights: --model fast."""
    out, matte = tmp_path / "out.mp4", tmp_path / "matte"
    assert main([str(talk), "-o", str(out), "--alpha-out", str(matte), "--model", "fast", "-q"]) == 0
    assert len(probe(out)["times"]) == 12 and probe(out)["audio"] == probe(talk)["audio"]
    assert len(list(matte.iterdir())) == 12
    assert main([str(talk), "-o", str(tmp_path / "p3m.mp4"), "-q"]) == 2  # P3M-Net: no weights here
    assert "--model fast" in capsys.readouterr().err


def test_live_on_the_cpu_picks_the_fast_model(tmp_path, fast_models, capsys):
    """--model auto: a live run on the CPU gets the real-time model (no P3M-Net weights here,
    so picking P3M-Net would fail); offline runs keep P3M-Net."""
    out = tmp_path / "live.mp4"
    live = ["testsrc2=size=64x48:rate=30", "--format", "lavfi", "--live", "-o", str(out), "--duration", "1"]
    assert main([*live, "--backend", "onnxruntime"]) == 0
    assert "model: fast (a live run on the CPU" in capsys.readouterr().err
    assert len(probe(out)["times"]) >= 3
    offline = ["testsrc2=size=64x48:rate=30:duration=0.2", "--format", "lavfi", "-o", str(tmp_path / "o.mp4")]
    assert main(offline) == 2 and "--model fast" in capsys.readouterr().err  # P3M-Net, whose weights are missing


def test_live_on_the_cpu_without_the_fast_model_keeps_p3m(seed32_ckpt, tmp_path, monkeypatch, capsys):
    """--model auto, live on the CPU, only P3M-Net installed: it runs, and says how to get real time."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no fast model in this cache
    monkeypatch.setenv("P3M_LIVE_WEIGHTS", str(seed32_ckpt))
    out = tmp_path / "live.mp4"
    argv = ["testsrc2=size=64x48:rate=30", "--format", "lavfi", "--live", "-o", str(out), "--duration", "1"]
    assert main([*argv, "--backend", "torch", "--model-size", "32"]) == 0
    err = capsys.readouterr().err
    assert "for real time, run: p3m-live weights fetch fast" in err and "model: fast" not in err
    assert len(probe(out)["times"]) >= 1


def test_a_lavfi_graph_without_realtime_is_paced_like_a_camera(seed32_ckpt, tmp_path, capsys):
    """A test source (no camera at hand) run live: played at its own rate, not decoded as
    fast as FFmpeg can make it, which would take a core from the matting."""
    out = tmp_path / "live.mp4"
    argv = ["testsrc2=size=64x48:rate=30", "--format", "lavfi", "--live", "-o", str(out), "--duration", "1.5"]
    assert main([*argv, "--weights", str(seed32_ckpt), "--model-size", "32", "--backend", "torch"]) == 0
    received = int(re.search(r"live: (\d+) frames in, ", capsys.readouterr().err).group(1))
    assert 30 <= received <= 50  # 1.5 s at 30 fps (unpaced: thousands)


def test_a_live_stream_that_ends_keeps_the_output_going(run, tmp_path, capsys):
    """A live source that is not a file (a camera, a stream, here a lavfi graph that stops
    after 0.5 s) is waited for, not the end of the run: privacy frames keep the virtual
    camera fed until it comes back or the user stops."""
    out = tmp_path / "live.mp4"
    src = "testsrc2=size=64x48:rate=30:duration=0.5"
    assert run(src, "--format", "lavfi", "--live", "-o", out, "--duration", "2", "--backend", "torch") == 0
    assert "the source ended: privacy frames until it is back" in capsys.readouterr().err
    # The source gave 15 frames; the rest are privacy frames (how many depends on how long the
    # first matte takes: none go out while the backend warms up, 0.5 s in a fresh process).
    assert len(probe(out)["times"]) > 20


def test_a_live_stream_whose_server_restarts_goes_on(run, tmp_path, capsys):
    """Through the command line: a camera-like source (lavfi, in real time) sent to
    -o tcp://... whose server resets the connection and is gone for half a second. The run
    goes on to its end with exit 0, reconnects, and the new connection gets a stream that
    decodes, starting on a keyframe."""
    import threading

    from tests.media import Receiver

    rx = Receiver()

    def restart() -> None:
        rx.wait_for(1, timeout=60)  # (the run starts slowly: the model loads first)
        rx.drop()
        time.sleep(0.5)
        rx.listen()

    server = threading.Thread(target=restart)
    server.start()
    source = ["testsrc2=size=96x64:rate=25,realtime", "--format", "lavfi", "--live", "--duration", "5"]
    assert run(*source, "-o", f"tcp://127.0.0.1:{rx.port}", "--model", "p3m", "--backend", "torch") == 0
    server.join()
    err = capsys.readouterr().err
    assert "the run goes on, and it is reopened every 2 s" in err and "sending again" in err
    assert len(rx.connections) == 2
    with av.open(io.BytesIO(bytes(rx.connections[1])), format="mpegts") as c:
        packets = [p for p in c.demux(video=0) if p.size]
    assert len(packets) >= 5 and packets[0].is_keyframe


def test_a_live_run_records_a_microphone_in_step_with_the_picture(run, tmp_path):
    """--audio puts a microphone's sound into a live run's -o (a camera has none). FFmpeg's
    lavfi sine, in real time, stands in for the microphone (--audio-format reads anything):
    the recording has the sound over the whole run, on the picture's clock."""
    out = tmp_path / "call.mkv"
    source = ["testsrc2=size=96x64:rate=25,realtime", "--format", "lavfi", "--live", "--duration", "3"]
    mic = ["--audio", "sine=frequency=440:sample_rate=16000,arealtime", "--audio-format", "lavfi"]
    assert run(*source, *mic, "-o", out, "--model", "p3m", "--backend", "torch") == 0
    with av.open(str(out)) as c:
        video = [f.time for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        sound = [(float(p.pts * p.time_base), float(p.duration * p.time_base)) for p in c.demux(audio=0) if p.size]
    heard = sum(d for _, d in sound)
    assert 2.5 < heard < 3.5  # the whole run, not a burst of it
    assert sound[0][0] < video[0] + 0.1 and video[-1] < sound[-1][0] + sound[-1][1] + 0.2  # the picture in the sound


@pytest.mark.parametrize("suffix, codec", [(".mp4", "aac"), (".mov", "pcm_s16le")])
def test_a_microphone_that_bursts_is_recorded(run, tmp_path, suffix, codec):
    """The README's `-o call.mp4 --audio`: a microphone whose first sound comes at once (a
    device's buffer read at once; here 0.3 s of lavfi's sine, then a paced one) got packets
    on one time, which MP4's and MOV's muxers refuse ("the mov muxer refused the source's
    streams"). Now the recording has its sound in order, in step: encoded as AAC for .mp4
    (whose players cannot play PCM), copied as it is into .mov."""
    out = tmp_path / f"call{suffix}"
    source = ["testsrc2=size=96x64:rate=25,realtime", "--format", "lavfi", "--live", "--duration", "2"]
    burst = "sine=f=440:r=16000:d=0.3[a];sine=f=440:r=16000,arealtime[b];[a][b]concat=n=2:v=0:a=1[out0]"
    mic = ["--audio", burst, "--audio-format", "lavfi"]
    assert run(*source, *mic, "-o", out, "--model", "p3m") == 0
    with av.open(str(out)) as c:
        sound = [(p.pts, p.duration) for p in c.demux(audio=0) if p.size]
        tb, got = c.streams.audio[0].time_base, c.streams.audio[0].codec_context.name
    assert got == codec
    assert all(b[0] >= a[0] + a[1] for a, b in zip(sound, sound[1:]))  # in order, none on another
    assert 1.0 < sum(d for _, d in sound) * tb < 2.6  # about the run's length, not the burst's


def test_microphone_errors_are_one_line(run, talk, tmp_path, capsys, monkeypatch):
    """--audio is for a live run's -o; a microphone that cannot be opened (ALSA here has no
    sound card at all: the real error) says how to name one."""
    assert run(talk, "-o", tmp_path / "a.mp4", "--audio") == 2
    assert "--audio records a microphone into a live run's -o" in capsys.readouterr().err
    monkeypatch.delenv("ALSA_CONFIG_PATH", raising=False)
    source = ["testsrc2=size=96x64:rate=25", "--format", "lavfi", "--live", "--duration", "1"]
    assert run(*source, "--audio", "p3m-no-such-card", "--audio-format", "alsa", "-o", tmp_path / "b.mkv") == 2
    err = capsys.readouterr().err
    assert "the microphone p3m-no-such-card (alsa) cannot be opened" in err and "arecord -l" in err
    assert not (tmp_path / "b.mkv").exists()


def test_a_broken_animated_webp_background_is_one_line_without_opencvs_own(talk, seed32_ckpt, tmp_path):
    """A real process: OpenCV logs its own "can't read header" lines to stderr when a
    WebP cannot be parsed; p3m-live silences them, and its own line says what is wrong."""
    from PIL import Image

    frames = [Image.fromarray(np.full((16, 16, 3), 50 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "sticker.webp", save_all=True, append_images=frames[1:], duration=100)
    cut = tmp_path / "cut.webp"
    cut.write_bytes((tmp_path / "sticker.webp").read_bytes()[:60])
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    cmd = [sys.executable, "-m", "p3m_live.cli", str(talk), "-o", str(tmp_path / "o.mp4"), "--background", str(cut),
           "--weights", str(seed32_ckpt), "--model-size", "32", "--backend", "torch", "-q"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"p3m-live: error: background {cut} cannot be read as an animated WebP; give {BACKGROUND_HELP}"
    ]


@pytest.mark.parametrize("call", [True, False])
def test_a_live_recording_is_outlived_only_by_a_call(tmp_path, call):
    """A live run's recording that fails stops alone where the run feeds a call (the virtual
    camera or the preview), and ends the run where the recording is all it makes."""
    from p3m_live.cli import _parse
    from p3m_live.run_cli import _sinks
    from p3m_live.video.sources import AVSource

    args = _parse(["--webcam", "testsrc2=size=64x48:rate=30", "--format", "lavfi", "-o", str(tmp_path / "rec.mkv")])
    args.preview = call  # (no display here to open one)
    src = AVSource("testsrc2=size=64x48:rate=30", format="lavfi", live=True)
    try:
        (relay,) = _sinks(args, src, src.layout, live=True)
        relay.close()
    finally:
        src.close()
    assert relay.outlived is call


def test_auto_foreground_estimates_over_a_new_background_only():
    """--foreground auto: the full estimate on GPUs; on CPUs the quick one over a new
    background (an image, a video, a colour, a transparent image's mix), and the frame's own
    colours over the blurred room; a choice given is kept."""
    from p3m_live.spec import foreground_for

    assert [foreground_for("auto", True, k) for k in ("image", "color", "blur", "mix")] == ["estimate"] * 4
    assert [foreground_for("auto", False, k) for k in ("image", "color", "blur", "mix")] == [
        "quick", "quick", "frame", "quick"
    ]  # fmt: skip
    assert foreground_for("estimate", False, "blur") == "estimate" and foreground_for("frame", True, "image") == "frame"
