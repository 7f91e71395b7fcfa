"""Live mode: the newest frame wins, and output fails closed.

The source is read all the time in its own thread into a one-frame mailbox; a
frame that is replaced before the matting loop takes it is dropped and counted.
So the output never falls behind the camera: when the model is slower than the
camera the output rate drops, not the freshness. Output is paced by the source
(one output per new frame at most), latency from decode to output is measured
for every frame, and one status line a second reports it.

Three threads: capture (the source, see :mod:`p3m_live.live_capture`), matting
(the backend, on the newest frame) and output (this one: sinks, preview, keys).
The output thread never waits on the backend for long: if the backend raises,
returns garbage or stalls, it shows privacy frames instead, and never the camera
frame. A camera or stream that stops
(unplugged, network gone) is reopened every few seconds while the outputs carry
privacy frames, so a call keeps its virtual camera.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .keys import TerminalKeys
from .live_capture import RECONNECT_EVERY, Capture, Mailbox
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

SILENCE = 1.0  # seconds without a frame from a live source (at least 10 frame intervals) before privacy frames


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
    interval = 1.0 / float(source.rate) if source.rate else 1 / 30
    deadline = deadline if deadline is not None else max(0.25, 4 * interval)
    silence = max(SILENCE, 10 * interval)
    box = Mailbox()
    worker = Worker(box, matting)
    capture = Capture(
        source,
        box,
        matting.layout,
        reopen=reopen,
        reconnect_every=reconnect_every,
        microphone=microphone,
        reopen_microphone=reopen_microphone,
        on_back=worker.reset.set,
    )
    rate_out = RateMeter()
    guard = Guard(matting)
    latency = Latencies()
    shown = 0
    t0 = last_out = time.monotonic()
    silent = False  # a live source went quiet without an error (a stalled camera)
    hidden = False  # the h key: privacy frames on demand
    next_status = t0 + status_interval
    last_frame: Frame | None = None
    capture.start()
    worker.start()
    try:
        while worker.is_alive() or not worker.results.empty():
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            capture.pass_sound(sinks)
            if now >= next_status:
                next_status = now + status_interval
                outputs = "".join(f"; {st}" for sink in sinks if (st := sink.status()))
                log.info(
                    "in %.1f fps, out %.1f fps, dropped %d, latency p50 %.0f ms, p95 %.0f ms%s",
                    capture.rate.rate(),
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
            lost = capture.lost.is_set()
            quiet = reopen is not None and guard.started and not lost and now - capture.last_input > silence
            if quiet and not silent:
                log.warning("no frame from the source for %.1f s: privacy frames until it sends again", silence)
            elif silent and not quiet and not lost:  # (a loss says so itself)
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
            elif lost or silent:
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
                frame = capture.clock.shown(composite, index, latency.percentile(50, last=60) if shown else 0.0)
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
        worker.stop.set()
        capture.join(timeout=2.0)
        worker.join(timeout=2.0)
        # The last packets, read after the loop last handed sound over (a file's final audio
        # comes after its last frame); an output that fails on them fails at its close too.
        with contextlib.suppress(Exception):
            capture.pass_sound(sinks)
        # Sources are closed only once the outputs have written their sound: an audio packet
        # reads its stream, which closing the source frees.
        if all([sink.drain() for sink in sinks]):  # (every one drained, not the first few)
            capture.close(keep_current=worker.is_alive())
        else:
            log.warning("an output is still writing; the source is left open until p3m-live exits")
    if capture.errors:
        raise capture.errors[0]
    return LiveSummary(
        box.received, shown, box.dropped, time.monotonic() - t0, latency, guard.privacy_frames, guard.failures
    )
