"""--auto-frame: the window that follows the person, its smoothing, and the crop it makes."""

from __future__ import annotations

import math

import av
import cv2
import numpy as np
import pytest

from p3m_live.cli import main
from p3m_live.framing import AutoFrame, Window

W, H = 320, 180


def person(x0: float, x1: float, y0: float, y1: float = 1.0) -> np.ndarray:
    """An alpha with a solid "person" over that part of the frame (fractions of its sides)."""
    alpha = np.zeros((H, W), np.uint8)
    alpha[round(y0 * H) : round(y1 * H), round(x0 * W) : round(x1 * W)] = 255
    return alpha


def covers(window: Window, alpha: np.ndarray, framer: AutoFrame) -> bool:
    x, y, w, h = framer.box(window)
    return alpha[y : y + h, x : x + w].sum() == alpha.sum()


def near(a: Window, b: Window, tol: float) -> bool:
    return max(abs(a.cx - b.cx), abs(a.cy - b.cy), abs(a.h - b.h)) <= tol


def test_the_window_holds_the_person_in_the_frames_aspect():
    framer = AutoFrame(W, H, max_zoom=4)
    alpha = person(0.1, 0.25, 0.5)  # a small figure, low on the left
    goal = framer.target(alpha)
    x, y, w, h = framer.box(goal)
    assert covers(goal, alpha, framer) and h < 0.7 * H  # zoomed in on it (half the height, with margins)
    assert abs(w / h - W / H) < 0.05 and 0 <= x and x + w <= W and 0 <= y and y + h <= H
    assert abs(goal.cx - 0.175 * W) < 0.05 * W or x == 0  # centred on the figure, or against the edge
    assert goal.h >= H / 4  # never more than max_zoom


def test_without_a_person_or_with_specks_the_whole_frame_shows():
    framer = AutoFrame(W, H)
    assert framer.target(np.zeros((H, W), np.uint8)) == framer.whole
    specks = np.zeros((H, W), np.uint8)
    specks[10:14, 10:14] = specks[150:154, 300:304] = 255  # under 1% of the frame
    assert framer.target(specks) == framer.whole


def test_a_stray_blob_far_from_the_person_does_not_widen_the_window():
    framer = AutoFrame(W, H, max_zoom=4)
    alone = person(0.4, 0.55, 0.4)
    blob = alone.copy()
    blob[2:5, 300:303] = 255  # a few wrong pixels in a corner
    assert near(framer.target(blob), framer.target(alone), 0.02 * H)


def test_the_window_glides_on_the_frames_times():
    """An exponential approach with time constant tau on the frames' own times: the first
    frame (no time before it) counts as 1/30 s, the next 0.5 s later as 0.5 s."""
    framer = AutoFrame(W, H, max_zoom=4, tau=0.5)
    alpha = person(0.1, 0.25, 0.5)
    goal, whole = framer.target(alpha), framer.whole
    framer.step(alpha, 10.0)
    moved = framer.step(alpha, 10.5)
    share = 1 - math.exp(-1 / 15) * math.exp(-1)
    assert moved.cx == pytest.approx(whole.cx + share * (goal.cx - whole.cx))
    assert moved.h == pytest.approx(whole.h + share * (goal.h - whole.h))
    for t in np.arange(11, 15, 0.04):
        settled = framer.step(alpha, float(t))
    assert near(settled, goal, 0.05)


def test_small_moves_stay_inside_the_deadband():
    framer = AutoFrame(W, H, max_zoom=4, deadband=0.06)
    t = 0.0
    for _ in range(200):
        framer.step(person(0.3, 0.45, 0.5), t := t + 0.04)
    still = framer.window
    for _ in range(50):  # a shift of 3% of the frame height: the picture holds still
        framer.step(person(0.3 + 0.03 * H / W, 0.45 + 0.03 * H / W, 0.5), t := t + 0.04)
    assert near(framer.window, still, 1e-3)
    for _ in range(50):  # 15%: it follows
        framer.step(person(0.3 + 0.15 * H / W, 0.45 + 0.15 * H / W, 0.5), t := t + 0.04)
    assert framer.window.cx > still.cx + 0.1 * H


def test_the_crop_is_scaled_back_to_the_frame_size_with_its_colour():
    """A window on the middle quarter shows it twice as large: a red square in its centre
    fills the centre of the output, in the Y and the chroma planes alike."""
    framer = AutoFrame(W, H, max_zoom=4)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[80:100, 150:170] = (255, 0, 0)
    composite = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    alpha = np.zeros((H, W), np.uint8)
    alpha[80:100, 150:170] = 255
    window = Window(W / 2, H / 2, H / 2)
    assert framer.box(window) == (80, 44, 160, 90)
    out, framed_alpha = framer.apply(composite, alpha, window)
    assert out.shape == composite.shape and framed_alpha.shape == alpha.shape
    back = cv2.cvtColor(out, cv2.COLOR_YUV2RGB_I420).astype(int)
    ys, xs = np.nonzero(framed_alpha > 127)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == pytest.approx((72, 111, 140, 179), abs=2)  # twice as large
    assert np.abs(back[90, 160] - (255, 0, 0)).max() < 12 and np.abs(back[10, 10]).max() < 12
    whole = framer.apply(composite, alpha, framer.whole)
    assert whole[0] is composite and whole[1] is alpha  # nothing to crop: not even a copy


def test_the_box_is_even_and_inside_the_frame_at_its_edges():
    framer = AutoFrame(W, H, max_zoom=8)
    for window in (Window(0, 0, 31), Window(W, H, 47.3), Window(W / 2, H / 2, 1000)):
        x, y, w, h = framer.box(window)
        assert all(v % 2 == 0 for v in (x, y, w, h)) and 0 <= x <= W - w and 0 <= y <= H - h


def test_turned_off_it_glides_back_to_the_whole_frame_and_crops_nothing():
    """The f key: not following, the window returns to the whole frame (gliding, as it
    came) and the batch then comes back as it was given, not even copied."""
    framer = AutoFrame(W, H, max_zoom=4)
    alphas = np.stack([person(0.1, 0.25, 0.5)])
    composites = np.zeros((1, H * 3 // 2, W), np.uint8)
    t = 0.0
    for _ in range(100):
        framer(composites, alphas, [t := t + 0.04])
    zoomed = framer.window
    assert zoomed.h < 0.7 * H
    framer.following = False
    framer(composites, alphas, [t := t + 0.04])
    assert zoomed.h < framer.window.h < H  # on its way out, not there at once
    for _ in range(100):
        got = framer(composites, alphas, [t := t + 0.04])
    assert framer.box(framer.window) == (0, 0, W, H) and got[0] is composites and got[1] is alphas
    near_whole = AutoFrame(W, H, max_zoom=4)  # a goal inside the deadband of the whole frame
    near_whole.window = near_whole._goal = Window(W / 2, H / 2, 0.96 * H)
    near_whole.following = False
    for _ in range(100):
        near_whole.step(alphas[0], t := t + 0.04)
    assert near_whole.box(near_whole.window) == (0, 0, W, H)  # off is all the way out


def test_a_zoom_out_of_range_is_refused():
    with pytest.raises(ValueError, match="max_zoom"):
        AutoFrame(W, H, max_zoom=0.5)


def test_a_batch_is_framed_frame_by_frame_in_order():
    framer, one_by_one = AutoFrame(W, H, max_zoom=4), AutoFrame(W, H, max_zoom=4)
    alphas = np.stack([person(0.1, 0.25, 0.5)] * 3)
    composites = np.zeros((3, H * 3 // 2, W), np.uint8)
    composites[:, :H] = np.arange(W, dtype=np.uint8)[None, None, :]
    got, _ = framer(composites, alphas, [0.0, 0.04, 0.08])
    for i, t in enumerate([0.0, 0.04, 0.08]):
        want, _ = one_by_one.apply(composites[i], alphas[i], one_by_one.step(alphas[i], t))
        assert np.array_equal(got[i], want)
    assert not np.array_equal(got[0], got[2])  # the window moved on between them


def test_the_run_follows_a_real_person(tmp_path, portrait_paths, fast_models):
    """End to end with the fast model on a real portrait, on the left of a wide dark room:
    after a second, the framed run has the person nearer the middle and larger; the plain
    run has them where they stand. (The fast model loses people much smaller than this.)"""
    # (one the fast model mattes well this small: a standing person, taller than wide)
    path = next(img for img, _ in portrait_paths if img.stem == "p_22fc0130")
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    w, h = 384, 216
    room = np.full((h, w, 3), 30, np.uint8)
    small = cv2.resize(img, (round(img.shape[1] * h / img.shape[0] * 0.7), round(h * 0.7)))
    room[h - small.shape[0] :, 24 : 24 + small.shape[1]] = small
    clip = tmp_path / "room.mkv"
    with av.open(str(clip), "w") as out:
        v = out.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        for i in range(30):
            f = av.VideoFrame.from_ndarray(room, format="rgb24")
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    flags = ["--model", "fast", "--backend", "torch", "--background", "#00ff00", "--codec", "ffv1", "-q"]
    assert main([str(clip), "-o", str(tmp_path / "plain.mkv"), *flags]) == 0
    assert main([str(clip), "-o", str(tmp_path / "framed.mkv"), "--auto-frame", "3", *flags]) == 0
    spots = {}
    for name in ("plain", "framed"):
        with av.open(str(tmp_path / f"{name}.mkv")) as c:
            last = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)][-1]
        assert last.shape == (h, w, 3)
        shown = np.abs(last.astype(int) - (0, 255, 0)).sum(axis=2) > 120  # not the green background
        ys, xs = np.nonzero(shown)
        spots[name] = (xs.mean() / w, shown.mean())
    # Towards the middle (as far as the window can go: it stays inside the frame) and larger.
    assert spots["plain"][0] < 0.25 and spots["framed"][0] > spots["plain"][0] + 0.05
    assert spots["framed"][1] > 1.5 * spots["plain"][1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--auto-frame", "0.5"], "--auto-frame takes the most zoom, from 1 to 8"),
        (["--auto-frame", "--alpha-out", "m.mov"], "--auto-frame crops the composite"),
    ],
)
def test_auto_frame_misuse_is_one_line(run, tmp_path, capsys, extra, message):
    from tests.media import make_clip

    clip = make_clip(tmp_path / "c.mp4", frames=2, audio_rate=None)
    assert run(clip, "-o", tmp_path / "o.mp4", *[str(tmp_path / a) if a.endswith(".mov") else a for a in extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not list(tmp_path.glob("o*"))


def test_auto_frame_in_the_config_file_is_the_default_zoom(tmp_path):
    from p3m_live.cli import _parse

    (tmp_path / "c.toml").write_text("auto-frame = true\n")
    assert _parse(["--webcam", "--config", str(tmp_path / "c.toml")]).auto_frame == 2.0
    assert _parse(["--webcam"]).auto_frame is None
