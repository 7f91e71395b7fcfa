"""What fixes a frame graph, without torch: the spec, the model sizes, the frame layouts.

Kept apart from :mod:`p3m_live.graph` so that code which only needs to describe a
graph (the engine store, the TensorRT runtime, the sinks) does not import PyTorch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

GRAPH_VERSION = 8  # bump when the exported function changes; engine and ONNX caches key on it

PixelFormat = Literal["rgb", "bgr", "rgba", "i420", "nv12"]
# "mix" takes every kind in one graph: an image with a weight per pixel over a blur of the
# frame (255: the image, 0: the blur; a colour is a flat image). Live runs on GPUs use it,
# where the blur costs nothing and each graph is an engine to build and hold.
Background = Literal["image", "color", "blur", "mix"]
# "motion": the adaptive filter with the history first moved to where the picture moved.
Temporal = Literal["off", "ema", "adaptive", "motion"]
TEMPORALS = ("off", "ema", "adaptive", "motion")
Foreground = Literal["frame", "estimate", "quick"]
FOREGROUNDS = ("auto", "estimate", "quick", "frame")  # auto: see foreground_for
Upsampler = Literal["bilinear", "guided"]
Precision = Literal["fp32", "fp16"]
ModelName = Literal["p3m", "fast"]
MODELS = ("p3m", "fast")

MAX_ERODE = 16  # pixels: a matte pulled in further has lost the person, not a rim of the old room

IN_FORMATS = ("rgb", "bgr", "i420", "nv12")
OUT_FORMATS = ("rgb", "bgr", "rgba", "i420", "nv12")
# The fast model's two networks and their fixed input sizes (height, width).
FAST_GENERAL, FAST_LANDSCAPE = "selfie_segmentation", "selfie_segmentation_landscape"
FAST_MODEL_SIZES = {FAST_GENERAL: (256, 256), FAST_LANDSCAPE: (144, 256)}


def fast_variant(height: int, width: int) -> str:
    """Landscape frames get the landscape model (144x256), everything else the general one."""
    return FAST_LANDSCAPE if width > height else FAST_GENERAL


# (Kr, Kb) luma coefficients of each matrix.
MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def model_size(height: int, width: int, short_side: int = 512, multiple: int = 32) -> tuple[int, int]:
    """The network's input size for a frame: short side ``short_side`` (never more than the
    frame's own), aspect kept, both sides multiples of ``multiple``."""
    short = min(height, width)
    target = min(short_side, short)
    scale = target / short
    mh = max(multiple, round(height * scale / multiple) * multiple)
    mw = max(multiple, round(width * scale / multiple) * multiple)
    return mh, mw


def foreground_for(asked: str, on_gpu: bool, kind: str) -> str:
    """``--foreground`` for a background kind. auto: the full estimate on GPUs; on CPUs, the
    quick one over a new background (made smaller, on the planes: see
    graph.plane_estimate_factor), and the frame's own colours over the blurred room, whose
    colour the edges already hold."""
    if asked != "auto":
        return asked
    if on_gpu:
        return "estimate"
    return "frame" if kind == "blur" else "quick"


@dataclass(frozen=True)
class GraphSpec:
    """Everything that fixes the exported function (and so an engine's cache key)."""

    height: int
    width: int
    in_format: PixelFormat = "i420"
    out_format: PixelFormat = "i420"
    batch: int = 1
    model_short_side: int = 512
    background: Background = "image"
    temporal: Temporal = "adaptive"
    ema_weight: float = 0.6  # weight of the new frame's alpha
    upsampler: Upsampler = "guided"
    matrix: Literal["bt601", "bt709"] = "bt601"
    full_range: bool = False
    blur_strength: int = 16
    precision: Precision = "fp32"
    model: ModelName = "p3m"
    # The person's colours: estimated (no old-background fringe), estimated smaller on the planes
    # ("quick", see graph.plane_estimate_factor), or the frame's.
    foreground: Foreground = "estimate"
    light_wrap: float = 0.0  # 0..1: how much of the new background's light spills onto the person's edges
    erode: int = 0  # pixels the matte's edge is pulled in by, at the frame's size (0..MAX_ERODE)
    planes: bool = True  # composite on the YUV planes where the graph allows it (False: the RGB path, to compare)
    foreground_track: bool = False  # also output the person's colours, for --fg-out (FrameGraph.foreground_track)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {self.model!r}")
        if not 0.0 <= self.light_wrap <= 1.0:
            raise ValueError(f"light wrap must be from 0 to 1, not {self.light_wrap}")
        if not 0 <= self.erode <= MAX_ERODE:
            raise ValueError(f"erode must be a whole number of pixels from 0 to {MAX_ERODE}, not {self.erode}")
        if self.in_format not in IN_FORMATS:
            raise ValueError(f"input format must be one of {IN_FORMATS}, not {self.in_format!r}")
        if self.out_format not in OUT_FORMATS:
            raise ValueError(f"output format must be one of {OUT_FORMATS}, not {self.out_format!r}")
        yuv = "i420" in (self.in_format, self.out_format) or "nv12" in (self.in_format, self.out_format)
        if self.height < 2 or self.width < 2:
            raise ValueError(f"frame size {self.width}x{self.height} is too small: it must be at least 2x2")
        if yuv and (self.height % 2 or self.width % 2):
            raise ValueError(f"frame size {self.width}x{self.height} must be even for YUV 4:2:0")
        if self.batch < 1:
            raise ValueError("batch must be >= 1")

    @property
    def planar(self) -> bool:
        """Whether the graph composites on the YUV planes and never makes full-size RGB: YUV
        in and out, the frame's colours or the quick estimate (the full one needs RGB), no light
        wrap."""
        yuv = self.in_format in ("i420", "nv12") and self.out_format in ("i420", "nv12")
        return self.planes and yuv and self.foreground in ("frame", "quick") and self.light_wrap == 0

    @property
    def background_shape(self) -> tuple[int, ...] | None:
        """The background input: one image per frame of the batch (a video background moves
        within a batch), as RGB or, for a planar graph, as I420 in the stream's matrix and
        range (converted once per image instead of every frame); one colour; or none for a
        blur of the frame. "mix" adds its weight: RGBA, or the I420 planes then a full-size
        weight plane."""
        if self.background in ("image", "mix"):
            weight = self.background == "mix"
            if self.planar:
                b, rows, w = frame_shape("i420", self.batch, self.height, self.width)
                return (b, rows + self.height * weight, w)
            return (self.batch, self.height, self.width, 3 + weight)
        return (1, 3) if self.background == "color" else None

    @property
    def state_shape(self) -> tuple[int, int, int, int]:
        """The recurrent state: the last smoothed alpha at the model size, and for the
        filters that look at the picture (adaptive, motion) the last frame's luma too."""
        mh, mw = self.model_hw
        return (1, 2 if self.temporal in ("adaptive", "motion") else 1, mh, mw)

    @property
    def model_hw(self) -> tuple[int, int]:
        """The network's input size: P3M-Net follows the frame (short side, aspect kept);
        the fast model has two fixed sizes, 144x256 for landscape frames, else 256x256."""
        if self.model == "fast":
            return FAST_MODEL_SIZES[fast_variant(self.height, self.width)]
        return model_size(self.height, self.width, self.model_short_side)

    def with_(self, **changes) -> GraphSpec:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return {**asdict(self), "graph_version": GRAPH_VERSION, "model_size": list(self.model_hw)}


# ---------------------------------------------------------------- pixel formats


def frame_shape(fmt: PixelFormat, batch: int, height: int, width: int) -> tuple[int, ...]:
    """The uint8 array shape of a frame (or composite) in ``fmt``."""
    if fmt in ("i420", "nv12"):
        return (batch, height * 3 // 2, width)
    return (batch, height, width, 4 if fmt == "rgba" else 3)


def i420_planes(data: np.ndarray) -> list[np.ndarray]:
    """Views of the Y, U and V planes of one I420 frame, (H*3/2, W) (writable where it is)."""
    rows, width = data.shape
    height = rows * 2 // 3
    flat, n, q = data.reshape(-1), width * height, width * height // 4
    half = (height // 2, width // 2)
    return [data[:height], flat[n : n + q].reshape(half), flat[n + q :].reshape(half)]


def yuv_constants(matrix: str, full_range: bool) -> tuple[float, float, float, float, float]:
    """(Kr, Kb, luma offset, luma scale, chroma scale) of a YUV matrix and range."""
    kr, kb = MATRICES[matrix]
    if full_range:
        return kr, kb, 0.0, 255.0, 255.0
    return kr, kb, 16.0, 219.0, 224.0


def rgb_to_planes(rgb: np.ndarray, matrix: str = "bt601", full_range: bool = False) -> np.ndarray:
    """RGB uint8 images (B, H, W, 3) -> I420 uint8 (B, H*3/2, W) in the stream's matrix and
    range, by the frame graph's own arithmetic: luma per pixel, chroma from each 2x2 block's
    mean colour. A planar graph takes its image background this way (see
    ``GraphSpec.background_shape``), so a still image is converted once, not every frame.
    RGBA (B, H, W, 4): its alpha plane follows the I420 planes (B, H*5/2, W), as the "mix"
    graph takes a transparent image (the alpha its weight).
    Each plane is one OpenCV ``transform`` (a matrix with an offset column) that rounds and
    saturates to uint8 itself: 14 ms for a 1080p frame on two cores, against 22 ms in float."""
    import cv2

    kr, kb, y0, ys, cs = yuv_constants(matrix, full_range)
    kg = 1.0 - kr - kb
    to_luma = np.array([[kr, kg, kb, y0 * 255.0 / ys]], np.float32) * np.float32(ys / 255.0)
    cb = np.array([-kr, -kg, 1.0 - kb], np.float32) * np.float32(cs / (2.0 * (1.0 - kb)) / 255.0)
    cr = np.array([1.0 - kr, -kg, -kb], np.float32) * np.float32(cs / (2.0 * (1.0 - kr)) / 255.0)
    to_chroma = np.array([[*cb, 128.0], [*cr, 128.0]], np.float32)
    out = []
    for pixels in rgb:
        h, w = pixels.shape[:2]
        image = np.ascontiguousarray(pixels[..., :3])
        luma = cv2.transform(image, to_luma)  # uint8 in, uint8 out
        mean = cv2.resize(image.astype(np.float32), (w // 2, h // 2), interpolation=cv2.INTER_AREA)  # exact 2x2
        chroma = np.clip(np.round(cv2.transform(mean, to_chroma)), 0, 255).astype(np.uint8)
        planes = [luma.reshape(-1), chroma[..., 0].reshape(-1), chroma[..., 1].reshape(-1)]
        alpha = [pixels[..., 3].reshape(-1)] if pixels.shape[2] == 4 else []
        out.append(np.concatenate([*planes, *alpha]).reshape(-1, w))
    return np.stack(out)
