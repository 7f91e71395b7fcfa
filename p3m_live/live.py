"""Live mode: the newest frame wins.

The source is read all the time in its own thread into a one-frame mailbox; a
frame that is replaced before the matting loop takes it is dropped and counted.
So the output never falls behind the camera: when the model is slower than the
camera the output rate drops, not the freshness. Output is paced by the source
(one output per new frame at most), latency from decode to output is measured
for every frame, and one status line a second reports it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .pipeline import Matting
from .stats import Latencies, RateMeter
from .video.frames import Frame
from .video.preview import PreviewWindow
from .video.sinks import Sink
from .video.sources import Source

log = logging.getLogger("p3m_live")


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

    def line(self) -> str:
        return (
            f"live: {self.received} frames in, {self.shown} out, {self.dropped} dropped in {self.wall:.1f} s; "
            f"latency p50 {self.latency.percentile(50) * 1000:.0f} ms, p95 {self.latency.percentile(95) * 1000:.0f} ms"
        )


def run_live(
    source: Source,
    matting: Matting,
    sinks: Sequence[Sink],
    *,
    preview: PreviewWindow | None = None,
    duration: float | None = None,
    status_interval: float = 1.0,
) -> LiveSummary:
    """Run until the source ends, ``duration`` seconds pass, q is pressed or Ctrl-C.

    Closes ``source`` once its reader thread has stopped (a reader stuck in a dead
    network read is left to die with the process rather than closed under it)."""
    box = Mailbox()
    stop = threading.Event()
    errors: list[BaseException] = []
    rate_in, rate_out = RateMeter(), RateMeter()

    def capture() -> None:
        start: tuple[float, float] | None = None  # (wall clock, media time) of the first frame
        try:
            for item in source.items():
                if stop.is_set():
                    break
                if isinstance(item, Frame):
                    if not source.paced and item.time is not None:
                        start = start or (time.monotonic(), item.time)
                        wait = start[0] + (item.time - start[1]) - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)  # play at the file's own speed, like ffmpeg -re
                        item.captured = time.monotonic()
                    box.put(item)
                    rate_in.tick()
        except BaseException as e:  # noqa: BLE001 (reported by the loop)
            errors.append(e)
        finally:
            box.close()

    reader = threading.Thread(target=capture, name="p3m-capture", daemon=True)
    latency = Latencies()
    shown = 0
    t0 = time.monotonic()
    next_status = t0 + status_interval
    reader.start()
    try:
        while not box.finished:
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            if now >= next_status:
                next_status = now + status_interval
                log.info(
                    "in %.1f fps, out %.1f fps, dropped %d, latency p50 %.0f ms, p95 %.0f ms",
                    rate_in.rate(),
                    rate_out.rate(),
                    box.dropped,
                    latency.percentile(50, last=60) * 1000,
                    latency.percentile(95, last=60) * 1000,
                )
            frame = box.take(timeout=0.1)
            if frame is None:
                continue
            composites, alphas = matting.process([frame])
            for sink in sinks:
                sink.write(frame, composites[0], alphas[0])
            latency.add(time.monotonic() - frame.captured)
            rate_out.tick()
            shown += 1
            if preview is not None:
                action = preview.show(composites[0], alphas[0])
                if action == "quit":
                    break
                if action == "background":
                    log.info("background: %s", matting.next_background())
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        stop.set()
        reader.join(timeout=2.0)
        if not reader.is_alive():
            source.close()
    if errors:
        raise errors[0]
    return LiveSummary(box.received, shown, box.dropped, time.monotonic() - t0, latency)
