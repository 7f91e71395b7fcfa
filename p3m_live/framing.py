"""``--auto-frame``: the picture follows the person, as NVIDIA Broadcast's Auto Frame does.

The matte already says where the person is, so no face detector is needed: the
person's extent in the matte (its 2nd to 98th percentiles, so a stray blob does
not count) with a margin around it is the window to show, in the frame's own
aspect, zoomed in at most ``max_zoom`` times. The window glides to it (an
exponential approach with a time constant ``tau`` seconds, on the frames' own
times, so a live run that drops frames moves as smoothly) and only once the person
has moved more than a ``deadband`` of the frame height: a person who shifts a
little does not set the picture swimming. The crop is scaled back up to the frame
size, so every output keeps its size. Without a person in view the window returns
to the whole frame.

It works on the frame graph's outputs (I420 composite, alpha) on the CPU, where
the composite is anyway; a 720p frame costs about a millisecond to crop and scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .spec import i420_planes

MIN_PERSON = 0.01  # the share of the frame the matte must cover to count as a person in view


@dataclass(frozen=True)
class Window:
    """What is shown: centre (``cx``, ``cy``) and height ``h`` in frame pixels; the width
    follows the frame's aspect."""

    cx: float
    cy: float
    h: float


class AutoFrame:
    """The window for each frame, from its alpha and time, and the crop it makes."""

    def __init__(
        self,
        width: int,
        height: int,
        max_zoom: float = 2.0,
        tau: float = 0.5,
        margin: float = 0.12,
        deadband: float = 0.06,
        following: bool = True,
    ) -> None:
        """``following`` False: the whole frame, until it is turned on (the ``f`` key of a
        live run); either way the window glides."""
        if not 1.0 <= max_zoom <= 8.0:
            raise ValueError(f"max_zoom must be from 1 to 8, not {max_zoom}")
        self.width, self.height = width, height
        self.max_zoom, self.tau, self.margin, self.deadband = max_zoom, tau, margin, deadband
        self.whole = Window(width / 2, height / 2, float(height))
        self.window = self.whole
        self._goal = self.whole
        self._time: float | None = None
        self.following = following

    def target(self, alpha: np.ndarray) -> Window:
        """Where the window should be for this matte: the person with a margin (more above,
        for headroom), in the frame's aspect, inside the frame; the whole frame when not
        following."""
        if not self.following:
            return self.whole
        step = max(1, min(self.width, self.height) // 128)  # a 128-pixel grid is plenty
        person = alpha[::step, ::step] > 127
        if person.mean() < MIN_PERSON:
            return self.whole
        top, bottom = (step * q for q in _extent(person.sum(axis=1)))
        left, right = (step * q for q in _extent(person.sum(axis=0)))
        pad = self.margin * (bottom - top)
        top, bottom, left, right = top - 1.5 * pad, bottom + 0.5 * pad, left - pad, right + pad
        aspect = self.width / self.height
        h = min(float(self.height), max(bottom - top, (right - left) / aspect, self.height / self.max_zoom))
        half_w = h * aspect / 2
        cx = min(max((left + right) / 2, half_w), self.width - half_w)
        cy = min(max((top + bottom) / 2, h / 2), self.height - h / 2)
        return Window(cx, cy, h)

    def step(self, alpha: np.ndarray, time: float | None = None) -> Window:
        """Move the window on by one frame (at ``time`` seconds; frames 1/30 s apart where
        there is none) and return it."""
        goal = self.target(alpha)
        far = max(abs(goal.cx - self._goal.cx), abs(goal.cy - self._goal.cy), abs(goal.h - self._goal.h))
        if far > self.deadband * self.height or not self.following:  # (off: all the way out)
            self._goal = goal
        dt = 1 / 30 if time is None or self._time is None else min(max(time - self._time, 0.0), 1.0)
        self._time = time
        k = 1 - math.exp(-dt / self.tau)
        w, g = self.window, self._goal
        self.window = Window(w.cx + k * (g.cx - w.cx), w.cy + k * (g.cy - w.cy), w.h + k * (g.h - w.h))
        return self.window

    def box(self, window: Window) -> tuple[int, int, int, int]:
        """(x, y, width, height) of ``window`` in whole, even pixels (I420's chroma is
        halved), inside the frame."""
        h = min(self.height, max(2, 2 * round(window.h / 2)))
        w = min(self.width, max(2, 2 * round(window.h * self.width / self.height / 2)))
        x = min(max(0, 2 * round((window.cx - w / 2) / 2)), self.width - w)
        y = min(max(0, 2 * round((window.cy - h / 2) / 2)), self.height - h)
        return x, y, w, h

    def apply(self, composite: np.ndarray, alpha: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """One frame's I420 composite (H*3/2, W) and alpha (H, W) cropped to ``window`` and
        scaled back to the frame size; the whole frame is returned as it is."""
        x, y, w, h = self.box(window)
        if (w, h) == (self.width, self.height):
            return composite, alpha
        import cv2

        W, H = self.width, self.height
        out = np.empty_like(composite)
        for i, (src, to) in enumerate(zip(i420_planes(composite), i420_planes(out))):
            d = 1 if i == 0 else 2
            crop = src[y // d : (y + h) // d, x // d : (x + w) // d]
            cv2.resize(crop, (to.shape[1], to.shape[0]), dst=to, interpolation=cv2.INTER_LINEAR)
        framed_alpha = cv2.resize(alpha[y : y + h, x : x + w], (W, H), interpolation=cv2.INTER_LINEAR)
        return out, framed_alpha

    def __call__(
        self, composites: np.ndarray, alphas: np.ndarray, times: list[float | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """A batch, frame by frame, in order; the batch itself, not a copy, where no frame
        is cropped (the whole frame shown, or not following)."""
        pairs = [(c, a) for c, a in zip(composites, alphas)]
        framed = [self.apply(c, a, self.step(a, t)) for (c, a), t in zip(pairs, times)]
        if all(fc is c for (c, _), (fc, _) in zip(pairs, framed)):
            return composites, alphas
        return np.stack([c for c, _ in framed]), np.stack([a for _, a in framed])


def _extent(mass: np.ndarray) -> tuple[float, float]:
    """The 2nd and 98th percentiles of where ``mass`` lies along its axis (first, last+1)."""
    cum = np.cumsum(mass, dtype=np.float64)
    total = cum[-1]
    first = int(np.searchsorted(cum, 0.02 * total))
    last = int(np.searchsorted(cum, 0.98 * total))
    return float(first), float(last + 1)
