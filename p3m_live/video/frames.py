"""Decoded frames as the frame graph wants them: uint8 planes plus their timing.

PyAV hands out ``av.VideoFrame`` objects in whatever pixel format the decoder
produced. The frame graph takes I420, NV12, RGB or BGR, so 4:2:0 frames go in
as their planes with no colour conversion at all, and only the rest are
converted, once, by swscale (a change of matrix by :func:`convert_matrix`).
Rotation metadata (a display matrix) is applied here, on the planes, so
everything downstream sees the picture upright.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from ..spec import MATRICES, PixelFormat, i420_planes, yuv_constants

# PyAV pixel format -> graph input format, for formats taken as they are.
DIRECT_FORMATS: dict[str, PixelFormat] = {
    "yuv420p": "i420",
    "yuvj420p": "i420",
    "nv12": "nv12",
    "rgb24": "rgb",
    "bgr24": "bgr",
}
# Cameras send BT.601 (UVC's default matrix, and JPEG's), and virtual cameras take I420 as
# BT.601 in limited range (libyuv's I420, which every pyvirtualcam backend reads, and what
# call apps assume of a webcam). A live run works in these colours throughout, so what the
# call shows is what the camera saw; full-range or BT.709 I420 there would look harsh or
# shifted in hue.
LIVE_COLOURS = ("bt601", False)  # (matrix, full range)
HEIF_SUFFIXES = {".heic", ".heif"}  # iPhone photos: read through pillow-heif (the heic extra)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", *HEIF_SUFFIXES}
# FFmpeg colorspace codes (AVColorSpace) that name a matrix the graph knows.
BT709_CODES = {1}
BT601_CODES = {5, 6}
COLORSPACES = {"bt601": Colorspace.ITU601, "bt709": Colorspace.ITU709}  # for swscale
RANGES = {False: ColorRange.MPEG, True: ColorRange.JPEG}


@dataclass
class Frame:
    """One decoded video frame, ready for the frame graph."""

    data: np.ndarray  # uint8: (H*3/2, W) for i420/nv12, (H, W, 3) for rgb/bgr
    fmt: PixelFormat
    pts: int | None
    time_base: Fraction | None
    index: int
    captured: float = field(default_factory=time.monotonic)  # when the frame left the decoder

    @property
    def time(self) -> float | None:
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        h, w = self.data.shape[:2]
        return (w, h * 2 // 3) if self.fmt in ("i420", "nv12") else (w, h)


@dataclass(frozen=True)
class Layout:
    """The fixed frame layout of a run, taken from its first frame."""

    width: int
    height: int
    fmt: PixelFormat
    full_range: bool
    matrix: str  # "bt601" | "bt709"
    rotation: int = 0  # degrees counter-clockwise applied to every frame (0, 90, 180, 270)
    # The shape of a pixel, width over height, as displayed: 1 but for anamorphic video (DV,
    # DVD and HDV at 16:9: 720x576 at 64:45, 1440x1080 at 4:3), which must be tagged so again.
    sar: Fraction = Fraction(1)


def matrix_of(colorspace: int, width: int, height: int) -> str:
    """The YUV matrix of a stream: its tag if it has one, else by size (HD is BT.709),
    the way players guess for untagged video."""
    if colorspace in BT709_CODES:
        return "bt709"
    if colorspace in BT601_CODES:
        return "bt601"
    return "bt709" if min(width, height) >= 720 else "bt601"


def scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """The size a frame is scaled down to for a short side of ``short_side`` (aspect kept,
    sides even); frames already that small, or no ``short_side``, keep their size."""
    if not short_side or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def quarter_turns(rotation: float | None) -> int:
    """A display rotation in degrees (counter-clockwise, as PyAV gives it) as 0 to 3
    quarter turns, the nearest."""
    return int(round((rotation or 0) / 90.0)) % 4


def chroma_subsampling(name: str) -> tuple[int, int] | None:
    """The size of a YUV format's chroma planes for a 4x4 frame: (2, 2) for 4:2:0, (2, 4)
    for 4:2:2, any depth or packing; None for RGB, grey, palettes and 4:4:4."""
    fmt = av.VideoFormat(name, 4, 4)
    if fmt.is_rgb or fmt.has_palette:
        return None
    sizes = [(c.width, c.height) for c in fmt.components if c.is_chroma]
    return sizes[0] if sizes else None


def frame_colours(frame: av.VideoFrame) -> tuple[str, bool]:
    """(matrix, full range) of a YUV frame's values: its tags, else as players guess (HD is
    BT.709; yuvj formats, as JPEG decoders give, are full range)."""
    full = frame.format.name.startswith("yuvj") or int(frame.color_range or 0) == 2  # AVCOL_RANGE_JPEG
    return matrix_of(int(frame.colorspace or 2), frame.width, frame.height), full


def decoded_rgb(frame: av.VideoFrame, alpha: bool = False) -> np.ndarray:
    """A decoded frame as RGB (or, with ``alpha``, RGBA) uint8, read in the matrix and range
    players read it in (:func:`frame_colours`): an untagged HD frame as BT.709, where
    swscale alone would take BT.601 (a red of an HD clip 15 levels off)."""
    fmt = "rgba" if alpha else "rgb24"
    if frame.format.is_rgb:
        return frame.to_ndarray(format=fmt)
    matrix, full = frame_colours(frame)
    return frame.reformat(format=fmt, src_colorspace=COLORSPACES[matrix], src_color_range=RANGES[full]).to_ndarray()


def run_colours(fmt: PixelFormat, matrix: str, full: bool, live: bool) -> tuple[str, bool]:
    """The (matrix, full range) a run of frames in ``fmt`` and these colours works in: a
    live run's :data:`LIVE_COLOURS`; else the source's own, but for RGB, where only the
    composite is YUV: in the full range of 8 bits, tagged so."""
    if live:
        return LIVE_COLOURS
    return matrix, full or fmt in ("rgb", "bgr")


def layout_of(
    frame: av.VideoFrame, rotation: float | None = None, sar: Fraction | None = None, live: bool = False
) -> Layout:
    """The layout a run uses for frames like ``frame``: its own format where the graph
    takes it; other 4:2:0 YUV (10-bit, P010, NV21) as I420, which the graph composites on
    the planes, and in a live run 4:2:2 too (a webcam's YUYV or MJPEG: every live output is
    4:2:0); RGB otherwise. Odd sizes are cropped to even for 4:2:0 (one row or column). A
    live run is in :data:`LIVE_COLOURS`. ``rotation`` (degrees) replaces the frame's own,
    for frames made from another; ``sar`` is the stream's pixel shape (turned with the frame)."""
    rotation = quarter_turns(frame.rotation if rotation is None else rotation) * 90
    fmt = DIRECT_FORMATS.get(frame.format.name)
    if fmt is None:
        sub = chroma_subsampling(frame.format.name)
        fmt = "i420" if sub == (2, 2) or (live and sub == (2, 4)) else "rgb"
    w, h = frame.width, frame.height
    if fmt in ("i420", "nv12") and (w % 2 or h % 2):
        fmt = "rgb"  # swscale handles odd 4:2:0; the crop happens on RGB
    if rotation in (90, 270):
        w, h = h, w
    w, h = w - w % 2, h - h % 2  # encoders and the virtual camera need even 4:2:0 sizes
    if w < 2 or h < 2:
        from ..errors import P3MError

        raise P3MError(f"the video is {frame.width}x{frame.height}: frames must be at least 2x2 pixels")
    matrix, full = run_colours(fmt, *frame_colours(frame), live)
    sar = Fraction(sar) if sar else Fraction(1)
    return Layout(w, h, fmt, full, matrix, rotation, 1 / sar if rotation in (90, 270) else sar)


def _move(src: np.ndarray, dst: np.ndarray, k: int, mirror: bool) -> None:
    """One plane turned ``k`` quarter turns counter-clockwise then flipped (``mirror``), into
    ``dst``, by OpenCV: 7 to 10 times numpy's strided copies (an I420 1080p frame in 0.2 ms,
    not 1.6 ms: tools/bench_turns.py). A counter-clockwise quarter turn and a flip is the
    transpose, flipped in place (an OpenCV temporary would cost more than the moves)."""
    import cv2

    if mirror and k in (1, 3):
        cv2.transpose(src, dst=dst)
        if k == 1:
            cv2.flip(dst, -1, dst=dst)
    elif mirror:
        cv2.flip(src, 1 if k == 0 else 0, dst=dst)  # (a half turn then a flip: upside down)
    else:
        code = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}[k]
        cv2.rotate(src, code, dst=dst)


def rotate_planes(data: np.ndarray, fmt: PixelFormat, k: int, mirror: bool = False) -> np.ndarray:
    """Rotate a frame by ``k`` quarter turns counter-clockwise, then (``mirror``) flip it left
    to right, plane by plane: pixels only move, so the colours stay exact."""
    k %= 4
    if k == 0 and not mirror:
        return data
    sideways = k % 2 == 1

    def turned(shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[1], shape[0], *shape[2:]) if sideways else shape

    if fmt in ("rgb", "bgr"):
        out = np.empty(turned(data.shape), np.uint8)
        _move(data, out, k, mirror)
        return out
    rows, w = data.shape
    h = rows * 2 // 3
    n, q = h * w, h * w // 4
    chroma = [(n, (h // 2, w // 2)), (n + q, (h // 2, w // 2))] if fmt == "i420" else [(n, (h // 2, w // 2, 2))]
    nh, nw = turned((h, w))
    out = np.empty((nh * 3 // 2, nw), np.uint8)
    src, dst = np.ascontiguousarray(data).reshape(-1), out.reshape(-1)
    for start, shape in [(0, (h, w)), *chroma]:  # (NV12's U, V pairs move together)
        size = int(np.prod(shape))
        _move(src[start : start + size].reshape(shape), dst[start : start + size].reshape(turned(shape)), k, mirror)
    return out


def to_planes(frame: av.VideoFrame, layout: Layout) -> np.ndarray:
    """The uint8 array the graph takes for ``frame`` under ``layout``."""
    rot = layout.rotation in (90, 270)
    w, h = (layout.height, layout.width) if rot else (layout.width, layout.height)
    av_fmt = {"i420": "yuvj420p" if layout.full_range else "yuv420p", "nv12": "nv12", "rgb": "rgb24", "bgr": "bgr24"}[
        layout.fmt
    ]
    same = frame.format.name == av_fmt or (layout.fmt == "i420" and frame.format.name in ("yuv420p", "yuvj420p"))
    yuv = layout.fmt in ("i420", "nv12")
    matrix = layout.matrix  # (an RGB frame has none: swscale makes the layout's)
    if frame.format.is_rgb:
        if not same:
            frame = frame.reformat(format=av_fmt)
    else:
        matrix, full = frame_colours(frame)
        if not same or (yuv and full != layout.full_range):
            # The frame's own matrix and range said to swscale (an untagged HD frame is BT.709,
            # as players take it, not swscale's BT.601); a YUV layout's range given as the
            # target, its matrix left to convert_matrix below.
            target = {"dst_colorspace": COLORSPACES[matrix], "dst_color_range": RANGES[layout.full_range]}
            frame = frame.reformat(
                format=av_fmt,
                src_colorspace=COLORSPACES[matrix],
                src_color_range=RANGES[full],
                **(target if yuv else {}),
            )
    if yuv and (frame.width, frame.height) != (w, h):
        frame = frame.reformat(width=w, height=h)  # a mid-stream size change
    data = frame.to_ndarray()
    if yuv and matrix != layout.matrix:
        data = convert_matrix(data, layout.fmt, matrix, layout.matrix, layout.full_range)
    if layout.fmt in ("rgb", "bgr"):
        data = data[:h, :w]
        if data.shape[:2] != (h, w):
            data = (
                av.VideoFrame.from_ndarray(np.ascontiguousarray(data), format="rgb24")
                .reformat(width=w, height=h)
                .to_ndarray()
            )
    return rotate_planes(data, layout.fmt, layout.rotation // 90)


def convert_matrix(data: np.ndarray, fmt: PixelFormat, src: str, dst: str, full_range: bool = False) -> np.ndarray:
    """An I420 or NV12 frame (H*3/2, W) from one YUV matrix to another (an HD stream's
    BT.709 to the BT.601 a virtual camera is read in), in the same range, rounded to the
    nearest code value. The change is linear in (Y, Cb, Cr), and grey stays grey: the new
    chroma is a mix of the old at its own size, and the new luma the old plus a mix of the
    chroma, upsampled bilinearly. Each is one OpenCV ``addWeighted`` (which rounds and
    saturates): 1.4 ms for a 1080p frame on two cores, exact to half a level, where
    swscale's accurate mode took 7.3 ms and softened the chroma (BENCHMARKS.md, "A webcam's
    frames in a live run")."""
    import cv2

    t = _matrix_change(src, dst)
    _, _, _, ys, cs = yuv_constants(dst, full_range)
    rows, w = data.shape
    h = rows * 2 // 3
    out = np.empty_like(data)
    if fmt == "i420":
        y, u, v = i420_planes(data)
        out_y, out_u, out_v = i420_planes(out)
    else:  # (OpenCV takes no strided planes: NV12's pairs are split and merged back)
        y, out_y = data[:h], out[:h]
        u, v = cv2.split(data[h:].reshape(h // 2, w // 2, 2))
        out_u, out_v = np.empty_like(u), np.empty_like(v)
    for row, plane in ((1, out_u), (2, out_v)):
        a, b = t[row, 1:]
        cv2.addWeighted(u, a, v, b, 128.0 * (1.0 - a - b), dst=plane)
    k_u, k_v = t[0, 1:] * ys / cs  # luma's change, in luma codes per chroma code
    shift = cv2.addWeighted(u, k_u, v, k_v, -128.0 * (k_u + k_v), dtype=cv2.CV_32F)
    cv2.add(y, cv2.resize(shift, (w, h), interpolation=cv2.INTER_LINEAR), dst=out_y, dtype=cv2.CV_8U)
    if fmt == "nv12":
        cv2.merge((out_u, out_v), dst=out[h:].reshape(h // 2, w // 2, 2))
    return out


@functools.cache
def _matrix_change(src: str, dst: str) -> np.ndarray:
    """The 3x3 change of normalised (Y, Cb, Cr) from one matrix to another, made once per
    pair (convert_matrix runs on every frame): t[0, 0] = 1 and t[1:, 0] = 0, grey stays grey."""

    def to_yuv(matrix: str) -> np.ndarray:  # RGB -> (Y, Cb, Cr), normalised
        kr, kb = MATRICES[matrix]
        kg = 1.0 - kr - kb
        rows = np.array([[kr, kg, kb], [-kr, -kg, 1.0 - kb], [1.0 - kr, -kg, -kb]])
        return rows / np.array([[1.0], [2 * (1 - kb)], [2 * (1 - kr)]])

    return to_yuv(dst) @ np.linalg.inv(to_yuv(src))


def frame_from_av(frame: av.VideoFrame, layout: Layout, index: int) -> Frame:
    return Frame(to_planes(frame, layout), layout.fmt, frame.pts, frame.time_base, index)


def planes_to_rgb(data: np.ndarray, fmt: PixelFormat, matrix: str = "bt601", full_range: bool = False) -> np.ndarray:
    """Any graph frame -> (H, W, 3) RGB uint8 on the CPU, with the stream's own YUV matrix
    and range (for previews and foreground outputs)."""
    if fmt == "rgb":
        return data
    if fmt == "bgr":
        return np.ascontiguousarray(data[..., ::-1])
    frame = av.VideoFrame.from_ndarray(data, format="yuv420p" if fmt == "i420" else "nv12")
    rgb = frame.reformat(format="rgb24", src_colorspace=COLORSPACES[matrix], src_color_range=RANGES[full_range])
    return rgb.to_ndarray()


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` (H, W, 3) scaled to fit inside width x height, aspect kept, centred on black:
    a photo of another size or orientation in a folder of images, shown whole and unstretched."""
    import cv2

    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - nw) // 2, (height - nh) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return out


def natural_key(path: Path) -> list:
    """Name order with numbers as numbers: IMG_2.png before IMG_10.png, as file browsers sort."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def image_pattern(path: Path) -> re.Pattern | None:
    """The files a printf pattern such as ``render_%04d.png`` names (as ffmpeg reads image
    sequences), as a regular expression with the number as its group; None for a plain name."""
    m = re.fullmatch(r"(.*?)%(0?\d*)d(.*)", path.name)
    if m is None or "%" in m.group(1) + m.group(3):
        return None
    digits = int(m.group(2) or 0)
    number = rf"\d{{{digits}}}" if m.group(2).startswith("0") else r"\d+"
    return re.compile(re.escape(m.group(1)) + f"({number})" + re.escape(m.group(3)))


def media_files(folder: Path, suffixes: Collection[str]) -> list[Path]:
    """The files in ``folder`` whose suffix is one of ``suffixes``, in name order (see
    :func:`natural_key`). Hidden ones are left out: macOS writes a ``._`` file beside
    every file it copies to a USB disk, with the same suffix and no picture in it."""
    found = (p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith("."))
    return sorted((p for p in found if p.is_file()), key=natural_key)


def image_files(path: Path) -> list[Path]:
    """An image, a folder's images, or a printf pattern's, in number order (see
    :func:`natural_key`); a one-line error if there are none."""
    from ..errors import P3MError

    pattern = image_pattern(path)
    if pattern is not None:
        folder = path.parent
        found = [
            (int(m.group(1)), p)
            for p in (folder.iterdir() if folder.is_dir() else ())
            if (m := pattern.fullmatch(p.name))
        ]
        if not found:
            raise P3MError(f"no images match {path}; check the folder and the pattern (like frame_%04d.png)")
        return [p for _, p in sorted(found)]
    if path.is_dir():
        files = media_files(path, IMAGE_SUFFIXES)
        if not files:
            raise P3MError(f"{path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    if not path.is_file():
        raise P3MError(f"input not found: {path}")
    return [path]


# Decoding a JPEG at 1/2, 1/4 or 1/8 of its size: libjpeg's scaled inverse DCT, which does
# a fraction of the work of a whole decode (and of scaling the whole picture down after it).
_REDUCED = {2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


def read_rgb(path: str | Path, alpha: bool = False, reduce: int = 1) -> np.ndarray | None:
    """An image file as RGB uint8 (H, W, 3), upright by its EXIF orientation, or None if it
    cannot be read as one. With ``alpha``, one that is partly transparent (a PNG or WebP
    logo) comes as RGBA (H, W, 4), straight alpha. HEIC/HEIF photos (iPhones) go through
    pillow-heif, whose libheif turns them upright itself. ``reduce`` (2, 4 or 8) reads a
    JPEG at that fraction of its size, each side rounded up (a 12-megapixel photo for a 720p
    frame: 2.5 times faster, scaling included); anything else comes whole. One that may be
    transparent is decoded once where it cannot be turned (:func:`may_be_turned`), else
    for its colours and again for its alpha."""
    if Path(path).suffix.lower() in HEIF_SUFFIXES:
        return _read_heif(Path(path), alpha)
    import cv2

    if cut_short_jpeg(Path(path)):
        return None  # (libjpeg would fill the rest with grey, and print its own line about it)
    with_alpha = alpha and may_be_transparent(Path(path))
    if with_alpha and not may_be_turned(Path(path)):  # one decode: as stored is upright
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        return None if raw is None else _upright_rgb(raw)
    flag = getattr(cv2, _REDUCED[reduce]) if reduce in _REDUCED and _is_jpeg(Path(path)) else cv2.IMREAD_COLOR
    img = cv2.imread(str(path), flag)
    if img is None:
        return None
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if with_alpha else None
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        return rgb
    raw = _eight_bits(raw)
    if raw[..., 3].min() == 255:
        return rgb  # (an alpha plane with nothing transparent in it)
    # IMREAD_UNCHANGED keeps alpha but ignores EXIF orientation: the alpha is turned the way
    # that turns its colours into the upright ones.
    colour, a = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB), raw[..., 3]
    for turn in _ORIENTATIONS:
        if np.array_equal(turn(colour), rgb):
            return np.dstack([rgb, turn(a)])
    return np.dstack([colour, a])  # (no turn matches exactly: as stored, colours and alpha together)


def _eight_bits(raw: np.ndarray) -> np.ndarray:
    """A 16-bit decode scaled to 8 bits, rounded."""
    import cv2

    return raw if raw.dtype == np.uint8 else cv2.convertScaleAbs(raw, alpha=255 / np.iinfo(raw.dtype).max)


def _upright_rgb(raw: np.ndarray) -> np.ndarray:
    """What ``IMREAD_UNCHANGED`` gives (grey, BGR or BGRA, 8 or 16 bits) as RGB, or RGBA
    where some of it is transparent."""
    import cv2

    raw = _eight_bits(raw)
    if raw.ndim == 2 or raw.shape[2] == 1:
        return cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
    rgb = cv2.cvtColor(np.ascontiguousarray(raw[..., :3]), cv2.COLOR_BGR2RGB)
    if raw.shape[2] == 3 or raw[..., 3].min() == 255:
        return rgb
    return np.dstack([rgb, raw[..., 3]])


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8"  # (SOI, the start-of-image marker)


def may_be_transparent(path: Path) -> bool:
    """Whether an image file can hold transparency, from its header: not a JPEG, nor a PNG
    with no alpha channel (IHDR colour type 4 or 6) and no tRNS chunk before its pixels, nor
    a WebP whose header says it has none. Anything else has its alpha read to find out
    (OpenCV's colour read drops it): with its colours where it cannot be turned, else in
    a second decode, which for a 12-megapixel photo doubles its reading time."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)  # a PNG's signature and its IHDR chunk up to the colour type; a WebP's first chunk
    except OSError:
        return True  # (the decode says why it cannot be read)
    if head[:2] == JPEG_START:
        return False
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 25:
        return webp_has_alpha(head)
    if head[:8] != PNG_SIGNATURE or len(head) < 26:
        return True
    return head[25] in (4, 6) or png_chunk_before_pixels(path, b"tRNS")  # (4, 6: grey or RGB with alpha)


def may_be_turned(path: Path) -> bool:
    """Whether an image file that may be transparent can carry an EXIF orientation, which
    OpenCV's colour read applies and its alpha read does not: a PNG with an eXIf chunk
    before its pixels, or an extended WebP whose header flags EXIF (0x08). Anything else
    is taken to (its colours are decoded apart, and the alpha turned to match them)."""
    try:
        with open(path, "rb") as f:
            head = f.read(21)
    except OSError:
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) == 21:
        return head[12:16] == b"VP8X" and bool(head[20] & 0x08)
    if head[:8] == PNG_SIGNATURE:
        return png_chunk_before_pixels(path, b"eXIf")
    return True


def webp_has_alpha(head: bytes) -> bool:
    """Whether a WebP file's first 25 bytes say it has alpha (Google's WebP container
    specification): lossy "VP8 " never has; extended "VP8X" has its alpha flag (0x10 of
    the flags byte); lossless "VP8L" has the alpha_is_used bit after its 14-bit width and
    height. Anything else is taken to have it (the decode finds out)."""
    kind = head[12:16]
    if kind == b"VP8 ":
        return False
    if kind == b"VP8X":
        return bool(head[20] & 0x10)
    if kind == b"VP8L" and head[20] == 0x2F:  # (the lossless signature byte)
        return bool(int.from_bytes(head[21:25], "little") >> 28 & 1)
    return True


def _is_jpeg(path: Path) -> bool:
    """Whether ``path`` starts as a JPEG does, whatever its name."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == JPEG_START
    except OSError:
        return False


def png_chunk_before_pixels(path: Path, kind: bytes) -> bool:
    """Whether ``path`` is a PNG with a ``kind`` chunk before its first image data (IDAT):
    its chunks are walked from the start, each skipped by its length. One that cannot be
    read has none."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != PNG_SIGNATURE:
                return False
            while len(head := f.read(8)) == 8:
                found = head[4:]
                if found in (kind, b"IDAT"):
                    return found == kind
                f.seek(int.from_bytes(head[:4], "big") + 4, os.SEEK_CUR)  # (its data and CRC)
    except OSError:
        pass
    return False


# The start-of-frame markers, which give a JPEG's size (SOF0-SOF15 but DHT, JPG and DAC).
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(path: Path) -> tuple[int, int] | None:
    """A JPEG's width and height as stored (before its EXIF orientation), from its frame
    header: its segments are walked from the start, each skipped by its length, up to the
    first scan. None where it is not a JPEG, or no size is found before the scan."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != JPEG_START:
                return None
            while len(head := f.read(4)) == 4 and head[0] == 0xFF:
                if head[1] == 0xFF:  # (a fill byte before a marker)
                    f.seek(-3, os.SEEK_CUR)
                    continue
                if head[1] in _SOF:
                    frame = f.read(5)  # (its sample precision, then its height and width)
                    size = int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
                    return size if len(frame) == 5 and all(size) else None
                if head[1] == 0xDA:
                    return None
                f.seek(int.from_bytes(head[2:], "big") - 2, os.SEEK_CUR)
    except OSError:
        pass
    return None


def cut_short_jpeg(path: Path) -> bool:
    """Whether ``path`` is a JPEG whose picture ends before its end-of-image marker (a
    partial download or copy). Its segments are walked to the first scan, past an EXIF
    thumbnail's own markers, and the marker looked for after it: in scan data an 0xFF
    byte is always followed by 0x00 or a restart marker, so it cannot occur by chance.
    Data after the marker (a phone's motion photo appends its video) does not matter."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != JPEG_START:
                return False
            f.seek(-2, os.SEEK_END)
            if f.read(2) == b"\xff\xd9":
                return False  # (nearly every whole JPEG: no need to read it all)
            f.seek(0)
            data = f.read()
    except OSError:
        return False  # (the reader says why)
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # (fill bytes before a marker)
            at += 1
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == 0xDA:  # start of scan: the picture's data follows
            return data.find(b"\xff\xd9", at) < 0
    return at + 4 > len(data)  # (cut short among the headers; garbage instead of a marker is for the reader)


# The eight EXIF orientations as array operations on (H, W, ...) images.
_ORIENTATIONS = [
    lambda x: x,
    lambda x: x[:, ::-1],
    lambda x: x[::-1, ::-1],
    lambda x: x[::-1],
    lambda x: x.swapaxes(0, 1),
    lambda x: np.rot90(x, -1),
    lambda x: x.swapaxes(0, 1)[::-1, ::-1],
    lambda x: np.rot90(x, 1),
]


def _read_heif(path: Path, alpha: bool = False) -> np.ndarray | None:
    from ..errors import P3MError

    try:
        import pillow_heif
    except ImportError as e:
        raise P3MError(f"{path} is a HEIC photo, which needs pillow-heif: pip install 'p3m-live[heic]'") from e
    try:
        heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=True)
        pixels = np.asarray(heif)  # a read-only view of libheif's buffer
    except (ValueError, OSError, RuntimeError):
        return None
    if alpha and pixels.shape[-1] == 4 and pixels[..., 3].min() < 255:
        return np.array(pixels)
    return np.array(pixels[..., :3])  # a copy of our own: writable, without an alpha plane
