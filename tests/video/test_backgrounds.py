"""--background parsing, cover scaling and looped video backgrounds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from p3m_live.errors import P3MError
from p3m_live.spec import rgb_to_planes
from p3m_live.video.backgrounds import BackgroundFeed, cover, parse_background
from tests.media import make_clip, make_hdr_clip


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


def test_cover_keeps_aspect_and_centres():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 255  # the middle half is white
    out = cover(img, 60, 60)
    assert out.shape == (60, 60, 3) and out.min() == 255  # a square crop of the centre: all white
    tall = cover(img, 20, 80)
    assert tall.shape == (80, 20, 3)


def test_unreadable_image_background(tmp_path):
    bad = tmp_path / "bg.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(P3MError, match="cannot be read as an image"):
        BackgroundFeed(parse_background(str(bad)), 32, 32)


def test_image_background_feeds_one_still(tmp_path, portrait_paths):
    feed = BackgroundFeed(parse_background(str(portrait_paths[0][0])), 64, 48)
    v = feed.value(4)
    assert v.shape == (48, 64, 3) and not feed.moving
    assert np.array_equal(v, feed.value(1))


def test_video_background_loops(tmp_path):
    clip = make_clip(tmp_path / "bg.mp4", frames=3, size=(48, 32), audio_rate=None)
    feed = BackgroundFeed(parse_background(str(clip)), 24, 16)
    assert feed.moving
    seq = [feed.value(1)[0] for _ in range(4)] + list(feed.value(3))
    assert all(f.shape == (16, 24, 3) for f in seq)
    assert np.array_equal(seq[0], seq[3]) and np.array_equal(seq[1], seq[4])  # frame 3 is frame 0 again
    assert not np.array_equal(seq[0], seq[1])


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
    planes = feed.value(2)
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
