"""``--background``: an image, a video (looped), a colour, a blur, or none.

Images and video frames are scaled to cover the frame and centre-cropped, the
way a wallpaper fills a screen, so nothing is stretched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import P3MError
from ..graph import Background
from .frames import IMAGE_SUFFIXES, read_rgb
from .hdr import tone_mapper_for

COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "green": (0, 177, 64),  # chroma-key green, what editors key on
    "blue": (0, 71, 187),  # chroma-key blue
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
}
HELP = "an image, a video, a colour (#RRGGBB or a name), blur[:strength] or none"


@dataclass(frozen=True)
class BackgroundChoice:
    """What ``--background`` asked for."""

    kind: str  # "image" | "video" | "color" | "blur" | "none"
    path: Path | None = None
    color: tuple[int, int, int] = (0, 0, 0)
    strength: int = 16

    @property
    def graph_kind(self) -> Background:
        """The frame graph's background input for this choice (none composites over black)."""
        return {"image": "image", "video": "image", "color": "color", "none": "color", "blur": "blur"}[self.kind]

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.kind} {self.path.name}"
        if self.kind == "color":
            r, g, b = self.color
            return f"colour #{r:02x}{g:02x}{b:02x}"
        return f"blur:{self.strength}" if self.kind == "blur" else self.kind


def parse_colour(text: str) -> tuple[int, int, int] | None:
    t = text.strip().lower()
    if t in COLOURS:
        return COLOURS[t]
    if t.startswith("#") and len(t) in (4, 7):
        digits = t[1:] if len(t) == 7 else "".join(c * 2 for c in t[1:])
        try:
            return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
        except ValueError:
            return None
    return None


def parse_background(text: str) -> BackgroundChoice:
    """Parse ``--background``; files must exist, everything else must be well formed."""
    t = text.strip()
    if t.lower() == "none":
        return BackgroundChoice("none")
    if t.lower() == "blur" or t.lower().startswith("blur:"):
        _, _, n = t.partition(":")
        if n and (not n.isdigit() or not 1 <= int(n) <= 128):
            raise P3MError(f"blur strength must be a whole number from 1 to 128, not {n!r} (e.g. blur:16)")
        return BackgroundChoice("blur", strength=int(n) if n else 16)
    colour = parse_colour(t)
    if colour is not None:
        return BackgroundChoice("color", color=colour)
    path = Path(t).expanduser()
    if path.is_file():
        return BackgroundChoice("image" if path.suffix.lower() in IMAGE_SUFFIXES else "video", path=path)
    raise P3MError(f"background {text!r} is not a file that exists; give {HELP}")


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``image`` (H, W, 3) to cover width x height and centre-crop it."""
    import cv2

    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    x, y = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(resized[y : y + height, x : x + width])


class BackgroundFeed:
    """Background input for the frame graph, frame by frame, at the frame size."""

    def __init__(self, choice: BackgroundChoice, width: int, height: int) -> None:
        self.choice = choice
        self.width, self.height = width, height
        self._still: np.ndarray | None = None
        self._video: Iterator[np.ndarray] | None = None
        if choice.kind == "image":
            self._still = cover(read_image(choice.path), width, height)
        elif choice.kind == "video":
            self._video = self._loop(choice.path)
            self._still = next(self._video)  # fails here, at start, if the video is unreadable

    @property
    def moving(self) -> bool:
        return self._video is not None

    def peek(self) -> np.ndarray | tuple[int, int, int] | None:
        """The background the next frame gets, without moving a video on."""
        return self.choice.color if self.choice.kind in ("color", "none") else self._still

    def value(self, count: int = 1) -> np.ndarray | tuple[int, int, int] | None:
        """What to pass to ``Backend.set_background`` for the next ``count`` frames
        (None where the graph has no background input)."""
        kind = self.choice.kind
        if kind in ("color", "none"):
            return self.choice.color
        if kind == "blur":
            return None
        if self._video is None:
            return self._still
        frames = [self._still] + [next(self._video) for _ in range(count - 1)]
        self._still = next(self._video)
        return np.stack(frames)

    def _loop(self, path: Path) -> Iterator[np.ndarray]:
        import av

        while True:
            try:
                container = av.open(str(path))
            except (av.error.FFmpegError, OSError) as e:
                raise P3MError(f"background {path} cannot be read ({e}); give {HELP}") from e
            with container:
                if not container.streams.video:
                    raise P3MError(f"background {path} has no video stream; give {HELP}")
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                n, tone_mapper = 0, None
                for f in container.decode(stream):
                    if n == 0:
                        tone_mapper = tone_mapper_for(f)  # an HDR clip as background: SDR, as sources do
                    n += 1
                    rgb = tone_mapper.rgb(f) if tone_mapper else f.to_ndarray(format="rgb24")
                    yield cover(rgb, self.width, self.height)
            if n == 0:
                raise P3MError(f"background {path} has no frames; give {HELP}")


def read_image(path: Path | None) -> np.ndarray:
    """An RGB uint8 image, or a one-line error."""
    img = read_rgb(path) if path is not None else None
    if img is None:
        raise P3MError(f"background {path} cannot be read as an image; give {HELP}")
    return img
