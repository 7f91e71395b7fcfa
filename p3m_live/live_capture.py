"""The reading side of a live run: the source's frames and sound, each on the run's clock.

The source is read all the time on a thread of its own into a one-frame mailbox
(:class:`Mailbox`); a frame replaced before the matting takes it is dropped and counted.
Its audio packets, or a microphone's (read on a second thread), go into a queue that
the output thread hands to the outputs. A source or microphone that fails or ends is
reopened every few seconds, while the output thread, seeing :attr:`Capture.lost`,
shows privacy frames; one replaced with sound still on its way is closed only once the
outputs have written it (:class:`Retired`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import av

from .errors import P3MError, reason
from .live_clock import LiveClock
from .stats import RateMeter
from .video.devices import SoundSource
from .video.frames import Frame, Layout
from .video.sinks import Sink
from .video.sources import Source

log = logging.getLogger("p3m_live")

_Opened = TypeVar("_Opened")  # what an opener gives: a source or a microphone

RECONNECT_EVERY = 2.0  # seconds between attempts to reopen a lost camera or stream
SOUND_QUEUE = 2048  # audio packets waiting for the output thread (about 40 s of AAC)


class Mailbox:
    """A one-slot handover: ``put`` replaces what was not taken yet (a dropped frame)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Frame | None = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: Frame) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.received += 1
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def take(self, timeout: float) -> Frame | None:
        """The newest frame, waiting up to ``timeout`` s; None on timeout or at the end."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    @property
    def finished(self) -> bool:
        with self._cond:
            return self._closed and self._item is None


class Capture:
    """Reads ``source`` into ``box`` and its sound (or ``microphone``'s) into :attr:`sound`.

    With ``reopen`` (cameras and live streams), a source that fails or ends is not the
    end: :attr:`lost` is set while ``reopen`` is tried every ``reconnect_every`` seconds,
    and ``on_back`` is called when one opens (the temporal history is then forgotten).
    Without it, the source's end closes ``box``, and its error is kept in :attr:`errors`.
    ``layout``: the run's, which a reopened source must come back in (or be scaled to).
    ``microphone`` is reopened with ``reopen_microphone`` when it stops; the caller
    closes the one it gave.
    """

    def __init__(
        self,
        source: Source,
        box: Mailbox,
        layout: Layout,
        *,
        reopen: Callable[[], Source] | None = None,
        reconnect_every: float = RECONNECT_EVERY,
        microphone: SoundSource | None = None,
        reopen_microphone: Callable[[], SoundSource] | None = None,
        on_back: Callable[[], None] = lambda: None,
    ) -> None:
        self.current = source  # the source being read (a reconnect replaces it)
        self.box, self.layout = box, layout
        self.reopen, self.reconnect_every, self.on_back = reopen, reconnect_every, on_back
        self.microphone, self.reopen_microphone = microphone, reopen_microphone
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.rate = RateMeter()
        self.retired = Retired()  # sources and microphones replaced, with sound: closed once it is written
        self.lost = threading.Event()  # the source is gone and being reopened
        self.last_input = time.monotonic()  # when the source last gave a frame
        # The source's audio packets (a file or a stream; cameras have none), for the file and
        # stream outputs, on the run's clock like the frames (see live_clock).
        self.sound: queue.Queue = queue.Queue(maxsize=SOUND_QUEUE)
        self.clock = LiveClock(source.time_base or Fraction(1, 90000))
        self._first = source
        self._sound_of_first = _sound_of(source)  # (the outputs' tracks were made for these streams)
        self._reader = threading.Thread(target=self._capture, name="p3m-capture", daemon=True)
        self._mic = threading.Thread(target=self._listen, name="p3m-microphone", daemon=True) if microphone else None

    def start(self) -> None:
        self._reader.start()
        if self._mic is not None:
            self._mic.start()

    def join(self, timeout: float) -> None:
        """Stop reading and wait up to ``timeout`` s for each thread."""
        self.stop.set()
        self._reader.join(timeout=timeout)
        if self._mic is not None:
            self._mic.join(timeout=timeout)

    @property
    def reading(self) -> bool:
        """Whether the reader thread is still running (stuck in a dead network read, say)."""
        return self._reader.is_alive()

    def pass_sound(self, sinks: Sequence[Sink]) -> None:
        """Hand the audio packets read so far to the outputs (files and streams copy them),
        and close the replaced sources whose packets they have all written."""
        for packet in _queued(self.sound):
            if isinstance(packet, _Replaced):
                self.retired.after(packet.source, sinks)
                continue
            for sink in sinks:
                sink.write_packet(packet)
        self.retired.close_written()

    def close(self, keep_current: bool = False) -> None:
        """At the end, the outputs drained: every replaced source, and the current one unless
        ``keep_current`` or its reader has not stopped (one stuck in a dead network read is
        left to die with the process rather than closed under it)."""
        self.retired.close_all(self.sound)
        if not keep_current and not self.reading:
            self.current.close()

    def _read(self, src: Source) -> None:
        start: tuple[float, float] | None = None  # (wall clock, media time) of the first frame
        self.clock.connected(steady=not src.paced)  # (a file is paced here, to its own times)
        same_sound = src is self._first or _sound_of(src) == self._sound_of_first
        if self.microphone is None and not same_sound and self._sound_of_first:
            log.warning("the source came back with other sound; the outputs go on without it")
        with_sound = self.microphone is None and same_sound
        for item in src.items():
            if self.stop.is_set():
                return
            if not isinstance(item, Frame):
                if with_sound and (placed := self.clock.packet(item)) is not None:
                    with contextlib.suppress(queue.Full):  # (an output that stalls drops sound, not frames)
                        self.sound.put_nowait(placed)
                continue
            if not src.paced and item.time is not None:
                start = start or (time.monotonic(), item.time)
                wait = start[0] + (item.time - start[1]) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # play at the file's own speed, like ffmpeg -re
                item.captured = time.monotonic()
            self.clock.frame(item)
            self.box.put(item)
            self.last_input = time.monotonic()
            self.rate.tick()

    def _reconnect(self, why: str) -> Source | None:
        """A new source like the lost one, once one opens; None if the run stops first."""
        assert self.reopen is not None
        log.warning("%s: privacy frames until it is back; reopening every %g s", why, self.reconnect_every)
        self.lost.set()
        if self.current.audio_streams:  # its packets may still be on their way
            self._retire(self.current)
        else:
            self.current.close()  # (a camera: closed, so that it can be opened again)
        src = _reopened(self.stop, self.reconnect_every, self.reopen)
        if src is None:
            return None
        came, run = src.layout, self.layout
        if came != run:
            why = src.adopt(run)
            if why is not None:
                src.close()
                raise P3MError(f"the source came back as {came.width}x{came.height} {came.fmt}, not as before, "
                               f"and {why}; restart p3m-live")  # fmt: skip
            log.warning("the source came back as %dx%d %s: scaled to %dx%d %s, as before",
                        came.width, came.height, came.fmt, run.width, run.height, run.fmt)  # fmt: skip
        log.warning("the source is back")
        self.on_back()
        self.last_input = time.monotonic()  # (not "quiet" while its first frame is on the way)
        self.lost.clear()
        return src

    def _retire(self, src: Source | SoundSource) -> None:
        """Close ``src`` once its packets in the sound queue are written: a mark after them."""
        while not self.stop.is_set():
            with contextlib.suppress(queue.Full):
                self.sound.put(_Replaced(src), timeout=0.1)
                return
        self.retired.left.append(src)

    def _capture(self) -> None:
        try:
            while True:
                try:
                    self._read(self.current)
                    why = "the source ended"
                except (P3MError, OSError) as e:
                    if self.reopen is None:
                        raise
                    why = f"the source failed ({e})"
                if self.stop.is_set() or self.reopen is None:
                    return
                src = self._reconnect(why)
                if src is None:
                    return
                self.current = src
        except BaseException as e:  # noqa: BLE001 (reported by the output thread)
            self.errors.append(e)
        finally:
            self.box.close()

    def _listen(self) -> None:
        """The microphone's packets, on the run's clock (a timeline of its own). One that ends
        or fails (unplugged) is reopened like the source, the outputs going on without sound."""
        assert self.microphone is not None
        clock = LiveClock(self.clock.time_base, self.clock.t0, sound_only=True)
        src: SoundSource | None = self.microphone
        first = _sound_of(self.microphone)
        while src is not None:
            clock.connected()
            try:
                for packet in src.packets():
                    if self.stop.is_set():
                        return
                    if (placed := clock.packet(packet)) is not None:
                        with contextlib.suppress(queue.Full):
                            self.sound.put_nowait(placed)
                why = "ended"
            except (av.error.FFmpegError, OSError) as e:
                why = f"stopped ({reason(e)})"
            if self.stop.is_set():
                return
            if self.reopen_microphone is None:
                log.warning("%s %s; the outputs go on without sound", src.name, why)
                return
            log.warning("%s %s; the outputs go on without sound, reopening it every %g s", src.name, why,
                        self.reconnect_every)  # fmt: skip
            if src is not self.microphone:  # (the caller's is closed by the caller)
                self._retire(src)
            src = _reopened(self.stop, self.reconnect_every, self.reopen_microphone)
            if src is not None:
                if _sound_of(src) != first:
                    self._retire(src)
                    log.warning("%s came back as other sound; the outputs go on without it", src.name)
                    return
                log.warning("%s is back", src.name)


def _reopened(stop: threading.Event, every: float, opener: Callable[[], _Opened]) -> _Opened | None:
    """What ``opener`` gives once it opens, tried every ``every`` s; None if the run stops first."""
    while not stop.wait(every):
        try:
            return opener()
        except (P3MError, OSError):
            continue
    return None


@dataclass
class _Replaced:
    """In the sound queue after the last packet of a source or microphone that was replaced."""

    source: Source | SoundSource


class Retired:
    """Sources and microphones replaced in a run, with sound: each is closed once every
    output has written its packets (a packet reads its stream, which closing frees), so a
    long call with many reconnects does not keep a container open for each."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Source | SoundSource, list[threading.Event]]] = []
        self.left: list[Source | SoundSource] = []  # replaced as the run stopped: closed at the end

    def after(self, src: Source | SoundSource, sinks: Sequence[Sink]) -> None:
        """``src``'s packets are all given to ``sinks``: it is closed once they are written."""
        self.waiting.append((src, [sink.fence() for sink in sinks]))

    def close_written(self) -> None:
        written = [w for w in self.waiting if all(fence.is_set() for fence in w[1])]
        for src, _ in written:
            src.close()
        self.waiting = [w for w in self.waiting if w not in written]

    def close_all(self, sound: queue.Queue) -> None:
        """At the end, the outputs drained: every one still open, those marked in ``sound`` too."""
        self.left += [item.source for item in _queued(sound) if isinstance(item, _Replaced)]
        for src in [*(src for src, _ in self.waiting), *self.left]:
            src.close()
        self.waiting, self.left = [], []


def _queued(q: queue.Queue) -> Iterator:
    """What is in ``q`` now, taken out."""
    while True:
        try:
            yield q.get_nowait()
        except queue.Empty:
            return


def _sound_of(src: Source | SoundSource) -> list[tuple]:
    """What a source's audio streams are, to tell whether a reopened one's sound can go on
    in the outputs' tracks."""
    return [(a.index, a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels)
            for a in src.audio_streams]  # fmt: skip
