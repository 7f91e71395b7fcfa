"""Which layout each decoded pixel format gets, and that frames reach it in the right colours:
a live run in BT.601 limited range (what a virtual camera's I420 is read as), files in their own."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from p3m_live.backends import open_backend
from p3m_live.graph import GraphSpec
from p3m_live.live import run_live
from p3m_live.pipeline import Matting
from p3m_live.spec import MATRICES, i420_planes, yuv_constants
from p3m_live.video.backgrounds import parse_background
from p3m_live.video.frames import (
    COLORSPACES,
    LIVE_COLOURS,
    RANGES,
    Frame,
    chroma_subsampling,
    convert_matrix,
    layout_of,
    planes_to_rgb,
    to_planes,
)
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


def as_a_call_app_reads_it(planes: np.ndarray, fmt: str = "i420") -> np.ndarray:
    """I420 (or NV12) -> RGB as BT.601 limited range, the way libyuv (and so pyvirtualcam's
    backends and WebRTC) reads a camera's I420; OpenCV's conversion is the same one."""
    return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420 if fmt == "i420" else cv2.COLOR_YUV2RGB_NV12)


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
        ("nv12", "bt709", False, (1280, 720)),  # an HDMI capture card
        ("yuv420p10le", "bt709", True, (1280, 720)),
    ],
)
def test_live_frames_reach_the_virtual_cameras_colours(fmt, matrix, full, size):
    """Whatever the camera sends, the I420 a live run works in reads back, as a call app
    reads it, as the colours the camera saw."""
    rgb = patches(*size)
    frame = yuv_frame(rgb, fmt, matrix, full)
    lay = layout_of(frame, live=True)
    got = centres(as_a_call_app_reads_it(to_planes(frame, lay), lay.fmt))
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


def portrait_i420(path, matrix: str, full: bool, size: tuple[int, int] = (320, 240)) -> av.VideoFrame:
    """A shared portrait (sharp hair and colour edges) as I420 in ``matrix`` and range."""
    bgr = cv2.resize(cv2.imread(str(path)), size, interpolation=cv2.INTER_AREA)
    return yuv_frame(np.ascontiguousarray(bgr[..., ::-1]), "yuv420p", matrix, full)


def matrix_change_reference(data: np.ndarray, src: str, dst: str, full: bool) -> list[np.ndarray]:
    """The I420 planes in ``dst`` as float code values, each pixel taken to RGB and back in
    float64: luma with the chroma upsampled bilinearly, chroma with each block's mean luma."""
    _, _, y0, ys, cs = yuv_constants(src, full)
    y, u, v = (p.astype(np.float64) for p in i420_planes(data))

    def to_rgb(luma, cb, cr):
        kr, kb = MATRICES[src]
        r, b = luma + 2 * (1 - kr) * cr, luma + 2 * (1 - kb) * cb
        return r, (luma - kr * r - kb * b) / (1 - kr - kb), b

    def to_yuv(r, g, b):
        kr, kb = MATRICES[dst]
        luma = kr * r + (1 - kr - kb) * g + kb * b
        return luma, (b - luma) / (2 * (1 - kb)), (r - luma) / (2 * (1 - kr))

    h, w = y.shape
    up = [cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in (u, v)]
    luma = to_yuv(*to_rgb((y - y0) / ys, (up[0] - 128) / cs, (up[1] - 128) / cs))[0]
    block_luma = cv2.resize(y, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    _, cb, cr = to_yuv(*to_rgb((block_luma - y0) / ys, (u - 128) / cs, (v - 128) / cs))
    return [luma * ys + y0, cb * cs + 128, cr * cs + 128]


@pytest.mark.parametrize(("src", "dst"), [("bt709", "bt601"), ("bt601", "bt709")])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("fmt", ["i420", "nv12"])
def test_a_change_of_matrix_is_exact_to_half_a_level(src, dst, full, fmt, portrait_paths):
    """convert_matrix against the change made pixel by pixel through RGB in float64: every
    code value the nearest (on a portrait, where codes clip nowhere), in either layout."""
    frame = portrait_i420(portrait_paths[0][0], src, full)
    data = frame.to_ndarray()
    want = matrix_change_reference(data, src, dst, full)
    if fmt == "nv12":
        nv12 = frame.reformat(format="nv12").to_ndarray()
        got = convert_matrix(nv12, "nv12", src, dst, full)
        h = got.shape[0] * 2 // 3
        chroma = got[h:].reshape(h // 2, -1, 2)
        planes = [got[:h], chroma[..., 0], chroma[..., 1]]
    else:
        planes = i420_planes(convert_matrix(data, "i420", src, dst, full))
    assert all(0 < r.min() and r.max() < 255 for r in want)  # (no clipping to excuse)
    for got_plane, want_plane in zip(planes, want, strict=True):
        assert np.abs(got_plane - want_plane).max() <= 0.5 + 1e-6
    assert np.abs(planes[0].astype(int) - i420_planes(data)[0]).max() >= 3  # (the change is not nothing)


def test_a_change_of_matrix_agrees_with_swscale(portrait_paths):
    """The same change made by FFmpeg's swscale: the luma as its accurate mode makes it (as
    live runs made it before), the chroma as it makes it without resampling the chroma
    (its accurate mode passes the chroma through full size and back, which softens it);
    on average within a quarter of a level, and 99% of codes within one."""
    frame = portrait_i420(portrait_paths[0][0], "bt709", False)
    ours = i420_planes(convert_matrix(frame.to_ndarray(), "i420", "bt709", "bt601"))

    def swscale(interpolation: Interpolation) -> list[np.ndarray]:
        out = frame.reformat(
            format="yuv420p",
            src_colorspace=COLORSPACES["bt709"],
            dst_colorspace=COLORSPACES["bt601"],
            src_color_range=RANGES[False],
            dst_color_range=RANGES[False],
            interpolation=interpolation | Interpolation.ACCURATE_RND,
        )
        return i420_planes(out.to_ndarray())

    accurate, unresampled = swscale(Interpolation.BILINEAR | Interpolation.FULL_CHR_H_INT), swscale(Interpolation.POINT)
    for a, b in zip(ours, [accurate[0], *unresampled[1:]], strict=True):
        diff = np.abs(a.astype(int) - b)
        assert diff.mean() <= 0.25 and np.percentile(diff, 99) <= 1


def test_a_live_hd_streams_planes_are_changed_to_bt601(portrait_paths):
    """to_planes in a live run: a BT.709 frame's planes come out as convert_matrix makes them
    (so no other, slower conversion runs on the source thread)."""
    frame = portrait_i420(portrait_paths[0][0], "bt709", False, (1280, 720))
    lay = layout_of(frame, live=True)
    want = convert_matrix(frame.to_ndarray(), "i420", "bt709", "bt601")
    assert lay.matrix == "bt601" and np.array_equal(to_planes(frame, lay), want)
