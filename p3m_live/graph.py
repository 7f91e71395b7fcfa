"""The frame graph: everything that happens to one frame on the accelerator, as ONE module.

    uint8 frame (I420 / NV12 / RGB / BGR) + background + recurrent state
      -> colour conversion, resize to the model size, ImageNet normalisation
      -> P3M-Net -> fusion (argmax trimap; detail alpha in the unknown band)
      -> temporal smoothing against the previous alpha (state in, state out)
      -> alpha back to frame size (guided by the full-resolution frame, or bilinear)
      -> compositing over the background (image, colour or blurred frame)
      -> uint8 composite (I420 / NV12 / RGB / BGR / RGBA) and uint8 alpha

It is exported once to ONNX and run as it is by every backend, so the function
the CPU tests check is the one TensorRT compiles. Shapes are fixed per graph
(frame size, batch); inputs and outputs are named, and the state is an explicit
input/output pair, never hidden in a runtime.

Conventions: YUV is 8-bit with BT.601 or BT.709 coefficients, limited ("tv") or
full range; I420 and NV12 frames are one (H * 3/2, W) uint8 plane stack, as
PyAV's ``VideoFrame.to_ndarray()`` gives them. Compositing works on gamma-encoded
RGB in [0, 1] with straight (unpremultiplied) alpha.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model.networks import MattingNetwork
from .spec import (  # noqa: F401 (re-exported: the graph's spec lives in a torch-free module)
    GRAPH_VERSION,
    IN_FORMATS,
    MATRICES,
    MODELS,
    OUT_FORMATS,
    Background,
    GraphSpec,
    ModelName,
    PixelFormat,
    Precision,
    Temporal,
    Upsampler,
    frame_shape,
    model_size,
    yuv_constants,
)


def plane_codes(frame: Tensor, fmt: PixelFormat) -> tuple[Tensor, Tensor]:
    """I420/NV12 (B, H*3/2, W), uint8 or float -> (luma (B, 1, H, W), chroma (B, 2, H/2, W/2))
    as float code values (0-255, not normalised), chroma at its own resolution."""
    x = frame.float()
    b, rows, w = x.shape
    h = rows * 2 // 3
    n = h * w
    flat = x.reshape(b, rows * w)  # planes are contiguous; chroma rows need not align
    y = flat[:, :n].reshape(b, 1, h, w)
    if fmt == "i420":
        u = flat[:, n : n + n // 4].reshape(b, 1, h // 2, w // 2)
        v = flat[:, n + n // 4 :].reshape(b, 1, h // 2, w // 2)
    else:  # nv12: interleaved U, V
        uv = flat[:, n:].reshape(b, h // 2, w // 2, 2)
        u, v = uv[..., 0].unsqueeze(1), uv[..., 1].unsqueeze(1)
    return y, torch.cat((u, v), 1)


def normalised(luma: Tensor, chroma: Tensor, matrix: str = "bt601", full_range: bool = False) -> tuple[Tensor, Tensor]:
    """Code values -> luma in [0, 1] and Cb, Cr in [-0.5, 0.5] for legal video."""
    _, _, y0, ys, cs = yuv_constants(matrix, full_range)
    return (luma - y0) / ys, (chroma - 128.0) / cs


def coded(luma: Tensor, chroma: Tensor, matrix: str = "bt601", full_range: bool = False) -> tuple[Tensor, Tensor]:
    """Normalised luma and chroma -> code values (the inverse of :func:`normalised`)."""
    _, _, y0, ys, cs = yuv_constants(matrix, full_range)
    return luma * ys + y0, chroma * cs + 128.0


def yuv_planes(
    frame: Tensor, fmt: PixelFormat, matrix: str = "bt601", full_range: bool = False
) -> tuple[Tensor, Tensor]:
    """uint8 I420/NV12 -> (luma (B, 1, H, W), chroma (B, 2, H/2, W/2)) as float: luma
    in [0, 1] and Cb, Cr in [-0.5, 0.5] for legal video, chroma at its own resolution."""
    return normalised(*plane_codes(frame, fmt), matrix, full_range)


def yuv_to_rgb(luma: Tensor, chroma: Tensor, matrix: str = "bt601") -> Tensor:
    """Normalised luma and chroma at one resolution -> (B, 3, H, W) RGB."""
    kr, kb = MATRICES[matrix]
    cb, cr = chroma[:, :1], chroma[:, 1:]
    r = luma + 2 * (1 - kr) * cr
    bl = luma + 2 * (1 - kb) * cb
    g = (luma - kr * r - kb * bl) / (1 - kr - kb)
    return torch.cat((r, g, bl), 1)


def yuv_luma(rgb: Tensor, matrix: str = "bt601") -> Tensor:
    """(B, 3, H, W) RGB -> normalised luma (B, 1, H, W) in the stream's matrix."""
    kr, kb = MATRICES[matrix]
    return kr * rgb[:, 0:1] + (1 - kr - kb) * rgb[:, 1:2] + kb * rgb[:, 2:3]


def rgb_to_yuv(rgb: Tensor, matrix: str = "bt601") -> tuple[Tensor, Tensor]:
    """(B, 3, H, W) RGB -> normalised luma (B, 1, H, W) and chroma (B, 2, H, W)."""
    kr, kb = MATRICES[matrix]
    luma = yuv_luma(rgb, matrix)
    r, bl = rgb[:, 0:1], rgb[:, 2:3]
    return luma, torch.cat(((bl - luma) / (2 * (1 - kb)), (r - luma) / (2 * (1 - kr))), 1)


def pack_planes(luma: Tensor, chroma: Tensor, fmt: PixelFormat) -> Tensor:
    """Luma (B, 1, H, W) and chroma (B, 2, H/2, W/2) code values, each within 0-255 by
    construction (a blend of the frame's and a background's) -> uint8 I420/NV12. There is
    no clamp: a blend cannot leave the range, and the clamp was a full-size pass."""
    b, _, h, w = luma.shape
    y = luma.reshape(b, h * w)
    if fmt == "i420":
        planar = torch.cat((chroma[:, 0].reshape(b, -1), chroma[:, 1].reshape(b, -1)), 1)
    else:
        planar = chroma.permute(0, 2, 3, 1).reshape(b, -1)
    # One cast at the very end: TensorRT allows uint8 only as a network output.
    return _round_u8(torch.cat((y, planar), 1).reshape(b, h * 3 // 2, w))


def encode_planes(
    luma: Tensor, chroma: Tensor, fmt: PixelFormat, matrix: str = "bt601", full_range: bool = False
) -> Tensor:
    """Normalised luma (B, 1, H, W) and chroma (B, 2, H/2, W/2) -> uint8 I420/NV12 (clamped)."""
    y, c = coded(luma, chroma, matrix, full_range)
    return pack_planes(torch.clamp(y, 0.0, 255.0), torch.clamp(c, 0.0, 255.0), fmt)


def decode_frame(
    frame: Tensor, fmt: PixelFormat, matrix: str = "bt601", full_range: bool = False, smooth_chroma: bool = False
) -> Tensor:
    """uint8 frame -> (B, 3, H, W) float32 RGB in [0, 1]. YUV chroma is upsampled by
    repetition, whose 2x2 mean is the frame's chroma again (a 4:2:0 composite keeps it
    exactly), or with ``smooth_chroma`` bilinearly, for a picture that stays RGB."""
    if fmt in ("rgb", "bgr", "rgba"):
        rgb = frame.float()[..., :3].permute(0, 3, 1, 2)
        if fmt == "bgr":
            rgb = rgb.flip(1)
        return rgb.contiguous() / 255.0  # NCHW-contiguous: the same conv kernels as a plain tensor
    luma, chroma = yuv_planes(frame, fmt, matrix, full_range)
    if smooth_chroma:
        return yuv_to_rgb(luma, resize(chroma, luma.shape[-2:]), matrix)
    return yuv_to_rgb(luma, F.interpolate(chroma, scale_factor=2.0, mode="nearest"), matrix)


def _to_u8(x: Tensor) -> Tensor:
    return _round_u8(torch.clamp(x, 0.0, 255.0))


def _round_u8(x: Tensor) -> Tensor:
    """Values already within 0-255 -> uint8, rounded to the nearest. The rounding is its
    own op: ONNX leaves a float-to-integer Cast's rounding to the runtime (ONNX Runtime's
    truncates)."""
    return torch.round(x).to(torch.uint8)


def encode_frame(
    rgb: Tensor, fmt: PixelFormat, alpha: Tensor | None = None, matrix: str = "bt601", full_range: bool = False
) -> Tensor:
    """(B, 3, H, W) float RGB in [0, 1] -> uint8 in ``fmt`` (chroma: 2x2 mean)."""
    if fmt in ("rgb", "bgr", "rgba"):
        x = rgb.flip(1) if fmt == "bgr" else rgb
        if fmt == "rgba":
            x = torch.cat((x, alpha if alpha is not None else torch.ones_like(x[:, :1])), 1)
        return _to_u8(x.permute(0, 2, 3, 1) * 255.0)
    luma, chroma = rgb_to_yuv(rgb, matrix)
    return encode_planes(luma, F.avg_pool2d(chroma, 2), fmt, matrix, full_range)


# ---------------------------------------------------------------- filters


def box(x: Tensor, r: int) -> Tensor:
    """Mean over a (2r+1)^2 window, edges averaged over the valid part only."""
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def luma_of(rgb: Tensor) -> Tensor:
    return 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]


def guided_coefficients(alpha_lo: Tensor, guide_lo: Tensor, r: int = 1, eps: float = 1e-3) -> tuple[Tensor, Tensor]:
    """The fit of the fast guided filter (He and Sun, 2015) with a colour guide (He et al.,
    2013): at the model size, alpha ~ coef . rgb + bias locally, one 3x3 system per pixel
    written out so that it exports as plain arithmetic; (coef, bias) come back smoothed,
    (B, 3, h, w) and (B, 1, h, w), ready to be upsampled and applied to the full frame."""
    mean_i, mean_p = box(guide_lo, r), box(alpha_lo, r)
    cov_ip = box(guide_lo * alpha_lo, r) - mean_i * mean_p  # (B, 3, h, w)
    ch = [guide_lo[:, k : k + 1] for k in range(3)]
    mi = [mean_i[:, k : k + 1] for k in range(3)]

    def var(i: int, j: int) -> Tensor:
        return box(ch[i] * ch[j], r) - mi[i] * mi[j] + (eps if i == j else 0.0)

    a, b, c, d, e, f = var(0, 0), var(0, 1), var(0, 2), var(1, 1), var(1, 2), var(2, 2)
    # Inverse of the symmetric [[a, b, c], [b, d, e], [c, e, f]] by cofactors.
    i00, i01, i02 = d * f - e * e, c * e - b * f, b * e - c * d
    i11, i12, i22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * i00 + b * i01 + c * i02
    p = [cov_ip[:, k : k + 1] for k in range(3)]
    coef = torch.cat(
        (
            (i00 * p[0] + i01 * p[1] + i02 * p[2]) / det,
            (i01 * p[0] + i11 * p[1] + i12 * p[2]) / det,
            (i02 * p[0] + i12 * p[1] + i22 * p[2]) / det,
        ),
        1,
    )
    bias = mean_p - (coef * mean_i).sum(1, keepdim=True)
    return box(coef, r), box(bias, r)


def guided_upsample(alpha_lo: Tensor, guide_lo: Tensor, guide_hi: Tensor, r: int = 1, eps: float = 1e-3) -> Tensor:
    """Alpha at the frame size by the guided fit (:func:`guided_coefficients`) applied to the
    full-resolution colours, so the edges follow the real frame instead of the blurred
    low-resolution one. At 4x, against the shared portraits' mattes, this cuts the MSE of
    bilinear upsampling by about a quarter; a luma-only guide did no better than bilinear
    (BENCHMARKS.md)."""
    coef, bias = guided_coefficients(alpha_lo, guide_lo, r, eps)
    size = guide_hi.shape[-2:]
    coef_hi = resize(coef, size)
    bias_hi = resize(bias, size)
    return torch.clamp((coef_hi * guide_hi).sum(1, keepdim=True) + bias_hi, 0.0, 1.0)


def guided_upsample_planes(
    alpha_lo: Tensor,
    guide_lo: Tensor,
    luma: Tensor,
    chroma: Tensor,
    matrix: str,
    full_range: bool = False,
    r: int = 1,
    eps: float = 1e-3,
) -> Tensor:
    """:func:`guided_upsample` on the frame's own YUV planes (code values, as
    :func:`plane_codes` gives them), without full-resolution RGB.

    The fit is the same (on the model-size RGB). Since RGB is linear in (luma, Cb, Cr),
    and they in the code values, coef . rgb + bias = k_y * Y + d + chroma term, with the
    coefficients made at the model size: k_y and d are upsampled to full size, the chroma
    term made at the chroma's resolution and upsampled once. Each part keeps its own
    offsets (Y's in d, U's and V's 128 in the chroma term): an offset split from its
    plane's term, on another upsampling path, would leave a residue where they should
    cancel. (Upsampling (k_y, d) by way of the chroma's size would save one full-size
    pass, but smooths them twice: 1% more error against the shared mattes at 720p, 4%
    at 360p.)"""
    coef, bias = guided_coefficients(alpha_lo, guide_lo, r, eps)
    kr, kb, y0, ys, cs = yuv_constants(matrix, full_range)
    kg = 1 - kr - kb
    cr_, cg, cb_ = coef[:, 0:1], coef[:, 1:2], coef[:, 2:3]
    k_y = (cr_ + cg + cb_) / ys  # R, G and B each carry luma with weight 1
    k_u = 2 * (1 - kb) * (cb_ - cg * kb / kg) / cs
    k_v = 2 * (1 - kr) * (cr_ - cg * kr / kg) / cs
    d = bias - k_y * y0
    half = resize(torch.cat((k_u, k_v), 1), chroma.shape[-2:])
    chroma_term = half[:, 0:1] * (chroma[:, 0:1] - 128.0) + half[:, 1:2] * (chroma[:, 1:2] - 128.0)
    size = luma.shape[-2:]
    full = resize(torch.cat((k_y, d), 1), size)
    return torch.clamp(full[:, 0:1] * luma + full[:, 1:2] + resize(chroma_term, size), 0.0, 1.0)


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, with pixel centres aligned (``align_corners=False``, as OpenCV resizes)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def downscale(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-like downscale: integer box pooling first (no aliasing), then bilinear to size."""
    k = min(x.shape[-2] // size[0], x.shape[-1] // size[1])
    if k >= 2:
        x = F.avg_pool2d(x, k)
    return resize(x, size)


def box_sep(x: Tensor, r: int) -> Tensor:
    """Mean over a (2r+1)^2 window as two 1-D passes (2(2r+1) taps instead of (2r+1)^2),
    edges averaged over the valid part only."""
    k = 2 * r + 1
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, r), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(r, 0), count_include_pad=False)


def wide_blur(x: Tensor, r: int) -> Tensor:
    """A box blur of radius ``r`` that stays cheap when ``r`` is large: done at a lower
    resolution and upsampled (a blur that wide has no fine detail to lose)."""
    if r <= 8:
        return box_sep(x, r)
    f = r // 4
    h, w = x.shape[-2:]
    small = downscale(x, (max(1, h // f), max(1, w // f)))
    return resize(box_sep(small, 4), (h, w))


def estimate_foreground(image: Tensor, alpha: Tensor, radii: tuple[int, int] = (90, 6), factor: int = 1) -> Tensor:
    """Foreground colours by blur fusion (Forte and Pitie, "Approximate Fast Foreground Colour
    Estimation", ICIP 2021): local means of the foreground and background weighted by alpha,
    then the compositing equation solved for F; a wide pass, then a narrow one. It removes
    the old background's colour from hair and edges before they go over a new background.

    With ``factor`` > 1 the estimate is made ``factor`` times smaller and only its
    correction (estimate minus frame) is upsampled and added to the full-resolution frame,
    so the person keeps every full-resolution detail while the cost drops by factor^2.
    """
    if factor > 1:
        h, w = image.shape[-2:]
        small = (max(1, h // factor), max(1, w // factor))
        correction = _correction(downscale(image, small), downscale(alpha, small), radii, factor)
        return torch.clamp(image + resize(correction, (h, w)), 0.0, 1.0)
    fg, bg = image, image
    for r in radii:
        mean_a = wide_blur(alpha, r)
        fg_mean = wide_blur(fg * alpha, r) / (mean_a + 1e-5)
        bg_mean = wide_blur(bg * (1.0 - alpha), r) / (1.0 - mean_a + 1e-5)
        fg = torch.clamp(fg_mean + alpha * (image - alpha * fg_mean - (1.0 - alpha) * bg_mean), 0.0, 1.0)
        bg = bg_mean
    return fg


def _correction(image_lo: Tensor, alpha_lo: Tensor, radii: tuple[int, int], factor: int) -> Tensor:
    """What the estimate changes (estimate minus picture) on a picture ``factor`` times
    smaller than the frame, with the frame's blur radii scaled to it."""
    lo_radii = (max(1, radii[0] // factor), max(1, radii[1] // factor))
    return estimate_foreground(image_lo, alpha_lo, lo_radii) - image_lo


def estimate_foreground_planes(
    luma: Tensor, chroma: Tensor, alpha: Tensor, radii: tuple[int, int], factor: int
) -> tuple[Tensor, Tensor]:
    """:func:`estimate_foreground` on the planes' code values, made ``factor`` (2 or 4)
    times smaller than the frame (the luma box-downscaled, the chroma at its own size or
    half of it), its correction upsampled and added to the full-size luma and to the chroma.
    Blur fusion is a blend of local means, so it works on any affine coding of the colours
    alike; its clamp keeps the codes within 0-255 (the RGB path's keeps the RGB cube)."""
    lo_chroma = chroma if factor == 2 else F.avg_pool2d(chroma, factor // 2)
    image = torch.cat((F.avg_pool2d(luma, factor), lo_chroma), 1) / 255.0
    correction = _correction(image, F.avg_pool2d(alpha, factor), radii, factor) * 255.0
    fg_luma = luma + resize(correction[:, :1], luma.shape[-2:])
    fg_chroma = chroma + (correction[:, 1:] if factor == 2 else resize(correction[:, 1:], chroma.shape[-2:]))
    return torch.clamp(fg_luma, 0.0, 255.0), torch.clamp(fg_chroma, 0.0, 255.0)


def plane_estimate_factor(height: int, width: int) -> int:
    """How much smaller the planes path makes its foreground estimate: 2 (the chroma's own
    size) below 720p, 4 from 720p up, so that it works at a short side of 180 to 270 px.
    At 720p that keeps most of the RGB path's gain at a fraction of its cost (BENCHMARKS.md,
    "The person's own colours on a CPU")."""
    return 4 if min(height, width) >= 720 else 2


def erode(alpha: Tensor, r: int) -> Tensor:
    """The matte's edge pulled in by ``r`` pixels: each pixel takes the least alpha within
    ``r`` of it (a square, as two 1-D passes). A soft edge keeps its softness and moves;
    a rim of the old room that the matte kept is left outside. The frame's own border
    does not count as background (the pooling pads with -inf on the negated alpha)."""
    if r == 0:
        return alpha
    k = 2 * r + 1
    rows = F.max_pool2d(-alpha, (1, k), stride=1, padding=(0, r))
    return -F.max_pool2d(rows, (k, 1), stride=1, padding=(r, 0))


def light_wrap(comp: Tensor, alpha: Tensor, bg: Tensor, strength: float, r: int) -> Tensor:
    """Let the new background's light spill a little onto the person's edges, the way a
    real backlight would, so the cut-out does not look pasted on: inside the edge band
    (opaque, but near the background) blend towards the blurred background."""
    band = alpha * (1.0 - wide_blur(alpha, r))  # high just inside the edge, zero deep inside
    light = wide_blur(bg.expand_as(comp), r)
    mix = torch.clamp(strength * 2.0 * band, 0.0, 1.0)
    return comp * (1.0 - mix) + light * mix


def foreground_params(height: int, width: int) -> tuple[tuple[int, int], int]:
    """Blur-fusion radii for a frame (the published 90 and 6 are for about 1080p) and the
    factor it runs smaller by (2 from 540p up)."""
    scale = min(height, width) / 1080.0
    return (max(2, round(90 * scale)), max(1, round(6 * scale))), (2 if min(height, width) >= 540 else 1)


BLUR_FILL = 0.02  # a blur window with less than about this weight of background takes a wider window's colour


def blur_size(height: int, width: int, strength: int) -> tuple[int, int]:
    """The size the frame is blurred at: ``strength`` times smaller."""
    s = max(1, strength)
    return max(1, height // s), max(1, width // s)


def blur_background(x: Tensor, alpha: Tensor, size: tuple[int, int]) -> Tensor:
    """The background of ``x`` blurred without the person, at ``size`` (see ``blur_size``),
    to be upscaled: a wide, smooth blur at low cost (box-downscale, then two box passes,
    about a small Gaussian) of ``x`` weighted by 1 - ``alpha``, divided by the same blur of
    that weight (normalised convolution). So the person's colours do not spread into a
    bright or dark halo around them, as they do in a blur of the whole frame (Zoom's and
    NVIDIA Broadcast's blurs show none). Behind the person, where a window holds little or
    no background, the colour comes from ever wider windows (pull-push, see ``_filled``)."""
    keep = 1.0 - alpha
    c = x.shape[1]
    small = box(box(downscale(torch.cat((x * keep, keep), 1), size), 1), 1)
    return _filled(small[:, :c], small[:, c:], x.mean((2, 3), keepdim=True))


def _filled(weighted: Tensor, weight: Tensor, mean: Tensor) -> Tensor:
    """``weighted / weight``, and where the weight is near 0, the same at half the size,
    upscaled: down to one pixel, the mean of all the room, and where there is none (a
    frame that is all person), the frame's ``mean``. The sizes are the spec's, so the
    recursion unrolls in the export (about log2 of the blur's size: 7 levels at 1080p)."""
    h, w = weighted.shape[-2:]
    if h == w == 1:
        fill = mean
    else:
        # Exact 2x2 means (a last odd row or column is its own mean), so each level weighs
        # every pixel of the one below alike.
        half = F.avg_pool2d(torch.cat((weighted, weight), 1), (2 if h > 1 else 1, 2 if w > 1 else 1), ceil_mode=True)
        c = weighted.shape[1]
        fill = resize(_filled(half[:, :c], half[:, c:], mean), (h, w))
    return (weighted + BLUR_FILL * fill) / (weight + BLUR_FILL)


def mix_over_blur(image: Tensor, weight: Tensor, blurred: Tensor) -> Tensor:
    """The "mix" background: ``image`` where ``weight`` is 1, the blur of the frame where it
    is 0 (one graph for every kind a live run switches between)."""
    return blurred + weight * (image - blurred)


def composite_planes(
    alpha: Tensor, luma: Tensor, chroma: Tensor, bg_luma: Tensor, bg_chroma: Tensor
) -> tuple[Tensor, Tensor]:
    """Straight-alpha compositing on YUV planes (normalised or code values alike: a blend
    keeps any affine coding): luma at full resolution, chroma (the frame's and the
    background's) at half. The chroma weight is alpha's 2x2 mean, which is what the
    encoder's 2x2 chroma mean of an RGB composite gives wherever the background's chroma
    is flat over the block (a colour; a blur, nearly). Written as bg + alpha * (fg - bg):
    three passes at full size instead of four."""
    out_luma = bg_luma + alpha * (luma - bg_luma)
    alpha_half = F.avg_pool2d(alpha, 2)
    return out_luma, bg_chroma + alpha_half * (chroma - bg_chroma)


# ---------------------------------------------------------------- the graph

# The motion-adaptive temporal filter (luma in [0, 1], mean |change| over 5x5 pixels).
ADAPTIVE_STILL = 0.25  # weight of the new alpha where nothing moves
ADAPTIVE_NOISE = 0.01  # luma change below this is sensor noise
ADAPTIVE_MOVING = 0.05  # from this change on, the new alpha is taken as it is
ADAPTIVE_CUT = 0.2  # mean change over the frame that means a new shot
MOTION_SEARCH = 2  # the motion filter's block matching: up to this many pixels each way, at the model size


def adaptive_weight(luma: Tensor, prev_luma: Tensor) -> Tensor:
    """The new alpha's weight per pixel in the adaptive filter: ``ADAPTIVE_STILL`` where
    the 5x5 mean luma change is sensor noise, rising to 1 where it is ``ADAPTIVE_MOVING``,
    and 1 everywhere on a scene cut."""
    change = (luma - prev_luma).abs()
    ramp = (box(change, 2) - ADAPTIVE_NOISE) / (ADAPTIVE_MOVING - ADAPTIVE_NOISE)
    w = ADAPTIVE_STILL + (1.0 - ADAPTIVE_STILL) * torch.clamp(ramp, 0.0, 1.0)
    cut = (change.mean() > ADAPTIVE_CUT).to(w.dtype)
    return w + (1.0 - w) * cut


def follow_motion(prev_alpha: Tensor, prev_luma: Tensor, luma: Tensor, r: int = MOTION_SEARCH) -> tuple[Tensor, Tensor]:
    """The previous alpha and luma (1, 1, h, w) moved to where the picture moved: per pixel,
    of every shift up to ``r`` pixels each way, the one whose 5x5 mean luma difference from
    the new frame is least (block matching at the model size, the luma's edges repeated).
    A pixel whose match lies outside the last frame gets no history (-1), so that what
    comes into view is taken as it is rather than smoothed with a copy of the edge.

    A tenth of a noise level per pixel of shift is added to each cost, so that on flat
    ground, where every shift matches, the history stays where it is. Motion beyond ``r``
    is not found; there the adaptive weights see the change and take the new alpha.
    The costs are one depthwise convolution, and the pick a running minimum (of equal
    costs the first in row order wins, as with argmin): three times faster on CPUs than
    pooling, argmin and gather, and plain elementwise work for TensorRT to fuse.
    """
    h, w = luma.shape[-2:]
    shifts = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    luma_pad = F.pad(prev_luma, (r, r, r, r), mode="replicate")
    alpha_pad = F.pad(prev_alpha, (r, r, r, r), value=-1.0)  # (what came in over the edge has no history)
    both = torch.cat((alpha_pad, luma_pad), 1)

    def moved(x: Tensor, dy: int, dx: int) -> Tensor:
        return x[..., r - dy : r - dy + h, r - dx : r - dx + w]

    k = len(shifts)
    diffs = torch.cat([(luma - moved(luma_pad, dy, dx)).abs() for dy, dx in shifts], 1)
    window = torch.full((k, 1, 5, 5), 1 / 25, dtype=luma.dtype, device=luma.device)  # (a fill: no host data)
    costs = F.conv2d(diffs, window, padding=2, groups=k)  # (the 5x5 mean, edges zero-padded alike)

    def cost(i: int) -> Tensor:
        dy, dx = shifts[i]
        return costs[:, i : i + 1] + 0.1 * ADAPTIVE_NOISE * (abs(dy) + abs(dx))

    best, picked = cost(0), moved(both, *shifts[0])
    for i, (dy, dx) in enumerate(shifts[1:], 1):
        this = cost(i)
        better = this < best
        best = torch.minimum(this, best)
        picked = torch.where(better, moved(both, dy, dx), picked)
    return picked[:, :1], picked[:, 1:]


class FrameGraph(nn.Module):
    """One frame (or a batch of consecutive frames) in, composite + alpha + state out.

    Inputs, by name: ``frame`` (uint8, see :func:`frame_shape`), ``background``
    (uint8 ``spec.background_shape``: the image as RGB (B, H, W, 3), or as I420 for a planar
    graph, for "image"; (1, 3) RGB for "color"; absent for "blur"; for "mix", the image with
    its weight over the blur, RGBA or I420 and a weight plane),
    ``state_alpha`` (float32 ``spec.state_shape`` at the model size; negative = no history).
    Outputs: ``composite`` (uint8 in the output format), ``alpha`` (uint8 (B, H, W)),
    ``state_alpha_out`` (the next state), and with ``spec.foreground_track`` ``foreground``
    (the person's colours, RGB uint8 (B, H, W, 3): see :meth:`foreground_track`).
    """

    def __init__(self, network: MattingNetwork, spec: GraphSpec) -> None:
        super().__init__()
        self.spec = spec
        self.network = network.half() if spec.precision == "fp16" else network
        self.planar = spec.planar  # composite on the YUV planes (see _forward_planes)

    @property
    def input_names(self) -> list[str]:
        bg = [] if self.spec.background == "blur" else ["background"]
        return ["frame", *bg, "state_alpha"]

    @property
    def output_names(self) -> list[str]:
        track = ["foreground"] if self.spec.foreground_track else []
        return ["composite", "alpha", "state_alpha_out", *track]

    def example_inputs(self, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Zero inputs of the right shapes and dtypes (for export and warm-up)."""
        s = self.spec
        inputs = {"frame": torch.zeros(frame_shape(s.in_format, s.batch, s.height, s.width), dtype=torch.uint8)}
        if s.background_shape is not None:
            inputs["background"] = torch.zeros(s.background_shape, dtype=torch.uint8)
        inputs["state_alpha"] = torch.full(s.state_shape, -1.0)
        return {k: v.to(device) for k, v in inputs.items()}

    def matte(self, rgb_lo: Tensor) -> Tensor:
        """Model-size RGB in [0, 1] -> alpha (B, 1, h, w), float32 (the network's own
        preprocessing and output stage included; see ``MattingNetwork``)."""
        return self.network.matte(rgb_lo)

    def smooth(self, alpha: Tensor, state: Tensor, luma: Tensor) -> tuple[Tensor, Tensor]:
        """Temporal filter over the frames of the batch, in order, from ``state``.

        ``ema``: a fixed blend with the previous alpha. ``adaptive``: the blend follows
        local motion, measured as the mean absolute luma change in a 5x5 window at the
        model size. Where nothing moves, the new alpha weighs ``ADAPTIVE_STILL`` (heavy
        smoothing of flicker); where the picture changes by ``ADAPTIVE_MOVING`` or more,
        the new alpha is taken as it is (no trails behind a moving person); a scene cut
        (mean change over ``ADAPTIVE_CUT``) starts afresh. ``motion``: the same, with the
        previous alpha and luma first moved to where the picture moved (see
        :func:`follow_motion`), so that a person moving slowly is smoothed too. A negative
        state means no history (first frame, reset).
        """
        s = self.spec
        if s.temporal == "off":
            return alpha, alpha[-1:]
        frames = []
        prev_a = state[:, :1]
        prev_l = state[:, 1:2] if s.temporal != "ema" else None
        for t in range(alpha.shape[0]):
            a, lum = alpha[t : t + 1], luma[t : t + 1]
            if prev_l is None:
                w = torch.full_like(a, s.ema_weight)
            else:
                if s.temporal == "motion":
                    prev_a, prev_l = follow_motion(prev_a, prev_l, lum)
                w = adaptive_weight(lum, prev_l)
            cur = torch.where(prev_a < 0, a, w * a + (1 - w) * prev_a)
            frames.append(cur)
            prev_a, prev_l = cur, (lum if prev_l is not None else None)
        out = prev_a if prev_l is None else torch.cat((prev_a, prev_l), 1)
        return torch.cat(frames, 0), out

    def _blurs_small(self, size: tuple[int, int]) -> bool:
        """Whether a blur at ``size`` is made from the model's input, which has all of its
        detail and less to pool, rather than from the full frame (a light blur, finer than
        the model's input, needs that)."""
        mh, mw = self.spec.model_hw
        return mh >= size[0] and mw >= size[1]

    def foreground_track(
        self, frame: Tensor, alpha: Tensor, rgb: Tensor | None = None, estimate: Tensor | None = None
    ) -> Tensor:
        """The person's colours for an editor's foreground track (``--fg-out``): RGB uint8
        (B, H, W, 3), the full blur-fusion estimate (:func:`estimate_foreground`) from the
        matte before erosion, and the frame's own colours where the matte is opaque (255).
        Whatever the composite's colours are (the frame's, the quick estimate), an editor
        gets the full estimate; and it comes from the graph, so from TensorRT too. YUV
        chroma is upsampled bilinearly: the track stays RGB, so it should not show the
        chroma's 2x2 blocks. ``rgb`` and ``estimate``: those the composite has made already
        where they are the track's own (an RGB frame: there is no chroma to upsample)."""
        s = self.spec
        if rgb is None:
            rgb = decode_frame(frame, s.in_format, s.matrix, s.full_range, smooth_chroma=True)
        if estimate is None:
            estimate = estimate_foreground(rgb, alpha, *foreground_params(s.height, s.width))
        fg = torch.where(alpha * 255.0 > 254.5, rgb, estimate)  # (where the alpha output rounds to 255)
        return _to_u8(fg.permute(0, 2, 3, 1) * 255.0)

    def _track(self, frame: Tensor, alpha: Tensor, *made: Tensor | None) -> tuple[Tensor, ...]:
        return (self.foreground_track(frame, alpha, *made),) if self.spec.foreground_track else ()

    def forward(self, frame: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        s = self.spec
        background = rest[0] if s.background != "blur" else None
        state = rest[-1]
        if self.planar:
            return self._forward_planes(frame, background, state)
        rgb = decode_frame(frame, s.in_format, s.matrix, s.full_range)
        rgb_lo = downscale(rgb, s.model_hw)
        alpha_lo, state_out = self.smooth(self.matte(rgb_lo), state, luma_of(rgb_lo))
        if s.upsampler == "guided":
            alpha = guided_upsample(alpha_lo, rgb_lo, rgb)
        else:
            alpha = resize(alpha_lo, rgb.shape[-2:])
        if s.background in ("blur", "mix"):
            size = blur_size(s.height, s.width, s.blur_strength)
            source = (rgb_lo, alpha_lo) if self._blurs_small(size) else (rgb, alpha)
            blurred = resize(blur_background(*source, size), rgb.shape[-2:])
        if s.background == "blur":
            bg = blurred
        elif s.background == "color":
            assert background is not None
            bg = (background.float() / 255.0).view(-1, 3, 1, 1)
        else:
            assert background is not None
            bg = background.float().permute(0, 3, 1, 2) / 255.0
            if s.background == "mix":  # RGBA: the image, weighted over a blur of the frame
                bg = mix_over_blur(bg[:, :3], bg[:, 3:], blurred)
        if s.foreground != "frame":  # (off the planes, "quick" is the full estimate: there is no cheaper one)
            fg = estimate_foreground(rgb, alpha, *foreground_params(s.height, s.width))
        else:
            fg = rgb
        if s.in_format in ("rgb", "bgr", "rgba"):  # the composite's decoding and estimate are the track's
            track = self._track(frame, alpha, rgb, fg if s.foreground != "frame" else None)
        else:
            track = self._track(frame, alpha)
        alpha = erode(alpha, s.erode)  # (after the room's blur and the colour estimate, which want all of it)
        comp = alpha * fg + (1.0 - alpha) * bg
        if s.light_wrap > 0:
            comp = light_wrap(comp, alpha, bg, s.light_wrap, max(2, round(min(s.height, s.width) / 50)))
        composite = encode_frame(comp, s.out_format, alpha, s.matrix, s.full_range)
        return composite, _to_u8(alpha.squeeze(1) * 255.0), state_out, *track

    def _forward_planes(self, frame: Tensor, background: Tensor | None, state: Tensor) -> tuple[Tensor, ...]:
        """The same frame graph worked on the YUV planes: luma at full resolution, chroma at
        half. Compositing is linear and RGB is linear in (luma, Cb, Cr), so the composite's
        luma is alpha * luma + (1 - alpha) * background luma, and its chroma (the 2x2 mean
        the encoder takes) is mean(alpha) * Cb + (1 - mean(alpha)) * background Cb, exact
        for the frame's chroma, which is constant over each 2x2 block. No full-resolution
        RGB is ever made; that is most of the CPU time of the RGB path at 1080p.

        The planes stay in their code values (0-255) from input to output: only the
        model-size picture is normalised, and the backgrounds are brought to codes at
        their own (small) sizes, so no full-size pass scales the frame and back."""
        s = self.spec
        luma, chroma = plane_codes(frame, s.in_format)
        luma_lo, chroma_lo = downscale(luma, s.model_hw), downscale(chroma, s.model_hw)
        rgb_lo = yuv_to_rgb(*normalised(luma_lo, chroma_lo, s.matrix, s.full_range), s.matrix)
        alpha_lo, state_out = self.smooth(self.matte(rgb_lo), state, luma_of(rgb_lo))
        if s.upsampler == "guided":
            alpha = guided_upsample_planes(alpha_lo, rgb_lo, luma, chroma, s.matrix, s.full_range)
        else:
            alpha = resize(alpha_lo, luma.shape[-2:])
        if s.background in ("blur", "mix"):  # (a blur of code values is the codes of the blur)
            size, half = blur_size(s.height, s.width, s.blur_strength), chroma.shape[-2:]
            if self._blurs_small(size):  # luma and chroma in one pass, from the model's input
                both = blur_background(torch.cat((luma_lo, chroma_lo), 1), alpha_lo, size)
                bg_luma, bg_chroma = resize(both[:, :1], luma.shape[-2:]), resize(both[:, 1:], half)
            else:
                bg_luma = resize(blur_background(luma, alpha, size), luma.shape[-2:])
                bg_chroma = resize(blur_background(chroma, F.avg_pool2d(alpha, 2), size), half)
        if s.background != "blur":
            assert background is not None
            if s.background == "color":
                bg = (background.float() / 255.0).view(-1, 3, 1, 1)
                bg_luma, bg_chroma = coded(*rgb_to_yuv(bg, s.matrix), s.matrix, s.full_range)
            elif s.background == "image":  # I420 in the stream's matrix and range (see GraphSpec.background_shape)
                bg_luma, bg_chroma = plane_codes(background, "i420")
            else:  # mix: the I420 planes, then the weight plane (split as float: TensorRT has no uint8 slices)
                rows, bgf = s.height * 3 // 2, background.float()
                image_luma, image_chroma = plane_codes(bgf[:, :rows], "i420")
                weight = bgf[:, None, rows:] / 255.0
                bg_luma = mix_over_blur(image_luma, weight, bg_luma)
                bg_chroma = mix_over_blur(image_chroma, F.avg_pool2d(weight, 2), bg_chroma)
        if s.foreground == "quick":
            radii, factor = foreground_params(s.height, s.width)[0], plane_estimate_factor(s.height, s.width)
            luma, chroma = estimate_foreground_planes(luma, chroma, alpha, radii, factor)
        track = self._track(frame, alpha)
        alpha = erode(alpha, s.erode)  # (after the room's blur and the colour estimate, which want all of it)
        composite = pack_planes(*composite_planes(alpha, luma, chroma, bg_luma, bg_chroma), s.out_format)
        return composite, _round_u8(alpha.squeeze(1) * 255.0), state_out, *track
