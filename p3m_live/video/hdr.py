"""HDR video (HLG or PQ) to SDR BT.709, on the CPU, as frames are decoded.

Phones record HLG by default. Read as SDR, such a clip looks flat and pale, and
PyAV's FFmpeg has no ``zscale`` to convert it, so the source does it here, in
its decoding thread, before the frame graph sees the frame:

1. swscale turns the frame into 16-bit RGB with its own (BT.2020) matrix;
2. a lookup table takes the code values to light: PQ's EOTF gives nits, HLG's
   inverse OETF gives scene light, and HLG's OOTF (system gamma 1.2 for a
   1000-nit display, BT.2100) makes it display light;
3. light is scaled so that HDR reference white, 203 nits (BT.2408), is SDR's 1.0,
   and taken from BT.2020 to BT.709 primaries with the 3x3 matrix of their
   chromaticities (colours outside BT.709 are clipped; a clip tagged with BT.709
   primaries, as some cameras record HLG, keeps its colours);
4. highlights above :data:`KNEE` are rolled off smoothly, so that the peak
   (1000 nits for HLG; for PQ the stream's MaxCLL, else 1000) lands on SDR
   white. The curve scales max(R, G, B), which keeps each pixel's hue and
   saturation; below the knee nothing changes;
5. the result is encoded for a BT.1886 display (gamma 2.4) to 8 bits, and
   swscale makes it I420 with the BT.709 matrix, limited range.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

# Transfer characteristics (AVColorTransferCharacteristic) of HDR video.
PQ, HLG = 16, 18
HDR_TRANSFERS = {PQ: "PQ, SMPTE ST 2084", HLG: "HLG, ARIB STD-B67"}

REFERENCE_WHITE = 203.0  # nits: BT.2408's HDR reference (graphics) white; it becomes SDR white, almost
HLG_DISPLAY_PEAK = 1000.0  # nits: the display HLG's system gamma 1.2 is defined for (BT.2100)
PQ_PEAK = 1000.0  # nits assumed for a PQ clip's brightest highlights when it does not say (MaxCLL)
KNEE = 0.5  # linear SDR light up to which nothing changes: reference white ends near 90% signal
SDR_GAMMA = 2.4  # BT.1886 display

# (x, y) chromaticities of the red, green and blue primaries, and of the D65 white.
BT2020_PRIMARIES = ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046))
BT709_PRIMARIES = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
D65 = (0.3127, 0.3290)
BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], np.float32)  # the Y row of the BT.2020 matrix
BT709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
BT709, BT2020 = 1, 9  # colour primaries tags (AVColorPrimaries)

# BT.2100's HLG constants, and SMPTE ST 2084's PQ constants.
HLG_A, HLG_B, HLG_C = 0.17883277, 0.28466892, 0.55991073
PQ_M1, PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
PQ_C1, PQ_C2, PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32


def hlg_to_scene(v: np.ndarray) -> np.ndarray:
    """HLG's inverse OETF: signal in [0, 1] -> normalised scene light in [0, 1]."""
    v = np.asarray(v, np.float64)
    low = v * v / 3.0
    high = (np.exp((np.maximum(v, 0.5) - HLG_C) / HLG_A) + HLG_B) / 12.0
    return np.where(v <= 0.5, low, high)


def scene_to_hlg(e: np.ndarray) -> np.ndarray:
    """HLG's OETF (for tests and for making HLG clips): scene light in [0, 1] -> signal."""
    e = np.asarray(e, np.float64)
    low = np.sqrt(3.0 * np.maximum(e, 0.0))
    high = HLG_A * np.log(np.maximum(12.0 * e - HLG_B, 1e-12)) + HLG_C
    return np.where(e <= 1.0 / 12.0, low, high)


def pq_to_nits(v: np.ndarray) -> np.ndarray:
    """PQ's EOTF: signal in [0, 1] -> display light in nits (cd/m2), up to 10000."""
    p = np.power(np.clip(np.asarray(v, np.float64), 0.0, 1.0), 1.0 / PQ_M2)
    return 10000.0 * np.power(np.maximum(p - PQ_C1, 0.0) / (PQ_C2 - PQ_C3 * p), 1.0 / PQ_M1)


def nits_to_pq(nits: np.ndarray) -> np.ndarray:
    """PQ's inverse EOTF (for tests and for making PQ clips)."""
    y = np.power(np.clip(np.asarray(nits, np.float64) / 10000.0, 0.0, 1.0), PQ_M1)
    return np.power((PQ_C1 + PQ_C2 * y) / (1.0 + PQ_C3 * y), PQ_M2)


def rgb_to_xyz(primaries, white=D65) -> np.ndarray:
    """The 3x3 matrix from linear RGB with these primaries to CIE XYZ (white at Y = 1)."""
    xyz = np.array([[x / y, 1.0, (1.0 - x - y) / y] for x, y in primaries]).T  # columns: the primaries
    wx, wy = white
    scale = np.linalg.solve(xyz, [wx / wy, 1.0, (1.0 - wx - wy) / wy])
    return xyz * scale


def primaries_matrix(src, dst) -> np.ndarray:
    """Linear RGB in ``src`` primaries -> linear RGB in ``dst`` primaries (same white)."""
    return np.linalg.solve(rgb_to_xyz(dst), rgb_to_xyz(src))


BT2020_TO_BT709 = primaries_matrix(BT2020_PRIMARIES, BT709_PRIMARIES)


def rolloff(m: np.ndarray, peak: float, knee: float = KNEE) -> np.ndarray:
    """Highlight roll-off: the identity up to ``knee``, then a curve with the same slope
    there that reaches 1 at ``peak`` (and is clipped at 1 beyond it)."""
    m = np.asarray(m, np.float32)
    a = (peak - knee) / (1.0 - knee)  # the curve's slope at the knee in its own units: 1 in ours
    t = np.maximum(m - knee, 0.0) / (peak - knee)
    out = np.minimum(m, knee) + (1.0 - knee) * (a * t / (1.0 + (a - 1.0) * t))
    return np.minimum(out, 1.0)


class ToneMapper:
    """Converts the frames of one HDR stream to SDR BT.709 I420 frames (see the module)."""

    def __init__(self, transfer: int, peak_nits: float | None = None, primaries: int = BT2020) -> None:
        """``peak_nits``: PQ's brightest highlight (the stream's MaxCLL), which lands on SDR
        white; HLG's is always its nominal display's. ``primaries``: the stream's tag; some
        cameras record HLG in BT.709 colours (``BT709``), which then keep their gamut."""
        if transfer not in HDR_TRANSFERS:
            raise ValueError(f"not an HDR transfer: {transfer}")
        self.transfer = transfer
        codes = np.arange(65536, dtype=np.float64) / 65535.0
        if transfer == HLG:
            self.peak = HLG_DISPLAY_PEAK / REFERENCE_WHITE
            self._light = hlg_to_scene(codes).astype(np.float32)  # scene light; the OOTF follows per pixel
        else:
            # a MaxCLL at or below reference white would leave no room for the roll-off
            self.peak = min(max(peak_nits or PQ_PEAK, 2 * REFERENCE_WHITE), 10000.0) / REFERENCE_WHITE
            self._light = (pq_to_nits(codes) / REFERENCE_WHITE).astype(np.float32)
        wide = primaries != BT709
        self._matrix = (BT2020_TO_BT709 if wide else np.eye(3)).astype(np.float32)
        self._luma = BT2020_LUMA if wide else BT709_LUMA
        # 16-bit linear light -> 8-bit BT.1886 code, with rounding
        self._encode = np.round(255.0 * np.power(codes, 1.0 / SDR_GAMMA)).astype(np.uint8)

    @property
    def name(self) -> str:
        return HDR_TRANSFERS[self.transfer]

    def light(self, rgb48: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """16-bit BT.2020 RGB codes -> (linear BT.709 light, reference white at 1.0, unclipped;
        the per-pixel gain HLG's OOTF still owes it, or None for PQ). The gain is a scalar per
        pixel, so it commutes with the primaries matrix and joins the roll-off's gain later."""
        light = self._light[rgb48]
        ootf = None
        if self.transfer == HLG:  # display light = peak * Ys^(gamma - 1) * scene light
            ys = cv2.transform(light, self._luma[None])
            ootf = np.float32(HLG_DISPLAY_PEAK / REFERENCE_WHITE) * np.power(ys, np.float32(0.2))
        return cv2.transform(light, self._matrix), ootf

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame as SDR BT.709 RGB, uint8 (H, W, 3), mapped in strips on a thread pool:
        NumPy and OpenCV release the GIL, and one 1080p frame takes 55 ms on one core here."""
        src = frame.reformat(
            format="rgb48le",
            src_colorspace=Colorspace.BT2020 if int(frame.colorspace or 2) in (2, 9, 10) else None,
            src_color_range=ColorRange.JPEG if int(frame.color_range or 0) == 2 else ColorRange.MPEG,
        ).to_ndarray()
        out = np.empty(src.shape, np.uint8)
        rows = np.linspace(0, src.shape[0], STRIPS + 1, dtype=int)
        list(_pool().map(lambda a, b: self._map(src[a:b], out[a:b]), rows[:-1], rows[1:]))
        return out

    def _map(self, rgb48: np.ndarray, out: np.ndarray) -> None:
        """Tone-map a strip of 16-bit codes into ``out`` (steps 2 to 5 of the module)."""
        light, ootf = self.light(rgb48)
        m = cv2.max(cv2.max(light[..., 0], light[..., 1]), light[..., 2])  # np.max(axis=2) is 15x slower
        if ootf is not None:
            m *= ootf
        np.maximum(m, 0.0, out=m)  # colours outside BT.709 have negative channels; those clip below
        gain = rolloff(m, self.peak) / np.maximum(m, np.float32(1e-6))
        if ootf is not None:
            gain *= ootf
        np.multiply(light, gain[..., None], out=light)
        codes = cv2.addWeighted(light, 65535.0, light, 0.0, 0.0, dtype=cv2.CV_16U)  # rounds, clips to [0, 1]
        out[...] = self._encode[codes]

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        """The frame as SDR I420 (BT.709, limited range), cropped to even sides, same timing."""
        rgb = self.rgb(frame)
        h, w = rgb.shape[:2]
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]), format="rgb24")
        out = out.reformat(
            format="yuv420p",
            dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG,
            dst_color_trc=1,
            dst_color_primaries=1,
        )
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out


def max_content_light(frame: av.VideoFrame) -> int | None:
    """The stream's MaxCLL in nits, from the frame's content light level side data
    (AVContentLightMetadata: two native unsigned ints, MaxCLL then MaxFALL), if it has one."""
    for side in frame.side_data:
        if getattr(side.type, "name", "") == "CONTENT_LIGHT_LEVEL" and len(bytes(side)) >= 4:
            return int(np.frombuffer(bytes(side)[:4], dtype=np.uint32)[0]) or None
    return None


STRIPS = min(8, os.cpu_count() or 1)  # a frame is mapped in this many strips at once
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The tone mapping threads, started at the first HDR frame and shared by every stream."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=STRIPS, thread_name_prefix="p3m-tonemap")
    return _POOL


def tone_mapper_for(frame: av.VideoFrame) -> ToneMapper | None:
    """A tone mapper for the stream ``frame`` starts, or None for SDR video."""
    trc = int(frame.color_trc or 0)
    if trc not in HDR_TRANSFERS:
        return None
    primaries = BT709 if int(frame.color_primaries or 0) == BT709 else BT2020  # untagged HDR is BT.2020
    return ToneMapper(trc, max_content_light(frame) if trc == PQ else None, primaries)
