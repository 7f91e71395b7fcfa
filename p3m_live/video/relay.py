"""Live file and stream outputs on threads of their own: no encoder or network holds the call.

In a live run the output thread gives each composite to the virtual camera and the
preview at once, and to every file and stream output through a short queue. Each of
those encodes and writes on a thread of its own. One that falls behind (a slow
encoder, a network that stalls) loses its oldest frames, counted, and the call is
not delayed: frames dropped, not delayed, as for the camera. A network stream
that drops (a server restart, the Wi-Fi gone) is reopened every few seconds while
the call goes on, as OBS does. Meanwhile its frames are dropped and counted. A
file that fails (a full disk) stops with a warning at once; where the run has a
call to feed (the virtual camera, the preview) the call goes on without it, as
OBS's virtual camera outlives a failed recording, and the run ends with the error
when it ends; without one, the error ends the run, as in an offline run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import av
import numpy as np

from ..errors import P3MError
from .frames import Frame
from .sinks import Sink, StreamLost

log = logging.getLogger("p3m_live")

QUEUE = 8  # frames waiting for an output (about 0.3 s at 30 fps) before its oldest is dropped
RECONNECT_EVERY = 2.0  # seconds between attempts to reopen a network output that dropped
DRAIN_WAIT = 5.0  # seconds for an output to write what is queued, at the end (a few frames)
CLOSE_WAIT = 10.0  # ... and then to finish (the encoder's last frames, the file's end)


class Relay(Sink):
    """``sink`` written on its own thread. ``reopen`` (network outputs) opens a new one
    after a :class:`~p3m_live.video.sinks.StreamLost`; without it, any error ends the run,
    raised from the next ``write`` or from ``close``, or (``outlived``: the run feeds a
    call) only from ``close``, the output stopped and the call going on. Frames are copied
    on the way in: the caller's arrays may be reused (a GPU backend's page-locked buffers)."""

    def __init__(
        self,
        sink: Sink,
        name: str,
        reopen: Callable[[], Sink] | None = None,
        reconnect_every: float = RECONNECT_EVERY,
        queue: int = QUEUE,
        outlived: bool = False,
    ) -> None:
        self.sink: Sink | None = sink
        self.name, self.reopen, self.reconnect_every, self.queue = name, reopen, reconnect_every, queue
        self.outlived = outlived
        self.dropped = 0  # frames that were not written: behind, or while reconnecting
        self.reconnects = 0
        self.error: BaseException | None = None
        self._reported = False
        self._items: deque[tuple | av.Packet | threading.Event] = deque()  # (frame, composite, alpha, colours)
        self._frames = 0  # frames in _items
        self._cond = threading.Condition()
        self._closing = False
        self._next_try = 0.0
        self._thread = threading.Thread(target=self._run, name=f"p3m-output {name}", daemon=True)
        self._thread.start()

    def write(self, frame: Frame, composite: np.ndarray, alpha: np.ndarray, colours: np.ndarray | None = None) -> None:
        if self.error is not None and self.outlived:
            return  # (stopped, and said so: the call goes on)
        self._raise()
        with self._cond:
            colour = () if colours is None else (colours.copy(),)  # (passed on as it came)
            self._items.append((frame, composite.copy(), alpha.copy(), *colour))
            self._frames += 1
            if self._frames > self.queue:  # behind: the oldest frame goes (sound stays in order)
                oldest = next(i for i, item in enumerate(self._items) if isinstance(item, tuple))
                del self._items[oldest]
                self._frames -= 1
                self.dropped += 1
            self._cond.notify()

    def write_packet(self, packet: av.Packet) -> None:
        if self.error is not None and self.outlived:
            return
        self._raise()
        with self._cond:
            self._items.append(packet)
            self._cond.notify()

    def fence(self) -> threading.Event:
        done = threading.Event()
        with self._cond:
            self._items.append(done)
            self._cond.notify()
        return done

    def _raise(self) -> None:
        if self.error is not None and not self._reported:
            self._reported = True
            raise self.error

    def _next(self) -> tuple[Frame, np.ndarray, np.ndarray] | av.Packet | threading.Event | None:
        """The next item to write, waiting for one; None once closing and all are written."""
        with self._cond:
            while not self._items and not self._closing:
                self._cond.wait()
            if not self._items:
                return None
            item = self._items.popleft()
            self._frames -= isinstance(item, tuple)
            return item

    def status(self) -> str | None:
        if self.error is not None:
            return f"{self.name}: stopped"
        if self.sink is None and not self._closing:  # (only a stream that dropped has none while open)
            return f"{self.name}: reconnecting, {self.dropped} frames not sent"
        return f"{self.name}: {self.dropped} frames dropped" if self.dropped else None

    def drain(self) -> bool:
        """Wait until everything given is written (or the thread has stopped), at most
        ``DRAIN_WAIT`` s; whether it is. The run closes its source only after this: a queued
        audio packet still reads the source's stream."""
        written, end = self.fence(), time.monotonic() + DRAIN_WAIT
        while not written.wait(0.1):
            if not self._thread.is_alive() or time.monotonic() >= end:
                return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        while (item := self._next()) is not None:
            if isinstance(item, threading.Event):  # (a fence: all before it is written)
                item.set()
                continue
            if self.sink is None and not self._reconnect():
                self.dropped += isinstance(item, tuple)
                continue
            try:
                if isinstance(item, tuple):
                    self.sink.write(*item)
                else:
                    self.sink.write_packet(item)
            except StreamLost as e:
                if self.reopen is None:
                    self._stop(e)
                    return
                self._lost(e)
            except BaseException as e:  # noqa: BLE001 (the output thread raises it)
                self._stop(e)
                return

    def _stop(self, e: BaseException) -> None:
        """This output failed for good: kept for ``close`` to raise, and where the call
        outlives it, said now and the output finished (a file kept as it was written)."""
        self.error = e
        if not self.outlived:
            return
        log.warning("%s stopped (%s); the call goes on without it", self.name, e)
        sink, self.sink = self.sink, None
        with contextlib.suppress(Exception):  # (the error is the one to report)
            sink.close(failed=True)

    def _lost(self, e: StreamLost) -> None:
        log.warning("%s; the run goes on, and it is reopened every %g s", e, self.reconnect_every)
        with contextlib.suppress(Exception):  # (what was sent is sent; its end cannot be written)
            self.sink.close(failed=True)
        self.sink = None
        self._next_try = time.monotonic() + self.reconnect_every

    def _reconnect(self) -> bool:
        """Whether a new sink is open: tried once every ``reconnect_every`` seconds."""
        if self.reopen is None or time.monotonic() < self._next_try:
            return False
        self._next_try = time.monotonic() + self.reconnect_every
        try:
            self.sink = self.reopen()
        except P3MError:
            return False
        self.reconnects += 1
        log.warning("%s: sending again (%d frames were not sent)", self.name, self.dropped)
        return True

    def close(self, failed: bool = False) -> None:
        """Write what is queued, then close the sink; raises an error it met that was not
        raised yet. An output still stuck after ``CLOSE_WAIT`` s (a network write that never
        returns) is left as it is, not closed under its thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(CLOSE_WAIT)
        if self._thread.is_alive():
            log.warning("%s: still writing after %g s; left unfinished", self.name, CLOSE_WAIT)
            return
        if self.dropped:
            log.info("%s: %d frames dropped (it fell behind, or was reconnecting)", self.name, self.dropped)
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.close(failed=failed or self.error is not None)
        self._raise()
