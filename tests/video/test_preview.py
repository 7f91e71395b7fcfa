"""The preview window's keys, driven through the live loop and an offline run with a GUI double
(no display here)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from p3m_live.backends import open_backend
from p3m_live.errors import P3MError
from p3m_live.graph import GraphSpec
from p3m_live.live import run_live
from p3m_live.pipeline import Matting, run_offline
from p3m_live.video.backgrounds import parse_background
from p3m_live.video.frames import Layout
from p3m_live.video.preview import PreviewWindow, display_problem
from p3m_live.video.sinks import FileSink, VirtualCamSink
from p3m_live.video.sources import AVSource
from tests.media import make_clip, probe
from tests.video.test_sinks import CameraDouble


class GuiDouble:
    """Stands in for OpenCV's HighGUI (this machine has no display): records images, replays keys."""

    WINDOW_NORMAL = 0
    WND_PROP_VISIBLE = 4

    def __init__(self, keys: str = "", closed_after: int | None = None) -> None:
        self.keys = [ord(k) for k in keys]
        self.shown: list[np.ndarray] = []
        self.destroyed = False
        self.closed_after = closed_after  # the user clicks the close button after this many images

    def getWindowProperty(self, title, prop):  # noqa: N802
        assert prop == self.WND_PROP_VISIBLE
        return 0.0 if self.closed_after is not None and len(self.shown) >= self.closed_after else 1.0

    def namedWindow(self, title, flags):  # noqa: N802 (OpenCV's names)
        pass

    def imshow(self, title, image):
        self.shown.append(image.copy())

    def waitKey(self, delay):  # noqa: N802
        return self.keys.pop(0) if self.keys else -1

    def destroyWindow(self, title):  # noqa: N802
        self.destroyed = True


def _torch_matting(lay, seed32_ckpt):
    def opener(choice, batch):
        spec = GraphSpec(lay.height, lay.width, lay.fmt, "i420", model_short_side=32, background=choice.graph_kind)
        return open_backend("torch", spec, seed32_ckpt)

    return Matting(lay, [parse_background("blur")], opener)


def test_closing_the_window_ends_a_preview_only_run(seed32_ckpt):
    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    gui = GuiDouble(closed_after=3)
    window = PreviewWindow(src.layout, gui=gui)
    summary = run_live(src, _torch_matting(src.layout, seed32_ckpt), [], preview=window, deadline=30.0, duration=20)
    assert summary.shown == 3 and len(gui.shown) == 3 and summary.wall < 15


def test_closing_the_window_keeps_the_virtual_camera_going(seed32_ckpt, caplog):
    caplog.set_level(logging.INFO, logger="p3m_live")
    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    gui = GuiDouble(closed_after=2)
    window = PreviewWindow(src.layout, gui=gui)
    cam = VirtualCamSink(src.layout, 30.0, camera_factory=CameraDouble)
    summary = run_live(src, _torch_matting(src.layout, seed32_ckpt), [cam], preview=window, deadline=30.0, duration=2)
    assert len(gui.shown) == 2 and gui.destroyed  # not drawn again (imshow would reopen it)
    assert len(cam.camera.sent) == summary.shown > 2  # the call went on
    assert any("preview closed" in r.getMessage() for r in caplog.records)


def test_keys_switch_matte_pause_and_background(seed32_ckpt):
    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    lay = src.layout
    opened = []

    def opener(choice, batch):
        opened.append(choice.kind)
        spec = GraphSpec(lay.height, lay.width, lay.fmt, "i420", model_short_side=32, background=choice.graph_kind)
        return open_backend("torch", spec, seed32_ckpt)

    matting = Matting(lay, [parse_background("blur"), parse_background("green")], opener)
    gui = GuiDouble(keys="bm q")  # next background, matte view, pause, quit
    window = PreviewWindow(lay, gui=gui)
    summary = run_live(src, matting, [], preview=window, status_interval=1e9, deadline=30.0)  # no privacy frames
    assert summary.shown == 4  # q on the fourth frame
    assert opened == ["blur", "color"] and matting.background.kind == "color"
    assert gui.shown[0].shape == (64, 96, 3)  # the composite, BGR
    assert gui.shown[2].shape == (64, 96)  # after m: the matte
    assert len(gui.shown) == 3 and window.paused  # paused: the fourth frame was not drawn


@pytest.mark.parametrize(("keys", "following"), [("fq", True), ("ffq", False)])
def test_f_turns_auto_framing_on_and_off(seed32_ckpt, keys, following):
    from p3m_live.framing import AutoFrame

    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    matting = _torch_matting(src.layout, seed32_ckpt)
    matting.framer = AutoFrame(96, 64, following=False)
    window = PreviewWindow(src.layout, gui=GuiDouble(keys=keys))
    run_live(src, matting, [], preview=window, status_interval=1e9, deadline=30.0)
    assert matting.framer.following is following


def test_h_hides_the_person_and_the_room_until_pressed_again(seed32_ckpt):
    """h: the outputs show the background alone (here flat green) from the next frame on,
    until h again; the matting goes on meanwhile."""
    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    lay = src.layout

    def opener(choice, batch):
        spec = GraphSpec(lay.height, lay.width, lay.fmt, "i420", model_short_side=32, background=choice.graph_kind)
        return open_backend("torch", spec, seed32_ckpt)

    matting = Matting(lay, [parse_background("green")], opener)
    cam = VirtualCamSink(lay, 30.0, camera_factory=CameraDouble)
    window = PreviewWindow(lay, gui=GuiDouble(keys="xxhxxxhxxq"))  # (x: no key)
    run_live(src, matting, [cam], preview=window, status_interval=1e9, deadline=30.0)
    sent = cam.camera.sent
    assert len(sent) == 10
    flat = [bool(np.ptp(f[: lay.height]) == 0) for f in sent]  # the Y plane all one value
    assert flat == [False] * 3 + [True] * 4 + [False] * 3
    assert all(np.array_equal(sent[3], f) for f in sent[4:7])


def test_no_display_is_one_line():
    class NoDisplay(GuiDouble):
        def namedWindow(self, title, flags):  # noqa: N802
            raise RuntimeError("OpenCV(5.0) error: (-2:Unspecified error) Can't initialize GTK backend")

    with pytest.raises(P3MError, match="cannot open a preview window.*without --preview"):
        PreviewWindow(Layout(64, 48, "i420", False, "bt601"), gui=NoDisplay())


def test_a_missing_display_is_found_before_opencv_is_asked():
    assert display_problem("linux", {}).startswith("no display")
    assert display_problem("linux", {"DISPLAY": ":0"}) is None
    assert display_problem("linux", {"WAYLAND_DISPLAY": "wayland-0"}) is None
    assert display_problem("linux", {"QT_QPA_PLATFORM": "offscreen"}) is None  # the user chose Qt's platform
    assert display_problem("darwin", {}) is None and display_problem("win32", {}) is None


def test_offline_preview_shows_the_conversion_and_q_finishes_the_file(seed32_ckpt, tmp_path):
    """--preview on a file: every call's newest composite is drawn (m for the matte), and q
    stops the run as a normal end, with a playable file of the frames written."""
    clip = make_clip(tmp_path / "talk.mp4", frames=40, audio_rate=None)
    out = tmp_path / "out.mp4"
    with AVSource(str(clip)) as src:
        sink = FileSink(out, src.layout, rate=src.rate, time_base=src.time_base)
        gui = GuiDouble(keys="xmxq")  # nothing, matte view, nothing, quit
        window = PreviewWindow(src.layout, gui=gui)
        summary = run_offline(src, _torch_matting(src.layout, seed32_ckpt), [sink], preview=window)
        sink.close()
    assert len(gui.shown) == 4 and gui.shown[1].shape == (64, 96, 3) and gui.shown[2].shape == (64, 96)  # m: next
    assert not summary.interrupted and 0 < summary.frames <= 4 + 16  # stopped long before the 40th frame
    assert 0 < len(probe(out)["times"]) == summary.frames


def test_offline_preview_closed_lets_the_file_finish(seed32_ckpt, tmp_path):
    clip = make_clip(tmp_path / "talk.mp4", frames=12, audio_rate=None)
    out = tmp_path / "out.mp4"
    with AVSource(str(clip)) as src:
        sink = FileSink(out, src.layout, rate=src.rate, time_base=src.time_base)
        gui = GuiDouble(closed_after=2)
        window = PreviewWindow(src.layout, gui=gui)
        summary = run_offline(src, _torch_matting(src.layout, seed32_ckpt), [sink], preview=window)
        sink.close()
    assert len(gui.shown) == 2 and gui.destroyed and summary.frames == 12 == len(probe(out)["times"])
