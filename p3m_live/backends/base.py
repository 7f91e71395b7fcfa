"""The one backend interface: open for a graph spec, process frames, close.

A backend runs the frame graph (see :mod:`p3m_live.graph`) and nothing else:
load, bind buffers, run, copy back. The recurrent state is an explicit graph
input/output pair (``state_alpha`` -> ``state_alpha_out``); the base class feeds
each call's state output into the next call, and :meth:`Backend.reset` starts
a new shot. The background is sticky: set it once (or per frame for a video).
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ..errors import P3MError
from ..spec import GraphSpec, frame_shape, rgb_to_planes

_NOTHING = object()  # no background set yet (None is one: a mix graph's blur)

# What a call returns: (composite, alpha), and where the spec has a foreground track its
# colours third (RGB uint8 (B, H, W, 3)): the graph's outputs, less the state, in order.
Outputs = tuple[np.ndarray, ...]


class Backend(ABC):
    name: str = "backend"

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self._background: np.ndarray | None = None
        self._background_given: object = _NOTHING  # what set_background() got last, to skip repeats
        self.reset()

    # -- state and inputs, shared by every backend

    def reset(self) -> None:
        """Forget the temporal history (scene cut, new source)."""
        self._state = np.full(self.spec.state_shape, -1.0, dtype=np.float32)
        self._fresh_state = True  # the next call must upload it (a device-side chain is broken)

    @property
    def state(self) -> np.ndarray:
        """The recurrent state the next call starts from (the previous smoothed alpha)."""
        return self._host_state(self._state)

    @state.setter
    def state(self, value: np.ndarray) -> None:
        self._state = value
        self._fresh_state = True

    def set_background(self, background: np.ndarray | tuple[int, int, int] | None) -> None:
        """RGB uint8 image (H, W, 3) or (1|B, H, W, 3) for "image" (one image serves the whole
        batch), or for a planar graph also I420 planes (H*3/2, W) or (1|B, H*3/2, W) in the
        stream's matrix and range; an (r, g, b) colour for "color". A "mix" graph takes any
        of these, RGBA (a transparent image, over the blur of the frame) or its I420 planes
        then its alpha, or None for the blur of the frame."""
        if background is self._background_given:
            return  # the same still image again: nothing to copy
        s = self.spec
        if s.background == "blur":
            raise P3MError("a blur background is computed from the frame; there is nothing to set")
        if s.background == "color":
            bg = np.asarray(background, dtype=np.uint8)
            if bg.size != 3:
                raise P3MError(f"a colour background needs 3 values (r, g, b), got shape {bg.shape}")
            bg = bg.reshape(1, 3)
        else:
            bg = self._image(background)
        self._background = np.array(bg, dtype=np.uint8, order="C")  # a writable copy (broadcasts are views)
        self._background_given = background

    def _image(self, background: np.ndarray | tuple[int, int, int] | None) -> np.ndarray:
        """The "image" or "mix" input for ``background``, one per frame of the batch; for
        "mix" with its weight: RGBA's alpha (a transparent image), else 255 for an image or a
        colour (a flat image), 0 for None (blur)."""
        s = self.spec
        mix, blur = s.background == "mix", background is None
        if mix and (blur or np.size(background) == 3):
            colour = np.asarray((0, 0, 0) if blur else background, np.uint8)
            background = np.broadcast_to(colour, (s.height, s.width, 3))
        bg = np.asarray(background, dtype=np.uint8)
        planes = frame_shape("i420", 1, s.height, s.width)[1:]
        weighted = (planes[0] + s.height, s.width)  # the I420 planes, then the weight plane
        rgb, rgba = (s.height, s.width, 3), (s.height, s.width, 4)
        if s.planar and (bg.shape[-2:] == planes or (mix and bg.shape[-2:] == weighted)):
            bg = bg.reshape(-1, *bg.shape[-2:])  # already I420 (a feed made it ahead of time)
        else:
            if bg.ndim == 3:
                bg = bg[None]
            if not (bg.shape[1:] == rgb or (mix and bg.shape[1:] == rgba)):
                raise P3MError(f"background must be {s.width}x{s.height} RGB, got shape {bg.shape}")
            if s.planar:  # the graph takes it as I420 (GraphSpec.background_shape), alpha after
                bg = rgb_to_planes(bg, s.matrix, s.full_range)
        if bg.shape[0] not in (1, s.batch):
            raise P3MError(f"background must be one image or {s.batch}, got {bg.shape[0]}")
        if mix and bg.shape[1:] not in (weighted, rgba):  # a weight for what has none
            shape = (bg.shape[0], s.height, s.width) if s.planar else (*bg.shape[:3], 1)
            bg = np.concatenate([bg, np.full(shape, 0 if blur else 255, np.uint8)], axis=1 if s.planar else 3)
        return np.broadcast_to(bg, (s.batch, *bg.shape[1:]))

    def _check_frame(self, frame: np.ndarray) -> np.ndarray:
        s = self.spec
        want = frame_shape(s.in_format, s.batch, s.height, s.width)
        if frame.ndim == len(want) - 1:
            frame = frame[None]
        if frame.shape != want or frame.dtype != np.uint8:
            raise P3MError(f"frame must be uint8 {want} for {s.in_format}, got {frame.dtype} {frame.shape}")
        return np.ascontiguousarray(frame)

    def _inputs(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        inputs = {"frame": self._check_frame(frame)}
        if self.spec.background != "blur":
            if self._background is None:
                raise P3MError("no background set: call set_background() first")
            inputs["background"] = self._background
        return inputs

    def process(self, frame: np.ndarray) -> Outputs:
        """One frame (or batch): returns (composite in the output format, alpha uint8 (B, H, W)),
        and the foreground track's colours where the spec has one (see :data:`Outputs`)."""
        if self._in_flight:
            raise P3MError("process() while submitted calls are pending: flush() first")
        inputs = self._inputs(frame)
        inputs["state_alpha"] = self._state
        out = self._run(inputs)
        self._fresh_state = False
        return self._take(out)

    # -- running ahead: GPU backends keep one call in flight (see p3m_live.trt.slots)

    pipe = None  # a SlotPipeline where the backend has one; others run each call at once
    _in_flight = 0

    def submit(self, frame: np.ndarray) -> list[Outputs]:
        """Queue one frame (or batch); return the results that are ready, oldest first.

        With a slot pipeline, the call's upload overlaps the previous call's compute and
        the state stays on the device between calls; without one, this is ``process``.
        Results always come back in submission order; :meth:`flush` returns the rest."""
        if self.pipe is None:
            return [self.process(frame)]
        inputs = {k: v for k, v in self._inputs(frame).items() if k in self.pipe.inputs}
        if "state_alpha" in self.pipe.inputs:
            # A fresh state (first call, reset) goes up; otherwise the device keeps the chain.
            inputs["state_alpha"] = self._state if self._fresh_state else None
        self._fresh_state = False
        ready = self._pipe_call(self.pipe.submit, inputs)
        self._in_flight += 1
        return [] if ready is None else [self._take(ready)]

    def flush(self) -> list[Outputs]:
        """Results of every submitted call not returned yet, oldest first."""
        if self.pipe is None or not self._in_flight:
            return []
        return [self._take(out) for out in self._pipe_call(self.pipe.flush)]

    def _host_state(self, state) -> np.ndarray:
        """Hook for backends whose ``_run`` returns the state as a device value, passed back to
        the next ``_run`` as it is: a host copy, made only when someone asks for it."""
        return state

    def _pipe_call(self, fn, *args):
        """Hook for backends that must wrap pipeline calls (a pycuda context push)."""
        return fn(*args)

    def _take(self, out: dict[str, np.ndarray]) -> Outputs:
        if self.pipe is not None and self._in_flight:
            self._in_flight -= 1
        self._state = out["state_alpha_out"]
        track = (out["foreground"],) if self.spec.foreground_track else ()
        return out["composite"], out["alpha"], *track

    # -- what each backend provides

    @abstractmethod
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph once on host arrays; return host arrays by output name."""

    def close(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release device memory and sessions."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def device_index(device: str) -> int:
    """The GPU number of a device name: "cuda" -> 0, "cuda:1" -> 1."""
    return int(device.partition(":")[2] or 0)


def file_digest(path: str | os.PathLike, length: int | None = 16) -> str:
    """SHA-256 of a file, shortened to ``length`` hex digits (checkpoint identity for caches;
    ``None`` for the whole digest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()[:length]


def spec_key(spec: GraphSpec, weights: Path) -> str:
    """Cache key of an exported graph: the spec, the graph version and the checkpoint."""
    items = sorted(spec.as_dict().items())
    text = repr(items) + file_digest(weights)
    return hashlib.sha256(text.encode()).hexdigest()[:20]
