"""Live mode: the newest frame wins, and output fails closed.

The source is read all the time in its own thread into a one-frame mailbox; a
frame that is replaced before the matting loop takes it is dropped and counted.
So the output never falls behind the camera: when the model is slower than the
camera the output rate drops, not the freshness. Output is paced by the source
(one output per new frame at most), latency from decode to output is measured
for every frame, and one status line a second reports it.

Three threads: capture (the source), matting (the backend, on the newest frame)
and output (this one: sinks, preview, keys). The output thread never waits on the
backend for long: if the backend raises, returns garbage or stalls, it shows
privacy frames instead, and never the camera frame. A camera or stream that stops
(unplugged, network gone) is reopened every few seconds while the outputs carry
privacy frames, so a call keeps its virtual camera.
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
import numpy as np

from .errors import P3MError, reason
from .keys import TerminalKeys
from .live_clock import LiveClock
from .pipeline import Matting
from .privacy import PrivacyFrames
from .spec import frame_shape
from .stats import Latencies, RateMeter
from .video.devices import SoundSource
from .video.frames import Frame
from .video.preview import PreviewWindow
from .video.sinks import Sink
from .video.sources import Source

log = logging.getLogger("p3m_live")

_Opened = TypeVar("_Opened")  # what an opener gives: a source or a microphone

RECONNECT_EVERY = 2.0  # seconds between attempts to reopen a lost camera or stream
SILENCE = 1.0  # seconds without a frame from a live source (at least 10 frame intervals) before privacy frames
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


@dataclass
class LiveSummary:
    received: int
    shown: int
    dropped: int
    wall: float
    latency: Latencies
    privacy_frames: int = 0
    failures: int = 0

    def line(self) -> str:
        guard = f"; {self.privacy_frames} privacy frames in {self.failures} failures" if self.failures else ""
        return (
            f"live: {self.received} frames in, {self.shown} out, {self.dropped} dropped in {self.wall:.1f} s; "
            f"latency p50 {self.latency.percentile(50) * 1000:.0f} ms, p95 {self.latency.percentile(95) * 1000:.0f} ms"
            f"{guard}"
        )


@dataclass
class Result:
    """One matting call's outcome: outputs, or what went wrong."""

    frame: Frame
    composite: np.ndarray | None = None
    alpha: np.ndarray | None = None
    problem: str | None = None


def check_outputs(matting: Matting, composite: np.ndarray, alpha: np.ndarray) -> str | None:
    """Why these outputs must not be shown, or None if they are fine."""
    lay = matting.layout
    want_c = frame_shape("i420", 1, lay.height, lay.width)[1:]
    for name, arr, want in (("composite", composite, want_c), ("alpha", alpha, (lay.height, lay.width))):
        arr = np.asarray(arr)
        if arr.size == 0:
            return f"empty {name}"
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            return f"NaN or infinite values in the {name}"
        if arr.shape != want or arr.dtype != np.uint8:
            return f"{name} is {arr.dtype} {arr.shape}, not uint8 {want}"
    return None


class Worker(threading.Thread):
    """Runs the matting on the newest frame, off the output thread, so that a backend that
    hangs cannot hold the output: the output thread notices and shows privacy frames."""

    def __init__(self, box: Mailbox, matting: Matting) -> None:
        super().__init__(name="p3m-matting", daemon=True)
        self.box, self.matting = box, matting
        self.results: queue.Queue[Result] = queue.Queue(maxsize=2)
        self.busy_since: float | None = None
        self.switch_background = threading.Event()
        self.reset = threading.Event()  # a new source: forget the temporal history
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.reset.is_set():
                self.reset.clear()
                self.matting.backend.reset()
            if self.switch_background.is_set():
                self.switch_background.clear()
                try:
                    log.info("background: %s", self.matting.next_background())
                except Exception as e:  # noqa: BLE001 (a bad background must not end the call)
                    log.warning("cannot switch the background: %s", e)
            frame = self.box.take(timeout=0.1)
            if frame is None:
                if self.box.finished:
                    return
                continue
            self.busy_since = time.monotonic()
            try:
                composites, alphas = self.matting.process([frame])
                result = Result(frame, composites[0], alphas[0])
                result.problem = check_outputs(self.matting, result.composite, result.alpha)
            except Exception as e:  # noqa: BLE001 (shown as a privacy frame, logged, retried next frame)
                result = Result(frame, problem=f"{type(e).__name__}: {e}")
            self.busy_since = None
            try:
                self.results.put_nowait(result)
            except queue.Full:  # the output thread is behind; keep the newest
                with contextlib.suppress(queue.Empty):
                    self.results.get_nowait()
                self.results.put_nowait(result)


class Guard:
    """Fail-closed output: good composites pass; failures and stalls become privacy frames,
    each episode logged once, with the recovery."""

    def __init__(self, matting: Matting) -> None:
        self.privacy = PrivacyFrames(matting)
        self.failing: str | None = None
        self.privacy_frames = 0
        self.failures = 0

    started = False  # no good composite yet: a slow first call is warm-up, not a failure

    def wait(self) -> np.ndarray:
        """Before the first matte (the backend warming up): privacy frames, said once."""
        if self.privacy_frames == 0:
            log.info("waiting for the first matte (the backend is warming up); privacy frames until then")
        self.privacy_frames += 1
        return self.privacy.frame()

    def good(self, composite: np.ndarray) -> np.ndarray:
        if self.failing is not None:
            log.warning("matting recovered; live output is back")
            self.failing = None
        self.started = True
        self.privacy.good(composite)
        return composite

    def lost(self) -> np.ndarray:
        """The source is gone for now (the capture thread says so once): privacy frames."""
        self.privacy_frames += 1
        return self.privacy.frame()

    def fail(self, problem: str) -> np.ndarray:
        if self.failing is None:
            self.failures += 1
            log.warning("matting failed (%s): showing the privacy frame, never the camera", problem)
        self.failing = problem
        self.privacy_frames += 1
        return self.privacy.frame()


def run_live(
    source: Source,
    matting: Matting,
    sinks: Sequence[Sink],
    *,
    preview: PreviewWindow | None = None,
    keys: TerminalKeys | None = None,
    duration: float | None = None,
    status_interval: float = 1.0,
    deadline: float | None = None,
    reopen: Callable[[], Source] | None = None,
    reconnect_every: float = RECONNECT_EVERY,
    microphone: SoundSource | None = None,
    reopen_microphone: Callable[[], SoundSource] | None = None,
) -> LiveSummary:
    """Run until the source ends, ``duration`` seconds pass, q is pressed or Ctrl-C.

    Output fails closed: when the backend raises, returns garbage, or gives no result
    for ``deadline`` seconds (default: four frame intervals, at least 0.25 s), the
    outputs get privacy frames (see :mod:`p3m_live.privacy`) until it recovers.
    With ``reopen`` (cameras and live streams), a source that fails or ends is not the
    end: privacy frames go out at the source's rate while ``reopen`` is tried every
    ``reconnect_every`` seconds; one that only goes quiet (a stalled camera) gets
    privacy frames after ``SILENCE`` seconds too, until it sends again (or, a camera, gives
    up after ``sources.STALL`` seconds and is reopened). Closes the
    source once its reader thread has stopped (a reader stuck in a dead network read
    is left to die with the process rather than closed under it). ``microphone``: the
    outputs' sound, read on a thread of its own, instead of the source's (the caller
    closes it, after the outputs), and reopened with ``reopen_microphone`` when it stops.
    ``keys``: the terminal's keys, taken as the preview's are (the caller closes it)."""
    box = Mailbox()
    stop = threading.Event()
    errors: list[BaseException] = []
    rate_in, rate_out = RateMeter(), RateMeter()
    interval = 1.0 / float(source.rate) if source.rate else 1 / 30
    deadline = deadline if deadline is not None else max(0.25, 4 * interval)
    current = [source]  # the source being read (a reconnect replaces it)
    retired = Retired()  # sources and microphones replaced, with sound: closed once it is written
    lost = threading.Event()  # the source is gone and being reopened
    last_input = [time.monotonic()]  # when the source last gave a frame
    silence = max(SILENCE, 10 * interval)
    # The source's audio packets (a file or a stream; cameras have none), for the file and
    # stream outputs, on the run's clock like the frames (see live_clock).
    sound: queue.Queue = queue.Queue(maxsize=SOUND_QUEUE)
    clock = LiveClock(source.time_base or Fraction(1, 90000))
    sound_of_first = _sound_of(source)  # (the outputs' tracks were made for these streams)

    def read(src: Source) -> None:
        start: tuple[float, float] | None = None  # (wall clock, media time) of the first frame
        clock.connected(steady=not src.paced)  # (a file is paced here, to its own times)
        same_sound = src is source or _sound_of(src) == sound_of_first
        if microphone is None and not same_sound and sound_of_first:
            log.warning("the source came back with other sound; the outputs go on without it")
        with_sound = microphone is None and same_sound
        for item in src.items():
            if stop.is_set():
                return
            if not isinstance(item, Frame):
                if with_sound and (placed := clock.packet(item)) is not None:
                    with contextlib.suppress(queue.Full):  # (an output that stalls drops sound, not frames)
                        sound.put_nowait(placed)
                continue
            if not src.paced and item.time is not None:
                start = start or (time.monotonic(), item.time)
                wait = start[0] + (item.time - start[1]) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # play at the file's own speed, like ffmpeg -re
                item.captured = time.monotonic()
            clock.frame(item)
            box.put(item)
            last_input[0] = time.monotonic()
            rate_in.tick()

    def reconnect(why: str) -> Source | None:
        """A new source like the lost one, once one opens; None if the run stops first."""
        log.warning("%s: privacy frames until it is back; reopening every %g s", why, reconnect_every)
        lost.set()
        if current[0].audio_streams:  # its packets may still be on their way
            retire(current[0])
        else:
            current[0].close()  # (a camera: closed, so that it can be opened again)
        src = _reopened(stop, reconnect_every, reopen)
        if src is None:
            return None
        came = src.layout
        if came != matting.layout:
            why = src.adopt(matting.layout)
            if why is not None:
                src.close()
                raise P3MError(f"the source came back as {came.width}x{came.height} {came.fmt}, not as before, "
                               f"and {why}; restart p3m-live")  # fmt: skip
            run = matting.layout
            log.warning("the source came back as %dx%d %s: scaled to %dx%d %s, as before",
                        came.width, came.height, came.fmt, run.width, run.height, run.fmt)  # fmt: skip
        log.warning("the source is back")
        worker.reset.set()
        last_input[0] = time.monotonic()  # (not "quiet" while its first frame is on the way)
        lost.clear()
        return src

    def retire(src: Source | SoundSource) -> None:
        """Close ``src`` once its packets in the sound queue are written: a mark after them."""
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                sound.put(_Replaced(src), timeout=0.1)
                return
        retired.left.append(src)

    def capture() -> None:
        try:
            while True:
                try:
                    read(current[0])
                    why = "the source ended"
                except (P3MError, OSError) as e:
                    if reopen is None:
                        raise
                    why = f"the source failed ({e})"
                if stop.is_set() or reopen is None:
                    return
                src = reconnect(why)
                if src is None:
                    return
                current[0] = src
        except BaseException as e:  # noqa: BLE001 (reported by the loop)
            errors.append(e)
        finally:
            box.close()

    def listen() -> None:
        """The microphone's packets, on the run's clock (a timeline of its own). One that ends
        or fails (unplugged) is reopened like the source, the outputs going on without sound."""
        assert microphone is not None
        mic_clock, src, first = LiveClock(clock.time_base, clock.t0, sound_only=True), microphone, _sound_of(microphone)
        while src is not None:
            mic_clock.connected()
            try:
                for packet in src.packets():
                    if stop.is_set():
                        return
                    if (placed := mic_clock.packet(packet)) is not None:
                        with contextlib.suppress(queue.Full):
                            sound.put_nowait(placed)
                why = "ended"
            except (av.error.FFmpegError, OSError) as e:
                why = f"stopped ({reason(e)})"
            if stop.is_set():
                return
            if reopen_microphone is None:
                log.warning("%s %s; the outputs go on without sound", src.name, why)
                return
            log.warning("%s %s; the outputs go on without sound, reopening it every %g s", src.name, why,
                        reconnect_every)  # fmt: skip
            if src is not microphone:  # (the caller's is closed by the caller)
                retire(src)
            src = _reopened(stop, reconnect_every, reopen_microphone)
            if src is not None:
                if _sound_of(src) != first:
                    retire(src)
                    log.warning("%s came back as other sound; the outputs go on without it", src.name)
                    return
                log.warning("%s is back", src.name)

    reader = threading.Thread(target=capture, name="p3m-capture", daemon=True)
    mic = threading.Thread(target=listen, name="p3m-microphone", daemon=True) if microphone else None
    worker = Worker(box, matting)
    guard = Guard(matting)
    latency = Latencies()
    shown = 0
    t0 = last_out = time.monotonic()
    silent = False  # a live source went quiet without an error (a stalled camera)
    hidden = False  # the h key: privacy frames on demand
    next_status = t0 + status_interval
    last_frame: Frame | None = None
    reader.start()
    if mic is not None:
        mic.start()
    worker.start()
    try:
        while worker.is_alive() or not worker.results.empty():
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            _pass_sound(sound, sinks, retired)
            retired.close_written()
            if now >= next_status:
                next_status = now + status_interval
                outputs = "".join(f"; {st}" for sink in sinks if (st := sink.status()))
                log.info(
                    "in %.1f fps, out %.1f fps, dropped %d, latency p50 %.0f ms, p95 %.0f ms%s",
                    rate_in.rate(),
                    rate_out.rate(),
                    box.dropped,
                    latency.percentile(50, last=60) * 1000,
                    latency.percentile(95, last=60) * 1000,
                    outputs,
                )
            try:
                result = worker.results.get(timeout=0.02)
            except queue.Empty:
                result = None
            quiet = reopen is not None and guard.started and not lost.is_set() and now - last_input[0] > silence
            if quiet and not silent:
                log.warning("no frame from the source for %.1f s: privacy frames until it sends again", silence)
            elif silent and not quiet and not lost.is_set():  # (a loss says so itself)
                log.warning("frames from the source again")
            silent = quiet
            if result is not None:
                last_frame = result.frame
                if hidden:  # h: the background alone, on demand (someone walked in)
                    composite, alpha = guard.lost(), None
                elif result.problem is None:
                    composite, alpha = guard.good(result.composite), result.alpha
                    latency.add(time.monotonic() - result.frame.captured)
                    shown += 1
                else:
                    composite, alpha = guard.fail(result.problem), None
            elif lost.is_set() or silent:
                if now - last_out < interval:
                    continue
                composite, alpha = guard.lost(), None
            else:
                busy = worker.busy_since
                stalled = busy is not None and now - busy > deadline
                waiting = busy is None and shown == 0 and guard.privacy_frames == 0 and now - t0 > deadline
                if not ((stalled or waiting or guard.failing) and now - last_out >= interval):
                    continue
                if not guard.started and guard.failing is None:
                    composite, alpha = guard.wait(), None
                else:  # a failure goes on, or (started, so not "waiting") the worker stalled
                    composite, alpha = guard.fail(guard.failing or f"no result for {now - busy:.1f} s"), None
            if alpha is None:
                alpha = np.zeros((matting.layout.height, matting.layout.width), np.uint8)
            if result is not None:
                frame = result.frame
            else:  # timed as a real frame shown now would be: captured one latency ago
                index = last_frame.index if last_frame is not None else -1
                frame = clock.shown(composite, index, latency.percentile(50, last=60) if shown else 0.0)
            for sink in sinks:
                sink.write(frame, composite, alpha)
            last_out = time.monotonic()
            rate_out.tick()
            action = None
            if preview is not None:
                action = preview.show(composite, alpha)
                if action == "closed" and sinks:
                    log.info("preview closed; the outputs go on (Ctrl-C to stop)")
                    preview.close()
                    preview, action = None, None
            if action is None and keys is not None and (action := keys.poll()) and preview is not None:
                preview.handle(action)
            if action in ("quit", "closed"):
                break
            if action == "background":
                worker.switch_background.set()
            elif action == "hide":
                hidden = not hidden
                log.info("hidden: the outputs show the background alone (h to show again)" if hidden else "shown again")
            elif action == "frame" and matting.framer is not None:
                matting.framer.following = not matting.framer.following
                log.info("auto framing %s", "on" if matting.framer.following else "off")
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        stop.set()
        worker.stop.set()
        reader.join(timeout=2.0)
        if mic is not None:
            mic.join(timeout=2.0)
        worker.join(timeout=2.0)
        # The last packets, read after the loop last handed sound over (a file's final audio
        # comes after its last frame); an output that fails on them fails at its close too.
        with contextlib.suppress(Exception):
            _pass_sound(sound, sinks, retired)
        # Sources are closed only once the outputs have written their sound: an audio packet
        # reads its stream, which closing the source frees.
        if all([sink.drain() for sink in sinks]):  # (every one drained, not the first few)
            retired.close_all(sound)
            if not reader.is_alive() and not worker.is_alive():
                current[0].close()
        else:
            log.warning("an output is still writing; the source is left open until p3m-live exits")
    if errors:
        raise errors[0]
    return LiveSummary(
        box.received, shown, box.dropped, time.monotonic() - t0, latency, guard.privacy_frames, guard.failures
    )


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


def _pass_sound(sound: queue.Queue, sinks: Sequence[Sink], retired: Retired) -> None:
    """Hand the audio packets read so far to the outputs (files and streams copy them)."""
    for packet in _queued(sound):
        if isinstance(packet, _Replaced):
            retired.after(packet.source, sinks)
            continue
        for sink in sinks:
            sink.write_packet(packet)


def _sound_of(src: Source | SoundSource) -> list[tuple]:
    """What a source's audio streams are, to tell whether a reopened one's sound can go on
    in the outputs' tracks."""
    return [(a.index, a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels)
            for a in src.audio_streams]  # fmt: skip
