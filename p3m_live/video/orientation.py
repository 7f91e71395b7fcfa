"""``--rotate`` and ``--mirror``: a camera mounted sideways or upside down, or seen in a mirror.

Files say how they are turned (a phone's display matrix, applied as they are
decoded); a camera does not. So the user says it, and every frame of the source
is turned (clockwise, after the file's own rotation) and flipped before anything
else sees it: the network gets an upright person, and the outputs, backgrounds
and preview are laid out for the turned size. It wraps any source, so a camera
reopened after a drop is turned the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from .frames import Frame, Layout, rotate_planes
from .sources import Item, Source

TURNS = (0, 90, 180, 270)  # --rotate, degrees clockwise


@dataclass(frozen=True)
class Orientation:
    """A quarter-turn rotation (degrees clockwise) then, with ``mirror``, a left-right flip."""

    rotate: int = 0
    mirror: bool = False

    def __post_init__(self) -> None:
        if self.rotate not in TURNS:
            raise ValueError(f"rotate must be one of {TURNS}, not {self.rotate}")

    @property
    def identity(self) -> bool:
        return self.rotate == 0 and not self.mirror

    @property
    def sideways(self) -> bool:
        """Whether width and height change places."""
        return self.rotate in (90, 270)

    def describe(self) -> str:
        """For the run's input line: "turned 90 degrees clockwise, mirrored"."""
        parts = [f"turned {self.rotate} degrees clockwise"] if self.rotate else []
        return ", ".join([*parts, "mirrored"] if self.mirror else parts)

    def layout(self, layout: Layout) -> Layout:
        """The layout of the frames once oriented. It is its own inverse (a quarter turn
        either way swaps the same sides and pixel shape): given the oriented layout, it
        is the one the source must give."""
        if not self.sideways:
            return layout
        return dataclasses.replace(layout, width=layout.height, height=layout.width, sar=1 / layout.sar)

    def frame(self, frame: Frame) -> Frame:
        data = rotate_planes(frame.data, frame.fmt, (4 - self.rotate // 90) % 4, self.mirror)
        return dataclasses.replace(frame, data=data)  # (its times and arrival kept)


class OrientedSource(Source):
    """``source`` with every frame turned and flipped as ``orientation`` says; audio and
    subtitle packets pass as they are."""

    def __init__(self, source: Source, orientation: Orientation) -> None:
        self.source = source
        self.orientation = orientation
        for name in (
            "name", "live", "paced", "rate", "time_base", "total_frames",
            "audio_streams", "subtitle_streams", "recording", "still",
        ):  # fmt: skip
            setattr(self, name, getattr(source, name))
        self.layout = orientation.layout(source.layout)

    def items(self) -> Iterator[Item]:
        for item in self.source.items():
            yield self.orientation.frame(item) if isinstance(item, Frame) else item

    def adopt(self, layout: Layout) -> str | None:
        problem = self.source.adopt(self.orientation.layout(layout))  # (its own inverse)
        if problem is None:
            self.layout = layout
        return problem

    def close(self) -> None:
        self.source.close()


def oriented(source: Source, orientation: Orientation) -> Source:
    """``source`` itself where nothing is to be turned, so the usual run pays nothing."""
    return source if orientation.identity else OrientedSource(source, orientation)
