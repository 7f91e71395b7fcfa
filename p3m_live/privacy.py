"""Privacy frames: what live output shows when matting fails, instead of the room.

A virtual background is a privacy promise, so when the backend raises, stalls or
returns garbage, the camera and the preview get the background alone (image,
video frame or colour) or, with a blur background, a heavy blur of the last good
composite; before any good composite there is only a flat grey frame. Never the
raw camera frame.
"""

from __future__ import annotations

import cv2  # imported here, not at the first failure: importing takes ~0.5 s, which would stall the output
import numpy as np

from .pipeline import Matting
from .spec import frame_shape, i420_planes, rgb_to_planes


def blur_i420(frame: np.ndarray, factor: int = 24) -> np.ndarray:
    """A blur too heavy to recognise anyone by: each plane shrunk ``factor`` times and back."""
    out = []
    for p in i420_planes(frame):
        ph, pw = p.shape
        small = cv2.resize(p, (max(1, pw // factor), max(1, ph // factor)), interpolation=cv2.INTER_AREA)
        out.append(cv2.resize(small, (pw, ph), interpolation=cv2.INTER_LINEAR).reshape(-1))
    return np.concatenate(out).reshape(frame.shape)


class PrivacyFrames:
    """The privacy frame for the current background; remembers the last good composite."""

    def __init__(self, matting: Matting) -> None:
        self.matting = matting
        lay = matting.layout
        self.shape = frame_shape("i420", 1, lay.height, lay.width)[1:]
        self.last_good: np.ndarray | None = None
        self._cache: dict[int, tuple[object, np.ndarray]] = {}  # background -> (what it showed, as I420)

    def good(self, composite: np.ndarray) -> None:
        self.last_good = composite

    def frame(self) -> np.ndarray:
        m, lay = self.matting, self.matting.layout
        choice = m.background
        if choice.kind == "blur" or choice.kind == "none":
            return self._blurred()
        value = m.current_background()
        shown, planes = self._cache.get(m.current, (None, None))
        if planes is None or shown is not value:  # converted once per picture: a video's moves on, or holds
            image = np.asarray(value, np.uint8)
            rgb = np.broadcast_to(image, (1, lay.height, lay.width, 3)) if choice.kind == "color" else image[None]
            planes = rgb_to_planes(rgb, lay.matrix, lay.full_range)[0]  # (a transparent image's alpha after)
            self._cache[m.current] = (value, planes)
        if planes.shape != self.shape:
            return _over(planes[: self.shape[0]], planes[self.shape[0] :], self._blurred())
        return planes

    def _blurred(self) -> np.ndarray:
        """The heavy blur of the last good composite; mid grey before there is one."""
        if self.last_good is None:
            return np.full(self.shape, 128, np.uint8)  # (neutral chroma)
        return blur_i420(self.last_good)


def _over(image: np.ndarray, weight: np.ndarray, behind: np.ndarray) -> np.ndarray:
    """I420 ``image`` over I420 ``behind`` by ``weight`` (uint8, full size): a transparent
    background over the heavy blur, as the mix graph puts it over the frame's blur."""
    h, w = weight.shape
    full = weight.astype(np.float32) / 255
    half = cv2.resize(full, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    per_byte = np.concatenate([full.ravel(), half.ravel(), half.ravel()]).reshape(image.shape)  # (Y, U, V)
    return (behind + per_byte * (image.astype(np.float32) - behind)).round().astype(np.uint8)
