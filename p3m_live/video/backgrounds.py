"""``--background``: an image, a video (looped), a colour, a blur, or none.

Images and video frames are scaled to cover the frame and centre-cropped, the
way a wallpaper fills a screen, so nothing is stretched; or, with ``--background-fit
contain``, scaled to fit inside it, whole, the margins showing the room blurred.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import P3MError
from ..spec import Background, rgb_to_planes
from .frames import (
    IMAGE_SUFFIXES,
    decoded_rgb,
    jpeg_size,
    media_files,
    png_chunk_before_pixels,
    quarter_turns,
    read_rgb,
    rotate_planes,
)
from .hdr import tone_mapper_for

log = logging.getLogger("p3m_live")

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
HELP = "an image, a video, a folder of them, a colour (#RRGGBB or a name), blur[:strength] or none"
# What a folder of backgrounds offers besides images (other files in it, such as notes or
# thumbnails, are passed over).
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mxf", ".gif", ".apng"}
FITS = ("cover", "contain")


@dataclass(frozen=True)
class BackgroundChoice:
    """What ``--background`` asked for."""

    kind: str  # "image" | "video" | "color" | "blur" | "none"; or "mix", the graph of them all
    path: Path | None = None
    color: tuple[int, int, int] = (0, 0, 0)
    strength: int = 16  # a blur's; a transparent image's shows the room blurred this much
    transparent: bool = False  # an image or video with transparency (a logo): over the blurred room
    fit: str = "cover"  # an image's or video's: "cover" (filling, cropped) or "contain" (whole, margins transparent)
    # An image's height, width (upright) and whether it is partly transparent itself, as read
    # when it was checked: no second decode to settle its fit (see settle_fit).
    facts: tuple[int, int, bool] | None = None

    @property
    def graph_kind(self) -> Background:
        """The frame graph's background input for this choice (none composites over black; a
        transparent image is the "mix" graph's, its alpha the weight over the blur)."""
        if self.transparent:
            return "mix"
        kinds = {"image": "image", "video": "image", "color": "color", "none": "color", "blur": "blur", "mix": "mix"}
        return kinds[self.kind]  # type: ignore[return-value]

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.kind} {self.path.name}" + (" (contained)" if self.fit == "contain" else "")
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


def parse_background(text: str, fit: str = "cover") -> BackgroundChoice:
    """Parse ``--background``; files must exist, everything else must be well formed. An
    image or video ``fit`` inside the frame ("contain") has transparent margins wherever
    its shape differs from the frame's, so it runs as a transparent one, over the blurred
    room (the shape is not known here: a live camera's size is settled later)."""
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
    if t.startswith("#") and not path.is_file():
        raise P3MError(
            f"background {text!r} is not a colour: write #RRGGBB (or #RGB) in hex digits, or a name like red"
        )
    contain = fit == "contain"
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not is_animated(path):
        facts = _checked_image(path)
        return BackgroundChoice("image", path, transparent=facts[2] or contain, fit=fit, facts=facts)
    if path.is_file():
        return BackgroundChoice("video", path, transparent=contain or _video_is_transparent(path), fit=fit)
    raise P3MError(f"background {text!r} is not a file that exists; give {HELP}")


def _checked_image(path: Path) -> tuple[int, int, bool]:
    """An image background's upright height and width, and whether it is partly transparent,
    read (a damaged one fails here) as cheaply as they are exact: a JPEG, never transparent,
    at 1/8 of its size (a 12-megapixel photo: 3 times faster; a folder of them adds up),
    its exact size from its header, turned as the small picture shows it is; anything else,
    or a JPEG so nearly square that the small picture cannot tell, whole."""
    stored = jpeg_size(path)
    if stored is not None:
        small = read_image(path, reduce=8).shape[:2]
        width, height = stored
        upright = {
            (rows, cols) for rows, cols in ((height, width), (width, height)) if (-(-rows // 8), -(-cols // 8)) == small
        }
        if len(upright) == 1:
            return (*upright.pop(), False)
    h, w, channels = read_image(path).shape
    return h, w, channels == 4


def parse_backgrounds(text: str, fit: str = "cover") -> list[BackgroundChoice]:
    """``--background``, where a folder stands for every image and video in it, in name
    order (``2.jpg`` before ``10.jpg``); one that cannot be read is passed over with a
    warning, as damaged images in an input folder are."""
    folder = Path(text.strip()).expanduser()
    if not folder.is_dir():
        return [parse_background(text, fit)]
    media = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    choices = []
    for path in media_files(folder, media):
        try:
            choices.append(parse_background(str(path), fit))
        except P3MError as e:
            log.warning("background %s is left out: %s", path.name, e)
    if not choices:
        kinds = ", ".join(sorted(media))
        raise P3MError(f"background folder {folder} holds no image or video that can be read ({kinds})")
    return choices


def fit_to_frame(
    image: np.ndarray, width: int, height: int, sar: Fraction = Fraction(1), fit: str = "cover"
) -> np.ndarray:
    """Scale ``image`` (H, W, 3, or RGBA) to cover width x height and centre-crop it; or,
    with ``fit="contain"``, to fit inside it, centred, as RGBA with transparent margins. For
    anamorphic frames (pixels ``sar`` times as wide as high) it is squeezed as their pixels
    are first, so that it shows in its own shape where the frames do. RGBA is scaled with
    its colours premultiplied, so that the colour of what is transparent does not bleed
    into the edges of what is not."""
    contain = fit == "contain"
    if contain and image.shape[2] == 3:
        image = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    if image.shape[2] == 4:
        a = image[..., 3:].astype(np.float32) / 255
        scaled = _scaled(np.dstack([image[..., :3] * a, a * 255]), width, height, sar, contain)
        weight = scaled[..., 3:] / 255
        colour = np.where(weight > 0, scaled[..., :3] / np.maximum(weight, 1e-6), 0)
        return np.dstack([colour, scaled[..., 3:]]).round().clip(0, 255).astype(np.uint8)
    return _scaled(image, width, height, sar, contain)


def _scaled(image: np.ndarray, width: int, height: int, sar: Fraction, contain: bool) -> np.ndarray:
    """``image`` scaled to width x height: covering it and centre-cropped, or (``contain``)
    inside it and centred on zeros."""
    import cv2

    h, w = image.shape[:2]
    if sar != 1:
        squeezed = max(1, round(w / sar))
        image = cv2.resize(image, (squeezed, h), interpolation=cv2.INTER_AREA if squeezed < w else cv2.INTER_LINEAR)
        h, w = image.shape[:2]
    if contain:
        scale = min(width / w, height / h)
        nw, nh = _contained(w, h, width, height)
    else:
        scale = max(width / w, height / h)
        nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp).reshape(nh, nw, -1)
    if contain:
        out = np.zeros((height, width, resized.shape[2]), resized.dtype)
        x, y = (width - nw) // 2, (height - nh) // 2
        out[y : y + nh, x : x + nw] = resized
        return out
    x, y = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(resized[y : y + height, x : x + width])


def _contained(w: int, h: int, width: int, height: int) -> tuple[int, int]:
    """The size a w x h picture is scaled to, to fit inside width x height whole."""
    scale = min(width / w, height / h)
    return min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))


def settle_fit(choice: BackgroundChoice, width: int, height: int, sar: Fraction = Fraction(1)) -> BackgroundChoice:
    """``choice`` for frames of this size, now that it is known: a contained image or video
    of the frame's own shape fills it, with no margins for the room to show in, so it is a
    covering one, on its own kind of graph rather than the mix graph (a quarter less work
    on CPUs), and transparent only if it is so itself."""
    if choice.fit != "contain" or choice.path is None:
        return choice
    facts = choice.facts if choice.kind == "image" else _first_frame(choice.path)
    if facts is None:
        return choice  # (opening it says why)
    h, w, alpha = facts
    if _contained(max(1, round(w / sar)), h, width, height) != (width, height):
        return choice
    return replace(choice, fit="cover", transparent=alpha)


# A video background's clock follows the frames' own times. A frame time that goes back (a
# new source), is missing, or lands further than this past the background's next frame (a
# live source's clock jumping on a reopen) moves the background on by one frame and restarts
# its clock there, so the matting thread never decodes seconds of background to catch up.
CLOCK_JUMP = 0.25  # seconds

Pair = tuple[np.ndarray, np.ndarray | None]  # RGB (or RGBA), and I420 planes (then alpha) for a planar graph


class _Picture:
    """A video background's frame, made (turned, scaled, converted) ahead on the feed's thread
    where the frames' clock will show it, else only if it is asked for after all."""

    def __init__(self, make: Callable[[], Pair], ahead: bool) -> None:
        self._make: Callable[[], Pair] | None = make
        self._pair: Pair | None = make() if ahead else None

    @property
    def ready(self) -> bool:
        return self._pair is not None

    def pair(self) -> Pair:
        if self._pair is None:
            self._pair = self._make()
        self._make = None  # the decoded frame goes
        return self._pair


class BackgroundFeed:
    """Background input for the frame graph, frame by frame, at the frame size.

    A video is decoded, turned upright, scaled and (for a graph that composites on the
    YUV planes, ``planes=(matrix, full_range)``) converted to I420 ahead of time on a thread
    of its own, so none of it waits in line with inference. It plays at its own speed on
    the frames' clock (a 24 fps background behind 60 fps frames shows each of its frames
    for 2.5 frames) and loops. A background faster than the frames (60 fps behind 30) has
    only the frames made that the frames' clock will show: the matting thread says where its
    clock is and how fast it goes, and a frame the guess missed is made when it is asked for.
    ``peek`` always gives RGB (privacy frames use it); ``value`` gives what
    ``Backend.set_background`` takes."""

    def __init__(
        self,
        choice: BackgroundChoice,
        width: int,
        height: int,
        planes: tuple[str, bool] | None = None,
        sar: Fraction = Fraction(1),
    ) -> None:
        self.choice = choice
        self.width, self.height, self.sar = width, height, sar
        self.planes = planes
        self._still: Pair | None = None  # an image
        self._video: _Prefetch | None = None
        if choice.kind == "image":
            self._still = self._fitted(read_image(choice.path, self._reduction()))
        elif choice.kind == "video":
            # The background's frames decoded, made ahead on its thread, and made late on the
            # matting thread (where the guess of the frames' clock missed).
            self.decoded = self.made_ahead = self.made_late = 0
            self._hint: tuple[float, float] | None = None  # (background time asked for last, step between asks)
            self._video = _Prefetch(self._loop(choice.path), depth=8)
            self._current: tuple[float, _Picture] = next(self._video)  # fails here, at start, if unreadable
            self._next: tuple[float, _Picture] = next(self._video)
            self._origin: float | None = None  # the frame time at which the background's time is 0
            self._last: float | None = None  # the last frame time asked for
            self._step: float | None = None  # how far apart the frames' times are, smoothed
            self._started = False

    def _reduction(self) -> int:
        """How many times smaller (1, 2, 4 or 8) an image can be decoded and still be scaled
        down to the frame, never up: a photo of 4000x3000 for 1280x720, 2. Both of its sides
        keep at least the size they are scaled to (its width after an anamorphic squeeze)."""
        if self.choice.facts is None:
            return 1
        h, w, _ = self.choice.facts
        wide = w / self.sar  # (its width in the frame's pixels)
        pick = min if self.choice.fit == "contain" else max
        scale = pick(self.width / wide, self.height / h)
        return next((k for k in (8, 4, 2) if k * scale <= min(1.0, float(self.sar))), 1)

    def _fitted(self, image: np.ndarray) -> Pair:
        """An upright image or video frame (RGB or RGBA), scaled as asked to the frame."""
        return self._pair(fit_to_frame(image, self.width, self.height, self.sar, self.choice.fit))

    def _pair(self, rgb: np.ndarray) -> Pair:
        """An RGB frame and, for a planar graph, its I420 planes; RGBA and, for a planar
        graph, its I420 planes followed by its alpha (the "mix" graph's weight plane)."""
        return rgb, (rgb_to_planes(rgb[None], *self.planes)[0] if self.planes else None)

    @property
    def moving(self) -> bool:
        return self._video is not None

    def peek(self) -> np.ndarray | tuple[int, int, int] | None:
        """The background shown now (RGB, or RGBA for a transparent image), without moving a
        video on."""
        if self.choice.kind in ("color", "none"):
            return self.choice.color
        if self._video is not None:
            return self._current[1].pair()[0]
        return None if self._still is None else self._still[0]

    def value(self, times: Sequence[float | None] = (None,)) -> np.ndarray | tuple[int, int, int] | None:
        """What to pass to ``Backend.set_background`` for frames at ``times`` (seconds; None
        where a frame has no time, which moves a video on by one frame): RGB, or I420 planes
        for a planar graph; None where the graph has no background input."""
        kind = self.choice.kind
        if kind in ("color", "none"):
            return self.choice.color
        if kind == "blur":
            return None
        pick = 1 if self.planes else 0
        if self._video is None:
            return self._still[pick]
        return np.stack([self._at(t)[pick] for t in times])

    def _at(self, t: float | None) -> Pair:
        """The video background's frame for a frame at time ``t`` (see ``CLOCK_JUMP``)."""
        on_clock = (
            self._started
            and t is not None
            and self._origin is not None
            and t >= self._last
            and t - self._origin <= self._next[0] + CLOCK_JUMP
        )
        if on_clock:
            if t > self._last:
                self._step = t - self._last if self._step is None else 0.8 * self._step + 0.2 * (t - self._last)
            while self._next[0] <= t - self._origin + 1e-6:
                self._current, self._next = self._next, next(self._video)
        else:
            if self._started:
                self._current, self._next = self._next, next(self._video)
            self._origin = None if t is None else t - self._current[0]
        self._started, self._last = True, t
        self._hint = None if self._origin is None or self._step is None else (t - self._origin, self._step)
        self.made_late += not self._current[1].ready
        return self._current[1].pair()

    def _shown(self, begin: float, end: float) -> bool:
        """Whether the frames' clock will ask for the background between ``begin`` and ``end``
        (its times), guessed from where it is and its step; with no guess, yes."""
        hint = self._hint
        if hint is None:
            return True
        asked, step = hint
        k = max(0, math.ceil((begin - asked) / step - 1e-9))  # the first ask at or after begin
        return asked + k * step < end - 1e-9

    def close(self) -> None:
        """Stop reading a video background (its thread ends)."""
        if self._video is not None:
            self._video.close()

    def _loop(self, path: Path) -> Iterator[tuple[float, _Picture]]:
        """The video's frames with their times from its start, over and over: each pass
        starts where the last one ended (its last frame's time plus that frame's duration).
        A frame is handed on once the next one is decoded, which says until when it shows."""
        frames = self._webp_frames if is_animated_webp(path) else self._av_frames
        offset, pending = 0.0, None
        while True:
            first = last = None
            with contextlib.closing(frames(path)) as each:  # (a file closes with the pass)
                for t, duration, make in each:
                    first = t if first is None else first
                    last, held = t, duration
                    shown_from = offset + max(t - first, 0.0)
                    if pending is not None:
                        yield self._picture(*pending, until=shown_from)
                    pending = (shown_from, make)
                    self.decoded += 1
            if first is None:
                raise P3MError(f"background {path} has no frames; give {HELP}")
            offset += last - first + held

    def _av_frames(self, path: Path) -> Iterator[tuple[float, float, Callable[[], Pair]]]:
        """One pass over a video file with PyAV: each frame's time, how long a frame lasts,
        and how to make it into a background (SDR, upright, covering the frame)."""
        import av

        try:
            container = av.open(str(path))
        except (av.error.FFmpegError, OSError) as e:
            raise P3MError(f"background {path} cannot be read ({e}); give {HELP}") from e
        with container:
            if not container.streams.video:
                raise P3MError(f"background {path} has no video stream; give {HELP}")
            stream = container.streams.video[0]
            step = 1 / float(stream.average_rate or stream.guessed_rate or 25)
            last, tone_mapper = None, None
            for f in _decoded(container):
                if last is None:
                    tone_mapper = tone_mapper_for(f)  # an HDR clip as background: SDR, as sources do
                last = f.time if f.time is not None else (0.0 if last is None else last + step)
                yield last, step, self._maker(f, tone_mapper)

    def _webp_frames(self, path: Path) -> Iterator[tuple[float, float, Callable[[], Pair]]]:
        """One pass over an animated WebP, which FFmpeg's WebP decoder cannot read: OpenCV
        decodes its frames (whole canvases) at once, so one too big to hold is refused."""
        t = 0.0
        for image, duration in read_webp_animation(path):
            rgb = image if self.choice.transparent else image[..., :3]
            yield t, duration, lambda rgb=rgb: self._fitted(rgb)
            t += duration

    def _picture(self, shown_from: float, make: Callable[[], Pair], until: float) -> tuple[float, _Picture]:
        ahead = self._shown(shown_from, until)
        self.made_ahead += ahead
        return shown_from, _Picture(make, ahead)

    def _maker(self, f, tone_mapper) -> Callable[[], Pair]:
        """How to make a decoded frame into a background: SDR, upright, covering the frame."""

        def make() -> Pair:
            if self.choice.transparent:  # (an HDR overlay: its colours tone-mapped, its alpha as it is)
                rgba = decoded_rgb(f, alpha=True)
                rgb = np.dstack([tone_mapper.rgb(f), rgba[..., 3]]) if tone_mapper else rgba
            else:
                rgb = tone_mapper.rgb(f) if tone_mapper else decoded_rgb(f)
            upright = rotate_planes(rgb, "rgb", quarter_turns(f.rotation))  # phone clips, as inputs
            return self._fitted(upright)

        return make


class _Prefetch:
    """An iterator run ahead on a daemon thread into a bounded queue; its error, if it
    raises one, comes out of ``next`` in its place."""

    def __init__(self, items: Iterator, depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name="p3m-background", daemon=True)
        self._thread.start()

    def _run(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put((item, None)):
                    return
        except BaseException as e:  # noqa: BLE001 (handed to the consumer)
            self._put((None, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator: its file closes now, not at garbage collection

    def _put(self, entry) -> bool:
        """Queue ``entry`` unless closed first; whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self):
        item, error = self._queue.get()
        if error is not None:
            self._queue.put((None, error))  # every later call fails the same way
            raise error
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def is_animated_png(path: Path) -> bool:
    """Whether ``path`` is an animated PNG (APNG: an animated sticker), which plays as a
    video (FFmpeg's apng decoder) rather than showing its first frame: an ``acTL`` chunk
    before the first image data. One that cannot be read is not (reading it as an image
    then says why)."""
    return png_chunk_before_pixels(path, b"acTL")


def is_animated_webp(path: Path) -> bool:
    """Whether ``path`` is an animated WebP (a sticker, a GIF converted by a website): the
    animation flag of its ``VP8X`` header."""
    try:
        with open(path, "rb") as f:
            head = f.read(21)
    except OSError:
        return False
    return len(head) == 21 and head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x02)


def is_animated(path: Path) -> bool:
    """Whether an image file is animated (APNG or WebP), and so plays as a video."""
    return is_animated_png(path) or is_animated_webp(path)


# An animated WebP is decoded whole; past this many bytes of decoded frames it is refused.
WEBP_ANIMATION_BYTES = 1 << 30


def read_webp_animation(
    path: Path, count: int | None = None, limit: int = WEBP_ANIMATION_BYTES
) -> list[tuple[np.ndarray, float]]:
    """An animated WebP's frames (its first ``count``; all by default) as RGB (RGBA where
    the file has alpha) uint8 canvases, each with how many seconds it shows, or a one-line
    error. Its size is read from its header first, so that one too big to hold is refused
    before it is decoded."""
    import cv2

    layout = _webp_layout(path)
    width, height, frames = layout.width, layout.height, len(layout.frames)
    count = frames if count is None else min(count, frames)
    if width * height * 4 * count > limit:
        raise P3MError(
            f"background {path} is an animation of {frames} frames of {width}x{height}, too big to "
            f"hold decoded ({width * height * 4 * count / 2**30:.1f} GiB, more than {limit / 2**30:.1f}); "
            "make it a video (ProRes 4444 .mov, or VP9 .webm for transparency)"
        )
    if not hasattr(cv2, "imreadanimation"):
        raise P3MError(f"background {path} is an animated WebP, which needs opencv-python 4.11 or later to read")
    ok, animation = cv2.imreadanimation(str(path), 0, max(count, 1))
    if not ok or not animation.frames:
        raise P3MError(f"background {path} cannot be read as an animated WebP; give {HELP}")
    code = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGBA}
    images = [cv2.cvtColor(f, code[f.shape[2]]) for f in animation.frames]
    if images[0].shape[2] == 3 and not layout.covers_all:  # (marked opaque, but not all of it is drawn)
        images = [np.dstack([rgb, 255 * covered]) for rgb, covered in zip(images, layout.coverage())]
    durations = [max(float(d), 10.0) / 1000 for d in animation.durations]  # (0 ms frames last 10, as browsers)
    return list(zip(images, durations))


@dataclass(frozen=True)
class WebPLayout:
    """An animated WebP's canvas and where each frame is drawn on it, from its chunks: the
    ``VP8X`` canvas size and ``ANMF`` frames (x, y, width, height, and whether the frame is
    cleared to transparent after it shows)."""

    width: int
    height: int
    frames: list[tuple[int, int, int, int, bool]]

    def coverage(self) -> Iterator[np.ndarray]:
        """Per frame, the canvas pixels something has been drawn on (uint8 0 or 1). A file
        whose drawn parts are all opaque is marked opaque, even where its frames leave the
        canvas bare (an encoder crops a sticker's transparent margins off): those parts are
        transparent, as browsers show them, not the black a decoder leaves there."""
        covered = np.zeros((self.height, self.width), np.uint8)
        cleared = None
        for x, y, w, h, dispose in self.frames:
            if cleared is not None:
                covered[cleared] = 0
            covered[y : y + h, x : x + w] = 1
            cleared = (slice(y, y + h), slice(x, x + w)) if dispose else None
            yield covered.copy()

    @property
    def covers_all(self) -> bool:
        return all(c.all() for c in self.coverage())


def _webp_layout(path: Path) -> WebPLayout:
    """An animated WebP's :class:`WebPLayout`, read from its chunks (nothing is decoded)."""
    with open(path, "rb") as f:
        data = f.read()
    width = int.from_bytes(data[24:27], "little") + 1
    height = int.from_bytes(data[27:30], "little") + 1
    frames, at = [], 12
    while at + 8 <= len(data):
        size = int.from_bytes(data[at + 4 : at + 8], "little")
        if data[at : at + 4] == b"ANMF" and size >= 16 and at + 24 <= len(data):  # (a cut file: what is whole)
            head = data[at + 8 : at + 24]
            x, y = (2 * int.from_bytes(head[i : i + 3], "little") for i in (0, 3))  # (stored halved)
            w, h = (1 + int.from_bytes(head[i : i + 3], "little") for i in (6, 9))  # (stored minus one)
            frames.append((x, y, w, h, bool(head[15] & 0x01)))
        at += 8 + size + (size & 1)  # (chunks are padded to an even size)
    return WebPLayout(width, height, frames)


def _decoded(container) -> Iterator:
    """The frames of ``container``'s first video stream, with their alpha where they have
    one: a WebM's VP9 alpha is a side stream that only libvpx's decoder reads (FFmpeg's own
    drops it)."""
    import av

    stream = container.streams.video[0]
    if stream.codec_context.name != "vp9" or stream.metadata.get("alpha_mode") != "1":
        stream.thread_type = "AUTO"
        yield from container.decode(stream)
        return
    decoder = av.CodecContext.create("libvpx-vp9", "r")
    decoder.thread_type = "AUTO"
    for packet in container.demux(stream):
        yield from decoder.decode(packet)  # (the last, empty packet flushes it)


def _video_is_transparent(path: Path) -> bool:
    """Whether a video background has alpha with something transparent in its first frame
    (a lower third, an animated logo: ProRes 4444, VP9 or FFV1 with alpha, QuickTime
    Animation, GIF). One that does not is shown as an opaque video; one that cannot be read
    says so when it is opened."""
    facts = _first_frame(path)
    return facts is not None and facts[2]


def _first_frame(path: Path) -> tuple[int, int, bool] | None:
    """A video background's first frame: its upright height and width, and whether it
    has something transparent; None when it cannot be read."""
    import av

    if is_animated_webp(path):
        try:
            first = read_webp_animation(path, count=1)[0][0]
        except P3MError:
            return None
        # (a later frame may leave the canvas bare; its layout is read again only when the first frame does not)
        seen = first.shape[2] == 4 and (bool(first[..., 3].min() < 255) or not _webp_layout(path).covers_all)
        return *first.shape[:2], seen
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            frame = next(_decoded(container), None)
            if frame is None:
                return None
            h, w = (frame.width, frame.height) if quarter_turns(frame.rotation) % 2 else (frame.height, frame.width)
            alpha = any(c.is_alpha for c in frame.format.components)
            return h, w, alpha and bool(frame.to_ndarray(format="rgba")[..., 3].min() < 255)
    except (av.error.FFmpegError, OSError, ValueError):
        return None


def read_image(path: Path | None, reduce: int = 1) -> np.ndarray:
    """An RGB uint8 image (RGBA where it is partly transparent), or a one-line error;
    ``reduce`` as ``read_rgb`` takes it."""
    img = read_rgb(path, alpha=True, reduce=reduce) if path is not None else None
    if img is None:
        raise P3MError(f"background {path} cannot be read as an image; give {HELP}")
    return img
