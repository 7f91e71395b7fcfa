"""Which layout each decoded pixel format gets, and that frames reach it in the right colours:
a live run in BT.601 limited range (what a virtual camera's I420 is read as), files in their own."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace

from p3m_live.backends import open_backend
from p3m_live.graph import GraphSpec
from p3m_live.live import run_live
from p3m_live.pipeline import Matting
from p3m_live.video.backgrounds import parse_background
from p3m_live.video.frames import LIVE_COLOURS, Frame, chroma_subsampling, layout_of, planes_to_rgb, to_planes
from p3m_live.video.preview import PreviewWindow
from p3m_live.video.sinks import VirtualCamSink
from p3m_live.video.sources import AVSource
from tests.video.test_preview import GuiDouble
from tests.video.test_sinks import CameraDouble

PATCHES = [(200, 60, 40), (30, 160, 90), (40, 70, 210), (235, 235, 235), (20, 20, 20), (128, 128, 128)]


def patches(width: int, height: int) -> np.ndarray:
    """Flat colour patches, 16 pixels apart (4:2:0 and 4:2:2 keep flat chroma exact)."""
    rgb = np.zeros((height, width, 3), np.uint8)
    for i, colour in enumerate(PATCHES):
        rgb[:, i * width // len(PATCHES) : (i + 1) * width // len(PATCHES)] = colour
    return rgb


def yuv_frame(rgb: np.ndarray, fmt: str, matrix: str, full: bool, tag: bool = True) -> av.VideoFrame:
    """``rgb`` encoded as a decoder would give it: ``fmt`` in ``matrix`` and range, tagged or not."""
    cs = {"bt601": Colorspace.ITU601, "bt709": Colorspace.ITU709}[matrix]
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=fmt, dst_colorspace=cs, dst_color_range=ColorRange.JPEG if full else ColorRange.MPEG
    )
    frame.colorspace = {"bt601": 5, "bt709": 1}[matrix] if tag else 2  # (2: unspecified)
    frame.color_range = 2 if full else 1
    return frame


def as_a_call_app_reads_it(i420: np.ndarray) -> np.ndarray:
    """I420 -> RGB as BT.601 limited range, the way libyuv (and so pyvirtualcam's backends and
    WebRTC) reads a camera's I420; OpenCV's conversion is the same one."""
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)


def centres(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.array([rgb[h // 2, (2 * i + 1) * w // (2 * len(PATCHES))] for i in range(len(PATCHES))], int)


def test_chroma_subsampling_of_formats():
    assert {n: chroma_subsampling(n) for n in ("yuv420p10le", "p010le", "nv21", "yuyv422", "yuvj422p")} == {
        "yuv420p10le": (2, 2), "p010le": (2, 2), "nv21": (2, 2), "yuyv422": (2, 4), "yuvj422p": (2, 4),
    }  # fmt: skip
    assert all(chroma_subsampling(n) is None for n in ("yuv444p", "rgb24", "gbrp", "gray", "pal8"))


@pytest.mark.parametrize(
    ("fmt", "live", "want"),
    [
        ("yuv420p10le", False, ("i420", "bt709", False)),  # a 10-bit camera file: on the planes, its own colours
        ("p010le", False, ("i420", "bt709", False)),
        ("yuv422p10le", False, ("rgb", "bt709", True)),  # ProRes 422: RGB keeps the chroma for an editor
        ("yuv444p", False, ("rgb", "bt709", True)),
        ("yuyv422", True, ("i420", *LIVE_COLOURS)),  # a webcam's raw YUYV
        ("yuvj422p", True, ("i420", *LIVE_COLOURS)),  # a webcam's MJPEG, decoded
        ("yuv420p", True, ("i420", *LIVE_COLOURS)),  # an HD stream played live
        ("rgb24", True, ("rgb", *LIVE_COLOURS)),
    ],
)
def test_layout_of_each_format(fmt, live, want):
    frame = yuv_frame(patches(1280, 720), fmt, "bt709", False) if fmt != "rgb24" else None
    frame = frame or av.VideoFrame.from_ndarray(patches(1280, 720), format="rgb24")
    lay = layout_of(frame, live=live)
    assert (lay.fmt, lay.matrix, lay.full_range) == want


@pytest.mark.parametrize(
    ("fmt", "matrix", "full", "size"),
    [
        ("yuvj422p", "bt601", True, (1280, 720)),  # MJPEG webcam at 720p: full range
        ("yuyv422", "bt601", False, (640, 480)),  # raw webcam
        ("yuv420p", "bt709", False, (1920, 1080)),  # an HD stream: another matrix
        ("yuv420p10le", "bt709", True, (1280, 720)),
    ],
)
def test_live_frames_reach_the_virtual_cameras_colours(fmt, matrix, full, size):
    """Whatever the camera sends, the I420 a live run works in reads back, as a call app
    reads it, as the colours the camera saw."""
    rgb = patches(*size)
    frame = yuv_frame(rgb, fmt, matrix, full)
    lay = layout_of(frame, live=True)
    got = centres(as_a_call_app_reads_it(to_planes(frame, lay)))
    assert np.abs(got - np.array(PATCHES)).max() <= 3


@pytest.mark.parametrize(
    ("fmt", "matrix", "tag"),
    [("yuv420p10le", "bt709", True), ("p010le", "bt601", True), ("yuv422p10le", "bt709", False)],
)
def test_file_frames_keep_their_own_colours(fmt, matrix, tag):
    """Offline, 4:2:0 of any depth goes on the planes in its own matrix and range; an untagged HD
    frame turned to RGB is read as BT.709, as players read it (swscale alone would take BT.601)."""
    rgb = patches(1280, 720)
    frame = yuv_frame(rgb, fmt, matrix, False, tag)
    lay = layout_of(frame)
    data = to_planes(frame, lay)
    got = data if lay.fmt == "rgb" else planes_to_rgb(data, lay.fmt, lay.matrix, lay.full_range)
    assert np.abs(centres(got) - np.array(PATCHES)).max() <= 3


def test_a_webcams_mjpeg_is_read_right_by_the_call(seed32_ckpt):
    """End to end: a 4:2:2 full-range camera (as MJPEG decodes), a live run hiding the person
    (h), so the virtual camera shows the background colour alone: read as a call app reads
    I420, it is that colour. (Full-range I420 read as limited range showed it darker.)"""
    src = AVSource("testsrc2=size=96x64:rate=30,format=yuvj422p,realtime", format="lavfi", live=True)
    lay = src.layout

    def opener(choice, batch):
        spec = GraphSpec(
            lay.height, lay.width, lay.fmt, "i420", model_short_side=32, background=choice.graph_kind,
            matrix=lay.matrix, full_range=lay.full_range,
        )  # fmt: skip
        return open_backend("torch", spec, seed32_ckpt)

    matting = Matting(lay, [parse_background("#3366cc")], opener)
    cam = VirtualCamSink(lay, 30.0, camera_factory=CameraDouble)
    window = PreviewWindow(lay, gui=GuiDouble(keys="hxxq"))
    run_live(src, matting, [cam], preview=window, status_interval=1e9, deadline=30.0)
    shown = as_a_call_app_reads_it(cam.camera.sent[-1])
    assert lay.fmt == "i420" and np.abs(shown.reshape(-1, 3).astype(int) - (0x33, 0x66, 0xCC)).max() <= 2


@pytest.mark.parametrize("camera", [True, False])
def test_an_untagged_hd_camera_is_bt601(camera):
    """UVC's default matrix is BT.601 at any size: an untagged 720p YUYV camera's values go
    into the live run as they are (only subsampled). The same frames from an untagged HD
    stream are BT.709, as players take them, and are converted."""
    src = AVSource("testsrc2=size=1280x720:rate=30,format=yuyv422", format="lavfi", live=True, camera=camera)
    try:
        frame = next(f for f in src.items() if isinstance(f, Frame))
    finally:
        src.close()
    raw = AVSource("testsrc2=size=1280x720:rate=30,format=yuyv422", format="lavfi")  # the same first frame
    first = raw._first
    raw.close()
    assert int(first.colorspace or 2) == 2  # (the lavfi camera is untagged, as v4l2 cameras are)
    plain = first.reformat(format="yuv420p").to_ndarray()  # swscale's subsampling, values kept
    unchanged = bool(np.abs(frame.data.astype(int) - plain).max() <= 1)
    assert (src.layout.fmt, src.layout.matrix, src.layout.full_range) == ("i420", *LIVE_COLOURS)
    assert unchanged is camera
