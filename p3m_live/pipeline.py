"""Offline mode: every frame, in order, with decode, inference and encode overlapping.

Three threads joined by bounded queues: the source decodes (and hands audio
packets straight to the writer), the matting stage runs the frame graph on
batches, the writer encodes and muxes. The slowest stage sets the pace and the
others wait on their queues, so each stage's busy time shows the bottleneck.
Robust Video Matting's converter runs these steps one after another and so
delivers a fraction of its model's speed; here they overlap.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .backends.base import Backend, Outputs
from .errors import P3MError
from .framing import AutoFrame
from .spec import GraphSpec, frame_shape
from .stats import Progress, StageClock
from .video.backgrounds import BackgroundChoice, BackgroundFeed
from .video.frames import Frame, Layout
from .video.preview import PreviewWindow
from .video.sinks import Sink
from .video.sources import Source

log = logging.getLogger("p3m_live")

BackendOpener = Callable[[BackgroundChoice, int], Backend]
_END = object()


def graph_spec(layout: Layout, choice: BackgroundChoice, batch: int = 1, **options) -> GraphSpec:
    """The frame graph for frames laid out as ``layout`` over ``choice``: I420 out, which
    encoders and virtual cameras take as it is; ``options`` are further GraphSpec fields."""
    try:
        return GraphSpec(
            layout.height,
            layout.width,
            layout.fmt,
            "i420",
            batch=batch,
            background=choice.graph_kind,
            matrix=layout.matrix,
            full_range=layout.full_range,
            blur_strength=choice.strength,
            **options,
        )
    except ValueError as e:
        raise P3MError(str(e)) from e


def warm_up(backend: Backend) -> None:
    """One call of ``backend`` on a blank batch over a blank background, its temporal
    history forgotten after it (the next set_background, a real one, replaces the blank)."""
    s = backend.spec
    blanks = {"image": np.zeros((s.height, s.width, 3), np.uint8), "color": (0, 0, 0), "mix": None}
    if s.background != "blur":
        backend.set_background(blanks[s.background])
    backend.process(np.zeros(frame_shape(s.in_format, s.batch, s.height, s.width), np.uint8))
    backend.reset()


class Matting:
    """The frame graph for a run: one backend per background kind, the background feed,
    and batching (a short last batch is padded, its extra outputs dropped). With ``mix``,
    one "mix" graph takes every background (one per blur strength), where a graph per kind
    would be an engine each to build and hold (live runs on GPUs)."""

    def __init__(
        self,
        layout: Layout,
        backgrounds: Sequence[BackgroundChoice],
        opener: BackendOpener,
        batch: int = 1,
        mix: bool = False,
        framer: AutoFrame | None = None,
    ) -> None:
        """``framer`` (``--auto-frame``) crops every composite and alpha to follow the person."""
        if not backgrounds:
            raise ValueError("at least one background")
        self.layout = layout
        self.backgrounds = list(backgrounds)
        self.opener = opener
        self.batch = batch
        self.mix = mix
        self.framer = framer
        self._backends: dict[tuple[str, int], Backend] = {}
        self._feeds: dict[int, BackgroundFeed] = {}  # the current background's, and the next one's if made
        self._maker: ThreadPoolExecutor | None = None  # makes the next feed ahead (see open_all)
        self._coming: tuple[int, Future[BackgroundFeed]] | None = None  # the next feed, being made
        self._pending: list[Sequence[Frame]] = []  # batches submitted, results not yet returned
        self.current = 0
        self._select(0)

    @property
    def background(self) -> BackgroundChoice:
        return self.backgrounds[self.current]

    def _graph_for(self, choice: BackgroundChoice) -> BackgroundChoice:
        """What ``choice`` runs on: its own kind of graph, or the mix graph (with ``mix``, and
        for a transparent background anywhere) with its blur strength, or the first blur's
        asked for (else blur:16): a transparent background shows the room blurred as that."""
        if not (self.mix or choice.transparent):
            return choice
        blurs = [c.strength for c in (choice, *self.backgrounds) if c.kind == "blur"]
        return BackgroundChoice("mix", strength=blurs[0]) if blurs else BackgroundChoice("mix")

    def _backend_for(self, choice: BackgroundChoice) -> Backend:
        graph = self._graph_for(choice)
        key = (graph.graph_kind, graph.strength if graph.graph_kind in ("blur", "mix") else 0)
        if key not in self._backends:
            self._backends[key] = self.opener(graph, self.batch)
        return self._backends[key]

    def open_all(self, warm: bool = False, ahead: bool = False) -> int:
        """Open the backend of every background now, not at the first switch to it: a live
        switch must not stall the call to export a graph or build a TensorRT engine. With
        ``warm``, each also runs once on a blank frame and then forgets it, so that a live
        run's first frame does not wait behind privacy frames for the backend's one-time
        start-up (PyTorch's kernels: 0.3 to 0.8 s on a CPU). With ``ahead``, the next
        background's feed is made from now on, on a thread of its own, while the current one
        shows: a switch then finds its image decoded and scaled (a 12-megapixel photo for
        720p: 0.05 s on a CPU, a frame held up otherwise) or its video open. Returns how
        many backends (one per frame graph) are open."""
        for choice in self.backgrounds:
            self._backend_for(choice)
        if warm:
            for backend in self._backends.values():
                warm_up(backend)
        if ahead and len(self.backgrounds) > 1 and self._maker is None:
            self._maker = ThreadPoolExecutor(1, thread_name_prefix="p3m-next-background")
            self._make_next()
        return len(self._backends)

    def _feed(self, i: int) -> BackgroundFeed:
        """A new feed for background ``i``: a planar graph gets its images as I420, made by
        the feed. (Its backend is open by now where this runs on the maker's thread.)"""
        planar = self._backend_for(self.backgrounds[i]).spec.planar
        planes = (self.layout.matrix, self.layout.full_range) if planar else None
        return BackgroundFeed(self.backgrounds[i], self.layout.width, self.layout.height, planes, self.layout.sar)

    def _next_index(self) -> int:
        return (self.current + 1) % len(self.backgrounds)

    def _make_next(self) -> None:
        """Start making the next background's feed, unless it is there already."""
        i = self._next_index()
        if self._maker is not None and i not in self._feeds and self._coming is None:
            self._coming = (i, self._maker.submit(self._feed, i))

    def _take_coming(self, i: int) -> BackgroundFeed | None:
        """The feed made ahead for background ``i`` (waiting for it to be finished), or None
        if none was; one made for another background is dropped. A background that cannot
        be opened raises here, as it would have when opened at the switch."""
        if self._coming is None or self._coming[0] != i:
            self._drop_coming()
            return None
        future = self._coming[1]
        self._coming = None
        return future.result()

    def _drop_coming(self) -> None:
        """Forget the feed being made ahead, closing it once it is made (not waited for)."""
        if self._coming is not None:
            self._coming[1].add_done_callback(_close_made)
            self._coming = None

    def _select(self, i: int) -> None:
        """Make background ``i`` the current one. Its feed opens first, so one that cannot
        (a damaged video) changes nothing. Only the current feed and the next one are kept:
        switching through a folder of clips and photos does not keep each one's frames (up
        to 8 read ahead for a video, at the frame size) and decoding thread; a background
        that comes round again is opened again."""
        choice = self.backgrounds[i]
        previous = getattr(self, "backend", None)
        backend = self._backend_for(choice)
        made = self._take_coming(i)
        if i not in self._feeds:
            self._feeds[i] = made or self._feed(i)
        self.backend = backend
        if previous is not None and previous is not backend:
            backend.state = previous.state  # keep the temporal history across a switch
        self.current = i
        # (only now: the output thread may be asking for the current feed, for privacy frames)
        for left in [j for j in self._feeds if j not in (i, self._next_index())]:
            self._feeds.pop(left).close()
        self._make_next()

    def current_background(self) -> np.ndarray | tuple[int, int, int] | None:
        """What the current background looks like now (RGB image, colour, or None for blur)."""
        return self._feeds[self.current].peek()

    def next_background(self) -> BackgroundChoice:
        """Switch to the next background that opens; each one that does not is named in a
        warning and passed over (the current one stays where none opens)."""
        n = len(self.backgrounds)
        for step in range(1, n):
            i = (self.current + step) % n
            try:
                self._select(i)
                break
            except P3MError as e:
                log.warning("background %s is passed over: %s", self.backgrounds[i], e)
        return self.background

    def _batch(self, frames: Sequence[Frame]) -> np.ndarray:
        """The frames as one batch (a short one padded), with the background set for it: a
        video background's frames by the frames' times (padding repeats the last time, which
        does not move the background on)."""
        data = np.stack([f.data for f in frames])
        pad = self.batch - len(frames)
        if pad:
            data = np.concatenate([data, np.repeat(data[-1:], pad, axis=0)])
        times = [f.time for f in frames] + [frames[-1].time] * pad
        value = self._feeds[self.current].value(times)
        if value is not None or self.backend.spec.background == "mix":  # (None: a blur, set as one)
            self.backend.set_background(value)
        return data

    def process(self, frames: Sequence[Frame]) -> Outputs:
        """Composites and alphas for ``frames`` (at most ``batch`` of them), at once (and the
        foreground track's colours, where the graph makes them)."""
        return self._framed(frames, self.backend.process(self._batch(frames)))

    def _framed(self, frames: Sequence[Frame], outputs: Outputs) -> Outputs:
        """The outputs of a batch, less its padding, cropped by the framer where there is one
        (a foreground track is for editors, whole frames: no run has both)."""
        outputs = tuple(o[: len(frames)] for o in outputs)
        if self.framer is None:
            return outputs
        assert len(outputs) == 2, "auto framing crops the composite alone"
        return self.framer(*outputs, [f.time for f in frames])

    Done = tuple  # (frames, composites, alphas), and the foreground track's colours where made

    def submit(self, frames: Sequence[Frame]) -> list[Done]:
        """Queue a batch; return the batches finished so far as (frames, composites, alphas),
        in order, and the foreground track's colours after them where the graph makes them.
        GPU backends keep one batch in flight, so its upload overlaps the previous batch's
        compute; others finish each batch at once."""
        self._pending.append(frames)
        return self._pair(self.backend.submit(self._batch(frames)))

    def flush(self) -> list[Done]:
        """Every batch still in flight."""
        return self._pair(self.backend.flush())

    def _pair(self, results: list[Outputs]) -> list[Done]:
        done = []
        for outputs in results:
            frames = self._pending.pop(0)
            done.append((frames, *self._framed(frames, outputs)))
        return done

    def close(self) -> None:
        self._drop_coming()
        if self._maker is not None:
            self._maker.shutdown(wait=False)
        for f in self._feeds.values():
            f.close()
        for b in self._backends.values():
            b.close()
        self._backends.clear()


def _close_made(future: Future[BackgroundFeed]) -> None:
    """Close a feed made ahead for nothing (the switch went elsewhere, or the run ended)."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


@dataclass
class Summary:
    """What an offline run did, and where its time went."""

    frames: int
    wall: float
    stages: list[StageClock] = field(default_factory=list)
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.wall if self.wall > 0 else 0.0

    @property
    def bottleneck(self) -> str:
        return max(self.stages, key=lambda s: s.busy).name if self.stages else "-"

    def table(self) -> str:
        lines = [f"{self.frames} frames in {self.wall:.1f} s: {self.fps:.1f} fps end to end"]
        for s in self.stages:
            share = s.busy / self.wall if self.wall > 0 else 0.0
            per = s.busy / s.calls * 1000 if s.calls else 0.0
            lines.append(f"  {s.name:<8} busy {s.busy:7.2f} s ({share:4.0%} of the run), {per:7.1f} ms per call")
        lines.append(f"  bottleneck: {self.bottleneck}")
        return "\n".join(lines)


class _Stop(Exception):
    """Another stage failed or the run was interrupted."""


class _Quit(Exception):
    """The preview window's q: stop, and finish the outputs with the frames written."""


class _Stages:
    """Bounded queues whose waits give way when the run stops."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def put(self, q: queue.Queue, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue):
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue

    def thread(self, name: str, body: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                body()
            except _Stop:
                pass
            except BaseException as e:  # noqa: BLE001 (handed to the main thread)
                self.errors.append(e)
                self.stop.set()

        t = threading.Thread(target=run, name=f"p3m-{name}", daemon=True)
        t.start()
        return t


def run_offline(
    source: Source,
    matting: Matting,
    sinks: Sequence[Sink],
    *,
    progress: Progress | None = None,
    depth: int = 4,
    max_frames: int | None = None,
    preview: PreviewWindow | None = None,
) -> Summary:
    """Every frame of ``source`` through ``matting`` into ``sinks``, stages overlapping.

    On Ctrl-C the stages stop, the sinks are finished (so the output is playable up
    to the last frame written) and the summary says ``interrupted``. A ``preview``
    window shows the newest composite of each call, from this (main) thread as GUI
    toolkits want; its q stops the run the same way, as a normal end."""
    batch = matting.batch
    frames_q: queue.Queue = queue.Queue(maxsize=depth * batch)
    out_q: queue.Queue = queue.Queue(maxsize=depth * batch + 64)  # room for audio and subtitle packets
    clocks = [StageClock("decode"), StageClock("matting"), StageClock("encode")]
    st = _Stages()
    written = [0]

    def decode() -> None:
        items = iter(source.items())
        n = 0
        while max_frames is None or n < max_frames:
            with clocks[0].working():
                item = next(items, _END)
            if item is _END:
                break
            if isinstance(item, Frame):
                n += 1
                st.put(frames_q, item)
            else:
                st.put(out_q, item)
        st.put(frames_q, _END)

    def encode() -> None:
        while True:
            item = st.get(out_q)
            if item is _END:
                return
            with clocks[2].working():
                if isinstance(item, tuple):  # (frame, composite, alpha[, foreground colours])
                    for sink in sinks:
                        sink.write(*item)
                    written[0] += 1
                else:
                    for sink in sinks:
                        sink.write_packet(item)

    def infer() -> None:
        """Runs on the calling (main) thread: PyTorch's CPU kernels run measurably slower
        from other threads, and a pycuda context is current on the thread that made it."""
        nonlocal preview
        done = False
        while not done:
            group: list[Frame] = []
            while len(group) < batch:
                item = st.get(frames_q)
                if item is _END:
                    done = True
                    break
                group.append(item)
            with clocks[1].working():
                finished = matting.submit(group) if group else []
                if done:
                    finished += matting.flush()
            for frames, *outputs in finished:
                for f, *per_frame in zip(frames, *outputs):
                    st.put(out_q, (f, *per_frame))
            if preview is not None and finished:
                _, composites, alphas, *_ = finished[-1]
                action = preview.show(composites[-1], alphas[-1])
                if action == "quit":
                    raise _Quit
                if action == "closed":  # the file goes on without the window
                    preview.close()
                    preview = None
            if progress is not None:
                progress.update(written[0])
        st.put(out_q, _END)

    t0 = time.monotonic()
    threads = [st.thread("decode", decode), st.thread("encode", encode)]
    interrupted = quit_ = False
    try:
        infer()
        threads[-1].join()  # the writer drains what is queued
    except _Stop:
        pass  # a stage failed: its error is raised below
    except _Quit:
        quit_ = True
        log.info("stopped from the preview: finishing the output with the %d frames written so far", written[0])
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: finishing the output with the %d frames written so far", written[0])
    except BaseException as e:
        st.errors.insert(0, e)
    finally:
        if interrupted or quit_ or st.errors:
            st.stop.set()
        for t in threads:
            t.join()
    wall = time.monotonic() - t0
    if progress is not None:
        progress.finish(written[0])
    if st.errors:
        raise st.errors[0]
    return Summary(written[0], wall, clocks, interrupted)
