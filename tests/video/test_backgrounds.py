"""--background parsing, scaling to the frame (cover and contain) and looped video backgrounds."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from p3m_live.errors import P3MError
from p3m_live.spec import rgb_to_planes
from p3m_live.video.backgrounds import (
    BackgroundFeed,
    fit_to_frame,
    is_animated_webp,
    parse_background,
    parse_backgrounds,
    read_webp_animation,
    settle_fit,
)
from tests.media import encode_all, make_clip, make_hdr_clip


@pytest.mark.parametrize(
    "text, kind, colour, strength",
    [
        ("#ff8000", "color", (255, 128, 0), 16),
        ("#0f0", "color", (0, 255, 0), 16),
        ("Green", "color", (0, 177, 64), 16),
        ("blur", "blur", (0, 0, 0), 16),
        ("blur:40", "blur", (0, 0, 0), 40),
        ("none", "none", (0, 0, 0), 16),
    ],
)
def test_parse(text, kind, colour, strength):
    c = parse_background(text)
    assert (c.kind, c.color, c.strength) == (kind, colour, strength)


@pytest.mark.parametrize("text", ["#12345", "blur:0", "blur:x", "beach.jpg", "chartreuse-ish"])
def test_parse_errors_name_the_choices(text):
    with pytest.raises(P3MError, match=r"blur|#RRGGBB"):
        parse_background(text)


def test_a_folder_is_every_image_and_video_in_it_in_name_order(tmp_path, caplog):
    """Natural order (2 before 10), videos and transparent images with the rest; notes,
    hidden files and a damaged image passed over, the damaged one in a warning."""
    folder = tmp_path / "backgrounds"
    folder.mkdir()
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4, :, 3] = 255
    cv2.imwrite(str(folder / "10-logo.png"), rgba)
    cv2.imwrite(str(folder / "2-office.jpg"), np.full((8, 8, 3), 90, np.uint8))
    make_clip(folder / "3-beach.mp4", frames=2, size=(16, 16), audio_rate=None)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("the blue one for Mondays")
    (folder / ".hidden.png").write_bytes((folder / "10-logo.png").read_bytes())
    (folder / "sub.png").mkdir()  # (a folder named like an image)
    with caplog.at_level("WARNING", logger="p3m_live"):
        choices = parse_backgrounds(str(folder), "contain")
    assert [(c.path.name, c.kind, c.transparent, c.fit) for c in choices] == [
        ("2-office.jpg", "image", True, "contain"),  # (contained: transparent margins)
        ("3-beach.mp4", "video", True, "contain"),
        ("10-logo.png", "image", True, "contain"),
    ]
    assert "broken.jpg is left out" in caplog.text and "notes" not in caplog.text
    assert [c.transparent for c in parse_backgrounds(str(folder))] == [False, False, True]
    assert parse_backgrounds("#102030") == [parse_background("#102030")]


def test_a_folder_with_no_background_in_it_is_one_line(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(P3MError, match="holds no image or video that can be read") as e:
        parse_backgrounds(str(tmp_path))
    assert "\n" not in str(e.value)


def test_cover_keeps_aspect_and_centres():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 255  # the middle half is white
    out = fit_to_frame(img, 60, 60)
    assert out.shape == (60, 60, 3) and out.min() == 255  # a square crop of the centre: all white
    tall = fit_to_frame(img, 20, 80)
    assert tall.shape == (80, 20, 3)


def test_unreadable_image_background(tmp_path):
    bad = tmp_path / "bg.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(P3MError, match="cannot be read as an image"):
        BackgroundFeed(parse_background(str(bad)), 32, 32)


def test_image_background_feeds_one_still(tmp_path, portrait_paths):
    feed = BackgroundFeed(parse_background(str(portrait_paths[0][0])), 64, 48)
    v = feed.value([0.0, 0.04, 0.08, 0.12])
    assert v.shape == (48, 64, 3) and not feed.moving
    assert np.array_equal(v, feed.value())


@pytest.mark.parametrize(
    "size, fit, sar, reduced",
    [
        ((320, 180), "cover", Fraction(1), 4),  # (1920x1080 scaled by 1/6)
        ((640, 360), "cover", Fraction(1), 2),
        ((160, 120), "contain", Fraction(1), 8),  # (scaled by 1/12 to fit inside)
        ((640, 480), "cover", Fraction(1), 2),  # (a 4:3 frame crops its sides: scaled by 4/9)
        ((1280, 960), "cover", Fraction(1), 1),  # (by 8/9: a half would be scaled up)
        ((320, 180), "cover", Fraction(1, 2), 2),  # (its pixels half as wide: twice as many across)
        ((320, 180), "cover", Fraction(2), 2),  # (twice as wide: height decides)
    ],
)
def test_a_large_jpeg_is_decoded_smaller_and_looks_as_when_decoded_whole(
    tmp_path, portrait_paths, monkeypatch, size, fit, sar, reduced
):
    """A JPEG background much larger than the frame is read at 1/2 to 1/8 of its size
    (libjpeg's scaled decode), as far as it is scaled down anyway and never so far that it
    would be scaled up: what the frame gets is the whole decode's picture within a few
    levels, the same size and fit, for every shape of frame and pixel."""
    photo = tmp_path / "photo.jpg"
    wide = next(img for img in (cv2.imread(str(p)) for p, _ in portrait_paths) if img.shape[:2] == (1080, 1920))
    cv2.imwrite(str(photo), wide, [cv2.IMWRITE_JPEG_QUALITY, 95])
    choice = parse_background(str(photo), fit)
    reads, imread = [], cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda path, flags: reads.append(flags) or imread(path, flags))
    feed = BackgroundFeed(choice, *size, sar=sar)
    monkeypatch.undo()
    assert reads == [getattr(cv2, f"IMREAD_REDUCED_COLOR_{reduced}") if reduced > 1 else cv2.IMREAD_COLOR]
    whole = fit_to_frame(cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB), *size, sar, fit)
    got = feed.value()
    assert got.shape == whole.shape
    diff = np.abs(got.astype(int) - whole.astype(int))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 12


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("size", [(1001, 777), (804, 801)], ids=["odd sides", "nearly square"])
def test_a_jpeg_background_is_checked_small_and_its_size_is_exact(tmp_path, orientation, size, monkeypatch):
    """A JPEG is checked at 1/8 of its size, its exact upright size from its header and the
    small picture's shape; one so nearly square that the small picture cannot say whether
    it is turned is read whole. Either way the facts are those of the whole picture."""
    from PIL import Image

    from p3m_live.video.frames import jpeg_size, read_rgb

    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    image = Image.fromarray(np.dstack([x % 256, y % 256, (x + y) % 256]).astype(np.uint8))
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    image.save(path, exif=exif, quality=90)
    assert jpeg_size(path) == size
    reads, imread = [], cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda p, flags: reads.append(flags) or imread(p, flags))
    choice = parse_background(str(path))
    monkeypatch.undo()
    assert choice.facts == (*read_rgb(path).shape[:2], False)
    assert reads[-1] == (cv2.IMREAD_REDUCED_COLOR_8 if size == (1001, 777) else cv2.IMREAD_COLOR)


def test_only_jpegs_have_a_jpeg_size(tmp_path):
    from p3m_live.video.frames import jpeg_size

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 6, 3), np.uint8))
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00")
    assert jpeg_size(tmp_path / "a.png") is None and jpeg_size(tmp_path / "cut.jpg") is None
    assert jpeg_size(tmp_path / "missing.jpg") is None


def test_a_reduced_read_keeps_exif_orientation_and_passes_over_pngs(tmp_path):
    """``read_rgb(reduce=k)``: a JPEG comes at 1/k of each side (rounded up), upright by its
    EXIF orientation as a whole read is; a PNG comes whole."""
    from PIL import Image

    from p3m_live.video.frames import read_rgb

    y, x = np.mgrid[0:60, 0:90]
    stored = np.dstack([x * 255 // 89, y * 255 // 59, np.full_like(x, 128)]).astype(
        np.uint8
    )  # (red across, green down)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # (turn 90 degrees clockwise to show)
    image.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    whole = read_rgb(tmp_path / "turned.jpg")
    assert whole.shape == (90, 60, 3)
    for k in (2, 4, 8):
        small = read_rgb(tmp_path / "turned.jpg", reduce=k)
        assert small.shape == (-(-90 // k), -(-60 // k), 3)
        scaled = cv2.resize(whole, small.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - scaled.astype(int)).mean() < 8  # (turned the other way: about 85 off)
    Image.fromarray(stored).save(tmp_path / "flat.png")
    assert read_rgb(tmp_path / "flat.png", reduce=4).shape == (60, 90, 3)


def test_video_background_loops(tmp_path):
    clip = make_clip(tmp_path / "bg.mp4", frames=3, size=(48, 32), audio_rate=None)
    feed = BackgroundFeed(parse_background(str(clip)), 24, 16)
    assert feed.moving
    seq = [feed.value()[0] for _ in range(4)] + list(feed.value([None] * 3))  # no times: a frame each
    assert all(f.shape == (16, 24, 3) for f in seq)
    assert np.array_equal(seq[0], seq[3]) and np.array_equal(seq[1], seq[4])  # frame 3 is frame 0 again
    assert not np.array_equal(seq[0], seq[1])


@pytest.mark.parametrize(("size", "matrix"), [((1280, 720), "bt709"), ((320, 240), "bt601")])
@pytest.mark.parametrize("tagged", [True, False])
def test_a_video_backgrounds_colours_are_read_as_players_read_them(tmp_path, size, matrix, tagged):
    """A video background coded in its size's usual matrix, tagged or not, shows its own
    colours: an untagged HD clip is BT.709, as players (and p3m-live's inputs) read it.
    (PyAV's own conversion took it as BT.601: a red came out 15 levels off.)"""
    from av.video.reformatter import ColorRange, Colorspace

    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2], rgb[:, w // 2 :] = (200, 40, 40), (40, 200, 60)
    space = {"bt709": Colorspace.ITU709, "bt601": Colorspace.ITU601}[matrix]
    with av.open(str(tmp_path / "bg.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if tagged:
            stream.codec_context.colorspace = {"bt709": 1, "bt601": 5}[matrix]
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=space, dst_color_range=ColorRange.MPEG
        )
        encode_all(out, stream, [frame, frame])
    feed = BackgroundFeed(parse_background(str(tmp_path / "bg.mp4")), w, h)
    try:
        shown = np.asarray(feed.value())[0]
    finally:
        feed.close()
    for x, want in ((w // 4, (200, 40, 40)), (3 * w // 4, (40, 200, 60))):
        assert np.abs(shown[h // 2, x].astype(int) - want).max() <= 3, x


def test_video_background_is_read_ahead_and_planes_are_made_there(tmp_path, portrait_paths):
    """For a planar graph the feed hands out I420 (the stream's matrix and range), made on its
    own thread ahead of time along with the decoding; peek stays RGB for privacy frames."""
    import time

    clip = make_clip(tmp_path / "bg.mp4", frames=12, size=(48, 32), audio_rate=None)
    feed = BackgroundFeed(parse_background(str(clip)), 24, 16, planes=("bt709", True))
    deadline = time.monotonic() + 5
    while feed._video._queue.qsize() < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feed._video._queue.qsize() >= 4  # decoded ahead, not at the call
    rgb = feed.peek()
    planes = feed.value([0.0, 0.04])
    assert rgb.shape == (16, 24, 3) and planes.shape == (2, 24, 24)
    assert np.array_equal(planes[0], rgb_to_planes(rgb[None], "bt709", True)[0])
    feed.close()
    assert not feed._video._thread.is_alive()
    still = BackgroundFeed(parse_background(str(portrait_paths[0][0])), 64, 48, planes=("bt601", False))
    assert np.array_equal(still.value(), rgb_to_planes(still.peek()[None])[0])


def test_hdr_video_background_is_tone_mapped(tmp_path):
    """An HLG clip as background comes out in SDR colours, as an HLG input does (not pale)."""
    from p3m_live.video import hdr

    grey = np.full((32, 48, 3), np.round(hdr.scene_to_hlg(1 / 12) * 65535), np.uint16)  # HLG 50%: 50 nits
    clip = make_hdr_clip(tmp_path / "bg.mkv", grey, frames=2)
    value = BackgroundFeed(parse_background(str(clip)), 48, 32).value()
    want = 255 * (50.6 / 203) ** (1 / 2.4)  # 50.6 nits is a quarter of reference white: below the roll-off
    assert abs(value[0].astype(float).mean() - want) < 3  # read as SDR it would be about 128


def test_colour_and_blur_values(tmp_path):
    assert BackgroundFeed(parse_background("#010203"), 8, 8).value() == (1, 2, 3)
    assert BackgroundFeed(parse_background("blur"), 8, 8).value() is None
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((4, 4, 3), np.uint8))
    assert parse_background(str(tmp_path / "x.png")).kind == "image"


def _levels_clip(path, frames: int, rate: int, step: int = 20):
    """A lossless clip whose frame i is flat grey at level 10 + step * i, to tell its frames apart."""
    import av

    from tests.media import encode_all

    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=rate)
        v.width, v.height, v.pix_fmt = 32, 16, "yuv444p"
        pictures = []
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 10 + step * i, np.uint8), format="rgb24")
            f.pts = i
            pictures.append(f)
        encode_all(out, v, pictures)
    return path


def _index(value) -> int:
    return round((float(value.mean()) - 10) / 20)


def test_a_video_background_plays_at_its_own_speed(tmp_path):
    """A 10 fps background behind 25 fps frames: each of its frames shows for 2.5 frames, by
    the frames' times, and it loops after its last frame's time plus a frame (0.5 s)."""
    feed = BackgroundFeed(parse_background(str(_levels_clip(tmp_path / "bg.mkv", 5, 10))), 32, 16)
    times = [i / 25 for i in range(30)]
    shown = [_index(feed.value([t])[0]) for t in times]
    assert shown == [int(t * 10 + 1e-6) % 5 for t in times]
    feed.close()


def test_a_clock_that_jumps_moves_the_background_one_frame(tmp_path):
    """A time that goes back (a new source) or jumps far ahead (a reopened stream) moves the
    background on by one frame and restarts its clock there: no seconds of decoding to catch up."""
    feed = BackgroundFeed(parse_background(str(_levels_clip(tmp_path / "bg.mkv", 5, 10))), 32, 16)
    shown = [_index(feed.value([t])[0]) for t in (0.0, 0.04, 30.0, 30.04, 30.1, 0.0, None, None)]
    assert shown == [0, 0, 1, 1, 2, 3, 4, 0]
    feed.close()


def test_a_batch_takes_each_frame_its_own_background(tmp_path):
    feed = BackgroundFeed(parse_background(str(_levels_clip(tmp_path / "bg.mkv", 5, 10))), 32, 16)
    assert [_index(v) for v in feed.value([0.0, 0.1, 0.2, 0.2])] == [0, 1, 2, 2]  # padding repeats a time
    feed.close()


def test_a_phone_video_background_is_turned_upright(tmp_path):
    """A clip recorded on its side with a display rotation (phones) is used upright, as inputs are."""
    import av

    clip = make_clip(tmp_path / "phone.mp4", frames=2, size=(48, 32), rotation=-90, audio_rate=None)
    with av.open(str(clip)) as c:
        frame = next(c.decode(video=0))
        upright = np.rot90(frame.to_ndarray(format="rgb24"), round(frame.rotation / 90) % 4)
    feed = BackgroundFeed(parse_background(str(clip)), 32, 48)
    assert np.array_equal(feed.peek(), upright)
    feed.close()


def test_a_heic_photo_as_background(tmp_path):
    from tests.media import shapes_frame, write_heic

    picture = shapes_frame(1, 64, 48)
    feed = BackgroundFeed(parse_background(str(write_heic(tmp_path / "beach.heic", picture))), 64, 48)
    assert feed.choice.kind == "image" and np.abs(feed.value().astype(int) - picture).mean() < 3


@pytest.mark.parametrize("rate, made", [(50, 0.5), (10, 1.0)])
def test_only_the_background_frames_shown_are_made(tmp_path, rate, made):
    """A 50 fps background behind 25 fps frames: the feed's thread makes (scales, converts)
    only the half of its frames that the frames' clock shows, from where the clock is and its
    step, and the matting thread has none to make itself after the first frames. A background
    slower than the frames has every frame made ahead. Either way the frames shown are the
    ones for each frame's time."""
    n = 20
    clip = _levels_clip(tmp_path / "bg.mkv", n, rate, step=12)
    feed = BackgroundFeed(parse_background(str(clip)), 32, 16, planes=("bt601", False))
    times = [i / 25 for i in range(50)]
    levels = [(float(feed.value([t])[0][:16].mean()) - 16) * 255 / 219 for t in times]  # limited-range luma
    shown = [round((v - 10) / 12) for v in levels]
    feed.close()
    assert shown == [int(t * rate + 1e-6) % n for t in times]
    assert feed.made_late <= 2  # before the first two times set the clock's step
    assert feed.made_ahead / feed.decoded == pytest.approx(made, abs=0.1)


def test_a_background_is_squeezed_as_anamorphic_pixels_are():
    """Behind frames whose pixels are 4/3 as wide as high, a round disc must be 3/4 as wide
    as high in pixels, to show round."""
    image = np.zeros((300, 400, 3), np.uint8)
    cv2.circle(image, (200, 150), 60, (255, 255, 255), -1)

    def disc(pixels):
        ys, xs = np.nonzero(pixels[..., 0] > 127)
        return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)

    assert disc(fit_to_frame(image, 144, 108)) == pytest.approx(1.0, abs=0.05)
    assert disc(fit_to_frame(image, 144, 108, Fraction(4, 3))) == pytest.approx(0.75, abs=0.05)


def test_a_turned_frame_turns_its_pixel_shape():
    from p3m_live.video.frames import layout_of

    frame = av.VideoFrame(96, 64, "yuv420p")
    assert layout_of(frame, 0, Fraction(64, 45)).sar == Fraction(64, 45)
    assert layout_of(frame, 90, Fraction(64, 45)).sar == Fraction(45, 64)  # a phone's portrait clip
    assert layout_of(frame, 0, None).sar == 1


def _logo(path, size=(30, 20), exif_orientation=None):
    """A logo as editors make them: a red square, opaque, on pixels that are transparent
    and (as many exporters leave them) green underneath."""
    from PIL import Image

    w, h = size
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[...] = (0, 255, 0, 0)
    rgba[h // 10 : h // 10 + h // 2, w // 10 : w // 10 + w // 3] = (255, 0, 0, 255)  # (off centre)
    image = Image.fromarray(rgba)
    if exif_orientation is None:
        image.save(path)
    else:
        exif = image.getexif()
        exif[0x0112] = exif_orientation
        image.save(path, exif=exif)
    return rgba


def test_a_transparent_image_is_read_with_its_alpha_and_runs_on_the_mix_graph(tmp_path):
    import pillow_heif
    from PIL import Image

    from p3m_live.video.frames import read_rgb

    rgba = _logo(tmp_path / "logo.png")
    Image.fromarray(rgba[..., [0, 3]].copy(), "LA").save(tmp_path / "grey.png")  # grey with alpha
    Image.fromarray(rgba).save(tmp_path / "logo.webp", lossless=True)
    Image.fromarray(rgba).save(tmp_path / "logo.tif")
    pillow_heif.from_pillow(Image.fromarray(rgba)).save(tmp_path / "logo.heic", quality=-1)  # (lossless)
    opaque = rgba.copy()
    opaque[..., 3] = 255
    Image.fromarray(opaque).save(tmp_path / "opaque.png")  # an alpha plane with nothing transparent
    seen = rgba[..., 3] > 0
    for name in ("logo.png", "logo.webp", "logo.tif", "logo.heic"):  # (WebP keeps no colour under transparency)
        back = read_rgb(tmp_path / name, alpha=True)
        assert np.array_equal(back[..., 3], rgba[..., 3]), name
        assert name == "logo.heic" or np.array_equal(back[seen], rgba[seen])  # (HEIC's colours are 4:2:0)
        choice = parse_background(str(tmp_path / name))
        assert choice.transparent and choice.graph_kind == "mix" and choice.kind == "image"
    grey = read_rgb(tmp_path / "grey.png", alpha=True)
    assert grey.shape == (20, 30, 4) and np.array_equal(grey[..., 3], rgba[..., 3])
    assert read_rgb(tmp_path / "logo.png").shape == (20, 30, 3)  # (inputs: the picture alone)
    assert read_rgb(tmp_path / "opaque.png", alpha=True).shape == (20, 30, 3)
    assert parse_background(str(tmp_path / "opaque.png")).graph_kind == "image"


def test_only_images_that_can_be_transparent_are_decoded_for_their_alpha(tmp_path):
    """The header says which need OpenCV's second decode (alpha): not a JPEG, nor a PNG with
    no alpha channel and no tRNS chunk; a palette or RGB PNG with tRNS does, and keeps it."""
    from PIL import Image

    from p3m_live.video.frames import may_be_transparent, read_rgb

    rgba = _logo(tmp_path / "logo.png")
    rgb = np.ascontiguousarray(rgba[..., :3])
    Image.fromarray(rgb).save(tmp_path / "photo.jpg")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).save(tmp_path / "keyed.png", transparency=(0, 255, 0))  # (tRNS: a colour key)
    palette = Image.fromarray(rgb).quantize(8)
    palette.save(tmp_path / "palette.png")
    palette.save(tmp_path / "palette_keyed.png", transparency=int(np.asarray(palette)[0, 0]))
    Image.fromarray(rgba).save(tmp_path / "logo.webp", lossless=True)
    decoded = {p.name: may_be_transparent(p) for p in sorted(tmp_path.iterdir())}
    assert decoded == {
        "keyed.png": True,
        "logo.png": True,
        "logo.webp": True,
        "palette.png": False,
        "palette_keyed.png": True,
        "photo.jpg": False,
        "rgb.png": False,
    }
    # WebP's header says it too (lossy, lossless, extended): as OpenCV's own decode finds.
    webps = tmp_path / "webp"
    webps.mkdir()
    for name, pixels, lossless in [("lossy", rgb, False), ("lossy_alpha", rgba, False), ("lossless", rgb, True),
                                   ("lossless_alpha", rgba, True)]:  # fmt: skip
        Image.fromarray(pixels).save(webps / f"{name}.webp", lossless=lossless)
    exif = Image.Exif()
    exif[0x0112] = 1  # (an orientation tag: the extended VP8X header, without alpha)
    Image.fromarray(rgb).save(webps / "extended.webp", exif=exif.tobytes())
    with_alpha = {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape[2] == 4 for p in webps.iterdir()}
    assert {p.name: may_be_transparent(p) for p in webps.iterdir()} == with_alpha
    assert sorted(k for k, v in with_alpha.items() if v) == ["lossless_alpha.webp", "lossy_alpha.webp"]
    assert read_rgb(webps / "lossy_alpha.webp", alpha=True).shape[2] == 4
    assert may_be_transparent(tmp_path / "missing.png")  # (the decode says why it cannot be read)
    for name in ("keyed.png", "palette_keyed.png"):  # the corner pixel's colour is the key
        back = read_rgb(tmp_path / name, alpha=True)
        assert back.shape[2] == 4 and back[0, 0, 3] == 0 and back[..., 3].max() == 255, name


def test_an_image_that_may_be_transparent_is_decoded_once_where_it_cannot_be_turned(tmp_path, monkeypatch):
    """A PNG or WebP with an alpha channel and no EXIF (a screenshot, a logo) is decoded
    once, as stored, and comes out as the colour read and the alpha read together gave it:
    RGBA where some of it is transparent, RGB where none is; 16-bit and grey ones too. One
    with EXIF is decoded twice, its alpha turned to match (the test below)."""
    from PIL import Image

    from p3m_live.video.frames import may_be_turned, read_rgb

    rgba = _logo(tmp_path / "logo.png")
    opaque = rgba.copy()
    opaque[..., 3] = 255
    Image.fromarray(opaque).save(tmp_path / "shot.png")  # (an alpha channel with nothing transparent in it)
    Image.fromarray(rgba).save(tmp_path / "logo.webp", lossless=True)
    Image.fromarray(np.dstack([rgba[..., 0], rgba[..., 3]]), "LA").save(tmp_path / "grey.png")
    deep = (rgba.astype(np.uint16) * 257)[..., [2, 1, 0, 3]]  # (BGRA, 16 bits: as OpenCV writes it)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    _logo(tmp_path / "turned.png", exif_orientation=6)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgba).save(tmp_path / "turned.webp", lossless=True, exif=exif.tobytes())
    Image.fromarray(rgba[..., :3]).save(tmp_path / "plain.bmp")
    turned = {p.name: may_be_turned(p) for p in sorted(tmp_path.iterdir())}
    assert turned == {
        "deep.png": False, "grey.png": False, "logo.png": False, "logo.webp": False, "plain.bmp": True,
        "shot.png": False, "turned.png": True, "turned.webp": True,
    }  # fmt: skip
    reads = []
    imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda *a: reads.append(a[0]) or imread(*a))  # (the real decode, counted)
    for name in ("logo.png", "shot.png", "logo.webp", "grey.png", "deep.png"):
        reads.clear()
        got = read_rgb(tmp_path / name, alpha=True)
        assert len(reads) == 1, name
        colours = imread(str(tmp_path / name), cv2.IMREAD_COLOR)[..., ::-1]
        alpha = rgba[..., 3] if name != "shot.png" else None
        assert got.shape[2] == (3 if alpha is None else 4), name
        assert np.abs(got[..., :3].astype(int) - colours).max() <= 1, name  # (16 bits: rounded, not cut, to 8)
        if alpha is not None:
            assert np.array_equal(got[..., 3], alpha), name
    reads.clear()
    assert read_rgb(tmp_path / "turned.png", alpha=True).shape[2] == 4 and len(reads) == 2


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_transparent_images_alpha_is_turned_with_its_exif_orientation(tmp_path, orientation):
    """OpenCV turns colours upright by EXIF but reads alpha only as stored: the alpha must
    turn the same way, or a logo would be cut out in the wrong place."""
    from p3m_live.video.frames import read_rgb

    stored = _logo(tmp_path / "turned.png", exif_orientation=orientation)[..., 3]
    upright = {3: stored[::-1, ::-1], 6: np.rot90(stored, -1), 8: np.rot90(stored, 1)}[orientation]
    rgba = read_rgb(tmp_path / "turned.png", alpha=True)
    red = np.all(rgba[..., :3] == (255, 0, 0), axis=-1)
    assert np.array_equal(red, upright == 255)  # (the colours upright, as OpenCV turns them)
    assert np.array_equal(rgba[..., 3], upright)


def test_a_transparent_image_is_scaled_without_the_colour_under_its_transparency():
    """Scaled premultiplied: the square's edges, half covered, are red with half alpha, not
    red mixed with the green that was under the transparent pixels."""
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[...] = (0, 255, 0, 0)
    rgba[5:15, 9:21] = (255, 0, 0, 255)
    for size in ((45, 30), (15, 10)):  # up and down
        out = fit_to_frame(rgba, *size)
        seen = out[..., 3] > 0
        assert out.shape == (size[1], size[0], 4) and (out[..., 3] < 255).any() and (out[..., 3][seen] > 0).all()
        assert np.abs(out[seen][:, :3].astype(int) - (255, 0, 0)).max() <= 1, size


def test_a_transparent_image_feeds_its_alpha_after_its_planes(tmp_path):
    rgba = _logo(tmp_path / "logo.png", size=(96, 64))
    feed = BackgroundFeed(parse_background(str(tmp_path / "logo.png")), 96, 64, ("bt601", False))
    value, shown = feed.value(), feed.peek()  # (privacy frames put it over the blur themselves)
    seen = rgba[..., 3] > 0
    assert np.array_equal(shown[..., 3], rgba[..., 3]) and np.array_equal(shown[seen], rgba[seen])
    assert value.shape == (96 + 64, 96) and np.array_equal(value[96:], rgba[..., 3])
    assert np.array_equal(value[:96], rgb_to_planes(shown[None, ..., :3], "bt601", False)[0])
    rgb_feed = BackgroundFeed(parse_background(str(tmp_path / "logo.png")), 96, 64)
    assert np.array_equal(rgb_feed.value(), shown)


def _overlay_video(path, codec, pix_fmt, frames=5, opaque=False):
    """A 10 fps overlay whose opaque part grows by 4 columns a frame (a wipe), red."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = 48, 32, pix_fmt
        video = []
        for i in range(frames):
            rgba = np.zeros((32, 48, 4), np.uint8)
            rgba[..., 0], rgba[:, : 16 + 4 * i, 3] = 200, 255
            if opaque:
                rgba[..., 3] = 255
            video.append(av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format=pix_fmt))
            video[-1].pts = i
        encode_all(c, s, video)
    return path


@pytest.mark.parametrize(
    "name, codec, pix_fmt",
    [
        ("wipe.webm", "libvpx-vp9", "yuva420p"),
        ("wipe.mov", "prores_ks", "yuva444p10le"),
        ("wipe.mkv", "ffv1", "bgra"),
        ("wipe-qtrle.mov", "qtrle", "argb"),
    ],
)
def test_a_video_with_alpha_moves_its_transparency_over_the_blur(tmp_path, name, codec, pix_fmt):
    """VP9 with alpha (read with libvpx, since FFmpeg's own VP9 decoder drops it), ProRes
    4444 and FFV1: each frame's alpha goes to the mix graph, as the video plays."""
    video = _overlay_video(tmp_path / name, codec, pix_fmt)
    choice = parse_background(str(video))
    assert choice.kind == "video" and choice.transparent and choice.graph_kind == "mix"
    feed = BackgroundFeed(choice, 48, 32, ("bt601", False))
    values = feed.value([0.0, 0.1, 0.2])
    assert values.shape == (3, 48 + 32, 48)
    opaque_columns = [(v[48:] > 127).all(axis=0).sum() for v in values]
    assert [abs(n - want) <= 1 for n, want in zip(opaque_columns, (16, 20, 24))] == [True] * 3
    assert feed.peek().shape == (32, 48, 4)
    feed.close()


def test_a_video_that_could_hold_alpha_but_is_opaque_is_an_ordinary_video(tmp_path):
    video = _overlay_video(tmp_path / "opaque.mov", "prores_ks", "yuva444p10le", opaque=True)
    assert not parse_background(str(video)).transparent
    assert parse_background(str(make_clip(tmp_path / "plain.mp4", frames=2, audio_rate=None))).graph_kind == "image"


@pytest.mark.parametrize("name", ["sticker.gif", "sticker.png", "sticker.webp"])  # GIF, APNG, animated WebP
def test_an_animated_sticker_with_transparency_is_a_transparent_video(tmp_path, name):
    from PIL import Image

    frames = []
    for i in range(3):
        rgba = np.zeros((32, 48, 4), np.uint8)
        rgba[:, : 16 + 8 * i] = (200, 0, 0, 255)
        frames.append(Image.fromarray(rgba))
    options = {".gif": {"disposal": 2}, ".webp": {"lossless": True}}.get(Path(name).suffix, {})  # (GIF frames whole)
    frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], duration=100, **options)
    frames[0].save(tmp_path / "still.png")
    choice = parse_background(str(tmp_path / name))
    assert choice.kind == "video" and choice.transparent
    assert parse_background(str(tmp_path / "still.png")).kind == "image"
    feed = BackgroundFeed(choice, 48, 32)
    alphas = [v[..., 3] for v in feed.value([0.0, 0.1, 0.2])]  # (as the frames' clock asks)
    assert [int((a == 255).all(axis=0).sum()) for a in alphas] == [16, 24, 32]
    feed.close()


def test_an_animated_webp_marked_opaque_shows_its_bare_canvas_transparent(tmp_path):
    """A sticker whose drawn parts are all opaque: WebP's encoder crops the transparent
    margins off its frames and marks the file opaque, and decoders fill what no frame
    covers with black. Where the frames leave the canvas bare, it is transparent, as in a
    browser; where they draw, it is opaque; and such a file is a transparent background."""
    from PIL import Image

    frames = []
    for i in range(3):
        rgba = np.zeros((32, 48, 4), np.uint8)
        rgba[8:24, 8 + 8 * i : 24 + 8 * i] = (200, 0, 0, 255)  # a square moving right
        frames.append(Image.fromarray(rgba))
    path = tmp_path / "sticker.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    assert not path.read_bytes()[20] & 0x10  # (the premise: no alpha in the file's flags)
    got = read_webp_animation(path)
    assert len(got) == 3
    for i, (image, _) in enumerate(got):
        assert image.shape == (32, 48, 4)
        assert np.array_equal(image[..., 3], np.asarray(frames[i])[..., 3]), i
        assert (image[8:24, 8 + 8 * i : 24 + 8 * i, :3] == (200, 0, 0)).all()
    choice = parse_background(str(path))
    assert choice.transparent and choice.graph_kind == "mix"
    opaque = _webp(tmp_path / "opaque.webp", [100, 100], alpha=False)  # (frames that cover it all stay RGB)
    assert [f.shape for f, _ in read_webp_animation(opaque)] == [(32, 48, 3)] * 2


def _webp(path, durations, alpha):
    """An animated WebP (lossless) whose frame i is red 60 * (i + 1), with a transparent
    left half where ``alpha``."""
    from PIL import Image

    frames = []
    for i in range(len(durations)):
        rgba = np.zeros((32, 48, 4), np.uint8)
        rgba[...] = (60 * (i + 1), 10, 0, 255)
        if alpha:
            rgba[:, :24, 3] = 0
        frames.append(Image.fromarray(rgba if alpha else rgba[..., :3]))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, lossless=True)
    return path


def test_an_animated_webp_plays_each_frame_for_its_own_duration_and_loops(tmp_path):
    """FFmpeg cannot decode animated WebP; OpenCV does. Frames of 100, 200 and 50 ms: the
    frames' clock sees the second one twice, then the third, then the first again."""
    choice = parse_background(str(_webp(tmp_path / "opaque.webp", [100, 200, 50], alpha=False)))
    assert choice.kind == "video" and not choice.transparent and choice.graph_kind == "image"
    feed = BackgroundFeed(choice, 48, 32)
    values = feed.value([0.0, 0.1, 0.2, 0.3, 0.35, 0.45])
    assert values.shape == (6, 32, 48, 3)
    assert [tuple(v[0, 0]) for v in values] == [(n, 10, 0) for n in (60, 120, 120, 180, 60, 120)]
    feed.close()
    still = tmp_path / "still.webp"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(still)
    assert not is_animated_webp(still) and parse_background(str(still)).kind == "image"


def test_an_animated_webp_with_alpha_is_transparent_and_one_too_big_to_hold_is_refused(tmp_path):
    path = _webp(tmp_path / "sticker.webp", [100, 100], alpha=True)
    choice = parse_background(str(path))
    assert choice.kind == "video" and choice.transparent
    assert [(f.shape, d) for f, d in read_webp_animation(path)] == [((32, 48, 4), 0.1)] * 2
    with pytest.raises(P3MError, match=r"animation of 2 frames of 48x32, too big to hold decoded"):
        read_webp_animation(path, limit=2 * 48 * 32 * 4 - 1)


def test_contain_fits_the_whole_image_inside_the_frame_with_transparent_margins():
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[..., 0], wide[:, 30:, 1] = 200, 100  # (red; its right half yellowish)
    out = fit_to_frame(wide, 30, 30, fit="contain")  # 60x20 into 30x30: 30x10, centred
    assert out.shape == (30, 30, 4)
    assert (out[:10, :, 3] == 0).all() and (out[20:, :, 3] == 0).all() and (out[10:20, :, 3] == 255).all()
    assert np.array_equal(out[10:20, :, :3], cv2.resize(wide, (30, 10), interpolation=cv2.INTER_AREA))
    tall = fit_to_frame(wide.swapaxes(0, 1), 30, 30, fit="contain")  # 20x60: margins left and right
    assert (tall[:, :10, 3] == 0).all() and (tall[:, 20:, 3] == 0).all() and (tall[:, 10:20, 3] == 255).all()
    same_shape = fit_to_frame(wide, 90, 30, fit="contain")
    assert (same_shape[..., 3] == 255).all() and np.array_equal(same_shape[..., :3], fit_to_frame(wide, 90, 30))
    squeezed = fit_to_frame(wide, 30, 30, Fraction(2), fit="contain")  # pixels twice as wide: 60x20 shows as 30x20
    assert (squeezed[:5, :, 3] == 0).all() and (squeezed[5:25, :, 3] == 255).all()


def test_contain_keeps_a_transparent_images_own_transparency_and_clean_edges():
    rgba = np.zeros((20, 60, 4), np.uint8)
    rgba[...] = (0, 255, 0, 0)
    rgba[5:15, 10:50] = (255, 0, 0, 255)
    out = fit_to_frame(rgba, 30, 30, fit="contain")
    seen = out[..., 3] > 0
    assert (out[:10, :, 3] == 0).all() and not seen[10:20].all() and seen[10:20].any()
    assert np.abs(out[seen][:, :3].astype(int) - (255, 0, 0)).max() <= 1  # (no green bled in)


def test_a_contained_image_or_video_runs_as_a_transparent_one(tmp_path):
    photo = tmp_path / "beach.jpg"
    cv2.imwrite(str(photo), np.full((20, 60, 3), 90, np.uint8))
    clip = make_clip(tmp_path / "clip.mp4", frames=3, audio_rate=None)  # 96x64
    for path in (photo, clip):
        assert not parse_background(str(path)).transparent
        choice = parse_background(str(path), fit="contain")
        assert choice.transparent and choice.graph_kind == "mix" and choice.fit == "contain"
    feed = BackgroundFeed(parse_background(str(clip), fit="contain"), 96, 96, ("bt601", False))
    values = feed.value([0.0, 0.04])  # 96x64 inside 96x96: margins of 16 rows
    assert values.shape == (2, 144 + 96, 96)  # (the I420 planes, then the weight)
    weight = values[:, 144:]
    assert (weight[:, :16] == 0).all() and (weight[:, 16:80] == 255).all() and (weight[:, 80:] == 0).all()
    assert feed.peek().shape == (96, 96, 4)
    feed.close()
    assert str(parse_background(str(photo), fit="contain")) == "image beach.jpg (contained)"


def test_a_contained_background_of_the_frames_shape_is_a_covering_one(tmp_path):
    """Once the frame size is known: no margins, so no mix graph; transparent only if the
    background is itself. Pixels twice as wide and a phone clip's rotation count."""
    from PIL import Image

    photo, logo = tmp_path / "beach.jpg", tmp_path / "logo.png"
    cv2.imwrite(str(photo), np.full((20, 60, 3), 90, np.uint8))
    rgba = np.full((20, 60, 4), 200, np.uint8)
    rgba[:, :10, 3] = 0
    Image.fromarray(rgba).save(logo)
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio_rate=None)  # 96x64
    turned = make_clip(tmp_path / "turned.mp4", frames=2, audio_rate=None, rotation=90)  # shows 64x96
    fills = [(photo, 90, 30, 1), (photo, 45, 30, 2), (logo, 90, 30, 1), (clip, 96, 64, 1), (turned, 64, 96, 1)]
    for path, w, h, sar in fills:
        settled = settle_fit(parse_background(str(path), fit="contain"), w, h, Fraction(sar))
        assert settled.fit == "cover" and settled.transparent == (path == logo), (path.name, w, h)
        assert settled.graph_kind == ("mix" if path == logo else "image")
    for path, w, h in [(photo, 30, 30), (clip, 96, 96), (turned, 96, 64)]:  # margins: still contained
        choice = parse_background(str(path), fit="contain")
        assert settle_fit(choice, w, h) is choice
    for choice in (parse_background(str(photo)), parse_background("blur"), parse_background("#00ff00")):
        assert settle_fit(choice, 90, 30) is choice
    # An image's shape was read as it was checked: settling needs no second decode of it.
    choices = [parse_background(str(p), fit="contain") for p in (photo, logo)]
    photo.unlink()
    logo.unlink()
    assert [(c.facts, settle_fit(c, 90, 30).graph_kind) for c in choices] == [
        ((20, 60, False), "image"),
        ((20, 60, True), "mix"),
    ]


def _pq_clip(path, alpha):
    """A two-frame FFV1 HDR clip (PQ, BT.2020), 4:4:4 10-bit: orange, its right half
    bright blue; with ``alpha``, its left half transparent."""
    from av.video.reformatter import ColorRange, Colorspace

    rgb = np.zeros((32, 48, 3), np.uint16)
    rgb[...] = (40000, 20000, 0)
    rgb[:, 24:, 2] = 52000
    pix_fmt = "yuva444p10le" if alpha else "yuv444p10le"
    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = 48, 32, pix_fmt
        v.codec_context.color_trc, v.codec_context.color_primaries = 16, 9
        v.codec_context.colorspace, v.codec_context.color_range = 9, 1
        a = np.full((32, 48, 1), 65535, np.uint16)
        a[:, :24] = 0
        picture = av.VideoFrame.from_ndarray(*((np.dstack([rgb, a]), "rgba64le") if alpha else (rgb, "rgb48le")))
        yuv = {"format": pix_fmt, "dst_colorspace": Colorspace.BT2020, "dst_color_range": ColorRange.MPEG}
        video = [picture.reformat(**yuv), picture.reformat(**yuv)]
        video[1].pts = 1
        encode_all(out, v, video)
    return path


def test_an_hdr_overlay_with_alpha_is_tone_mapped_as_an_opaque_hdr_video_is_and_keeps_its_alpha(tmp_path):
    overlay = parse_background(str(_pq_clip(tmp_path / "overlay.mkv", alpha=True)))
    opaque = parse_background(str(_pq_clip(tmp_path / "opaque.mkv", alpha=False)))
    assert overlay.transparent and not opaque.transparent
    feeds = [BackgroundFeed(c, 48, 32) for c in (overlay, opaque)]
    rgba, rgb = (f.peek() for f in feeds)
    assert rgba.shape == (32, 48, 4) and (rgba[:, :24, 3] == 0).all() and (rgba[:, 24:, 3] == 255).all()
    assert np.abs(rgba[:, 26:, :3].astype(int) - rgb[:, 26:]).max() <= 1  # (clear of the alpha's edge)
    with av.open(str(tmp_path / "opaque.mkv")) as c:
        untouched = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(rgb[:, 26:].astype(int) - untouched[:, 26:]).max() > 30  # (the tone mapping did something)
    for f in feeds:
        f.close()
