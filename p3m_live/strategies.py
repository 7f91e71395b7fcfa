"""The official P3M-Net test strategies, RESIZE and HYBRID, for whole images.

Written from the facts of the official test code: images are resized with
scikit-image's ``resize`` (bilinear, anti-aliased when shrinking, values in
[0, 1]); sides are floored to multiples of 32 and capped at 1600.

- RESIZE: one pass at half scale; the fused alpha is resized back.
- HYBRID: the semantic branch's trimap (0/128/255) from a half-scale pass, resized
  back (so its class edges become in-between values); the detail alpha from a
  full-scale pass; where the resized trimap is exactly 0 or 255 it decides, and
  everywhere else the detail alpha does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from .errors import P3MError

if TYPE_CHECKING:  # (torch is imported when a pass runs, not when `p3m-live` builds its options)
    import torch

    from .model import P3MNet

Strategy = Literal["resize", "hybrid"]
STRATEGIES = ("resize", "hybrid")
MAX_SIDE = 1600


def official_size(height: int, width: int, ratio: float) -> tuple[int, int]:
    """The network input size for ``ratio``: sides scaled, floored to a multiple of 32, capped at 1600."""
    h, w = int(height * ratio), int(width * ratio)
    return min(MAX_SIDE, h - h % 32), min(MAX_SIDE, w - w % 32)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    try:
        from skimage.transform import resize
    except ImportError as e:
        raise P3MError("the official strategies need scikit-image: pip install 'p3m-live[eval]'") from e
    return resize(image, size)


def _run(net: P3MNet, image01: np.ndarray, device: str | torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass on an RGB image in [0, 1]: (trimap uint8 0/128/255, detail, fused), float arrays."""
    import torch

    from .model.p3mnet import IMAGENET_MEAN, IMAGENET_STD

    x = torch.from_numpy((image01 * 255.0).astype(np.float32)).permute(2, 0, 1)[None].to(device) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    with torch.inference_mode():
        out = net.run((x - mean) / std, sides=False)
    cls = out.semantic.argmax(dim=1)[0].cpu().numpy()
    trimap = np.choose(cls, [0, 128, 255]).astype(np.uint8)
    return trimap, out.detail[0, 0].float().cpu().numpy(), out.fused[0, 0].float().cpu().numpy()


def predict(net: P3MNet, image: np.ndarray, strategy: Strategy, device: str | torch.device = "cpu") -> np.ndarray:
    """Alpha in [0, 1] (float64, the image's size) for an RGB uint8 image, the official way."""
    if strategy not in STRATEGIES:
        raise P3MError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    h, w = image.shape[:2]
    half = official_size(h, w, 0.5)
    if min(half) < 32:
        raise P3MError(f"the image is {w}x{h}: the official strategies need at least 64x64 pixels")
    trimap, _, fused = _run(net, _resize(image, half), device)
    if strategy == "resize":
        return _resize(fused, (h, w))
    coarse = _resize(trimap, (h, w)) * 255.0
    _, detail, _ = _run(net, _resize(image, official_size(h, w, 1.0)), device)
    detail = _resize(detail, (h, w))
    certain = (coarse == 255) | (coarse == 0)
    return np.where(certain, coarse / 255.0, detail)
