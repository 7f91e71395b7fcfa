"""Offline and live pipelines: order, batching, overlap, interrupts, dropping late frames."""

from __future__ import annotations

import time
from fractions import Fraction

import av
import numpy as np
import pytest

from p3m_live.backends import open_backend
from p3m_live.backends.base import Backend
from p3m_live.live import run_live
from p3m_live.live_capture import Mailbox
from p3m_live.pipeline import Matting, graph_spec, run_offline
from p3m_live.video.backgrounds import parse_background
from p3m_live.video.frames import Frame
from p3m_live.video.sinks import FileSink, Sink
from p3m_live.video.sources import AVSource, open_source
from tests.media import make_clip


def _opener(weights, layout, model_side=64, **options):
    def open_for(choice, batch):
        spec = graph_spec(layout, choice, batch, model_short_side=model_side, **options)
        return open_backend("torch", spec, weights)

    return open_for


class SlowBackend(Backend):
    """A deliberately slow backend (a test double): a real backend plus a fixed delay per call."""

    def __init__(self, inner: Backend, delay: float) -> None:
        self.inner, self.delay = inner, delay
        super().__init__(inner.spec)

    def _run(self, inputs):
        time.sleep(self.delay)
        return self.inner._run(inputs)


class Recorder(Sink):
    def __init__(self, delay: float = 0.0) -> None:
        self.frames: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.colours: list[np.ndarray] = []  # (where the graph makes a foreground track)
        self.audio = 0
        self.delay = delay
        self.closed = False

    def write(self, frame, composite, alpha, colours=None):
        time.sleep(self.delay)
        self.frames.append((frame.index, composite.copy(), alpha.copy()))
        if colours is not None:
            self.colours.append(colours.copy())

    def write_packet(self, packet):
        self.audio += 1

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", frames=6)


def test_batches_equal_single_frames(clip, seed32_ckpt):
    """Batch 4 over 6 frames (one padded batch) gives what batch 1 gives, smoothing included,
    and the foreground track's colours with each frame."""
    results, colours = {}, {}
    for batch in (1, 4):
        with open_source(str(clip)) as src:
            opener = _opener(seed32_ckpt, src.layout, foreground_track=True)
            m = Matting(src.layout, [parse_background("#204060")], opener, batch)
            rec = Recorder()
            summary = run_offline(src, m, [rec])
        assert summary.frames == 6 and [i for i, _, _ in rec.frames] == list(range(6))
        assert rec.audio > 0 and len(rec.colours) == 6 and rec.colours[0].shape == (*rec.frames[0][2].shape, 3)
        results[batch], colours[batch] = rec.frames, rec.colours
        if batch == 4:  # a short batch: every output less the padding
            with open_source(str(clip)) as src:
                frames = [f for f in src.items() if isinstance(f, Frame)][:2]
            assert [len(o) for o in m.process(frames)] == [2, 2, 2]
    for one, four in zip(colours[1], colours[4]):
        assert np.abs(one.astype(int) - four).mean() < 0.05
    assert not np.array_equal(colours[4][4], colours[4][5])  # (the padded batch's own frames, not a repeat)
    # Equal up to float noise (CPU convolution kernels sum a batch in another order; with
    # random weights a few pixels sit on the argmax fusion's boundary): a few levels, a few pixels.
    for (_, c1, a1), (_, c4, a4) in zip(results[1], results[4]):
        d = np.abs(a1.astype(int) - a4)
        assert d.max() <= 8 and d.mean() < 0.05
        assert np.abs(c1.astype(int) - c4).mean() < 0.05


@pytest.mark.parametrize("foreground, planar", [("frame", True), ("estimate", False)])
def test_video_background_feed_matches_the_graph(clip, seed32_ckpt, foreground, planar):
    """A graph that composites on the planes gets its video background as I420 made ahead by
    the feed; one on the RGB path gets RGB."""
    with open_source(str(clip)) as src:
        lay = src.layout

        def opener(choice, batch):
            spec = graph_spec(lay, choice, batch, model_short_side=32, foreground=foreground)
            return open_backend("torch", spec, seed32_ckpt)

        m = Matting(lay, [parse_background(str(clip))], opener)
        assert m.backend.spec.planar == planar
        assert m._feeds[0].planes == ((lay.matrix, lay.full_range) if planar else None)
        value = m._feeds[0].value()
        assert value.shape[1:] == ((lay.height * 3 // 2, lay.width) if planar else (lay.height, lay.width, 3))
        m.close()


def test_stages_overlap(clip, seed32_ckpt):
    """With matting and writing each 60 ms a frame, the stages overlap: at least half of the
    shorter stage's time is hidden behind the longer one (a serial loop would take their sum,
    whatever the load on the machine)."""
    with open_source(str(clip)) as src:
        opener = _opener(seed32_ckpt, src.layout)
        m = Matting(src.layout, [parse_background("blur")], lambda c, b: SlowBackend(opener(c, b), 0.06), 1)
        summary = run_offline(src, m, [Recorder(delay=0.06)])
    busy = {s.name: s.busy for s in summary.stages}
    assert busy["matting"] >= 6 * 0.06 and busy["encode"] >= 6 * 0.06
    longer, shorter = max(busy["matting"], busy["encode"]), min(busy["matting"], busy["encode"])
    assert summary.wall < longer + 0.5 * shorter
    assert summary.bottleneck in ("matting", "encode") and "bottleneck" in summary.table()


def test_stage_error_stops_the_run(clip, seed32_ckpt):
    class Broken(Recorder):
        def write(self, frame, composite, alpha):
            if frame.index == 2:
                raise RuntimeError("disk full")
            super().write(frame, composite, alpha)

    with open_source(str(clip)) as src:
        m = Matting(src.layout, [parse_background("blur")], _opener(seed32_ckpt, src.layout), 1)
        with pytest.raises(RuntimeError, match="disk full"):
            run_offline(src, m, [Broken()])


def test_interrupt_leaves_a_playable_file(tmp_path, seed32_ckpt):
    clip = make_clip(tmp_path / "long.mp4", frames=40)
    out = tmp_path / "out.mp4"

    class CtrlC:
        """Progress display that presses Ctrl-C once a few frames are written."""

        def update(self, done):
            if done >= 3:
                raise KeyboardInterrupt

        def finish(self, done):
            pass

    with open_source(str(clip)) as src:
        m = Matting(src.layout, [parse_background("blur")], _opener(seed32_ckpt, src.layout), 1)
        sink = FileSink(out, src.layout, rate=src.rate, time_base=src.time_base, audio_streams=src.audio_streams)
        summary = run_offline(src, m, [sink], progress=CtrlC())
        sink.close()
    assert summary.interrupted and 3 <= summary.frames < 40
    with av.open(str(out)) as c:
        assert len(list(c.decode(video=0))) == summary.frames


def test_mailbox_keeps_the_newest():
    box = Mailbox()
    for i in range(5):
        box.put(Frame(np.zeros((3, 2), np.uint8), "i420", i, Fraction(1, 30), i))
    assert box.take(0.01).index == 4 and box.dropped == 4 and box.received == 5
    assert box.take(0.01) is None
    box.close()
    assert box.finished


def test_live_drops_late_frames_and_latency_stays_bounded(seed32_ckpt):
    """A 30 fps real-time source and a 100 ms backend: most frames are dropped, none queue up."""
    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    opener = _opener(seed32_ckpt, src.layout)
    m = Matting(src.layout, [parse_background("blur")], lambda c, b: SlowBackend(opener(c, b), 0.1), 1)
    rec = Recorder()
    summary = run_live(src, m, [rec], duration=2.5, status_interval=1e9)
    assert summary.received >= 50  # the source kept running at about 30 fps
    assert 8 <= summary.shown <= 25 and summary.dropped >= summary.received - summary.shown - 2
    lat = summary.latency.values
    # One slow call plus a frame interval, never a growing queue. The first frame's call also
    # warms the backend up (PyTorch's kernels, once a process: 0.3 to 0.8 s on its own here).
    assert lat[0] < 2.0 and max(lat[1:]) < 0.5
    assert np.median(lat[-5:]) < np.median(lat[:5]) + 0.1  # no drift
    assert [i for i, _, _ in rec.frames] == sorted(i for i, _, _ in rec.frames)


def test_live_file_plays_at_its_own_speed_and_stops_at_the_end(tmp_path, seed32_ckpt):
    clip = make_clip(tmp_path / "c.mp4", frames=10, rate=20)
    src = open_source(str(clip), live=True)
    assert not src.paced
    m = Matting(src.layout, [parse_background("blur")], _opener(seed32_ckpt, src.layout), 1)
    summary = run_live(src, m, [Recorder()], status_interval=1e9)
    assert summary.received == 10 and summary.wall >= 0.45  # 10 frames at 20 fps: 0.45 s from first to last
    assert 1 <= summary.shown <= 10 and src.container is None  # and the source was closed


def test_live_udp_stream_over_loopback(seed32_ckpt):
    """A real network stream: MPEG-TS over UDP on loopback, sent in real time by PyAV."""
    import socket
    import threading

    from tests.media import shapes_frame

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        url = f"udp://127.0.0.1:{s.getsockname()[1]}"
    stop = threading.Event()

    def send() -> None:
        with av.open(url + "?pkt_size=1316", "w", format="mpegts") as out:
            v = out.add_stream("libx264", rate=25)
            v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
            v.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "5"}
            t0 = time.monotonic()
            for i in range(250):
                if stop.is_set():
                    break
                f = av.VideoFrame.from_ndarray(shapes_frame(i, 96, 64), format="rgb24")
                f.pts = i
                for p in v.encode(f):
                    out.mux(p)
                time.sleep(max(0.0, t0 + (i + 1) / 25 - time.monotonic()))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        src = open_source(url)
        assert src.live and src.paced and src.layout.width == 96
        m = Matting(src.layout, [parse_background("blur")], _opener(seed32_ckpt, src.layout), 1)
        summary = run_live(src, m, [Recorder()], duration=1.5, status_interval=1e9)
    finally:
        stop.set()
        sender.join()
    assert summary.received >= 25 and summary.shown >= 5
    assert summary.latency.percentile(95) < 0.5


def test_matting_moves_a_video_background_by_the_frames_times(clip, seed32_ckpt, tmp_path):
    """Six 25 fps frames over a 10 fps background end on its frame at 0.2 s (the frame at
    0.2 s), not six frames on."""
    background = make_clip(tmp_path / "bg.mp4", frames=10, rate=10, size=(48, 32), audio_rate=None)
    with open_source(str(clip)) as src:
        m = Matting(src.layout, [parse_background(str(background))], _opener(seed32_ckpt, src.layout, 32), 4)
        run_offline(src, m, [Recorder()])
        assert m._feeds[0]._current[0] == pytest.approx(0.2)
        m.close()


def test_a_transparent_video_background_moves_its_alpha_within_a_batch(clip, seed32_ckpt, tmp_path):
    """A VP9 overlay with alpha behind 25 fps frames, two a batch: each frame of the batch
    gets the overlay's frame at its time, with that frame's alpha as the mix graph's weight."""
    from tests.video.test_backgrounds import _overlay_video

    with open_source(str(clip)) as src:
        w, h = src.layout.width, src.layout.height
        overlay = _overlay_video(tmp_path / "wipe.webm", "libvpx-vp9", "yuva420p", frames=3)
        m = Matting(src.layout, [parse_background(str(overlay))], _opener(seed32_ckpt, src.layout, 32), 2)
        frames = [f for f in src.items() if isinstance(f, Frame)][:5]  # 0, 0.04, ... 0.16 s
        m.process(frames[:2])
        first = m.backend._background.copy()
        m.process(frames[3:5])  # (0.12 and 0.16 s: the overlay's second frame, from 0.1 s)
        second = m.backend._background
        assert m.backend.spec.background == "mix" and not m.backend.spec.planar
        assert first.shape == (2, h, w, 4)
        assert np.array_equal(first[0, ..., 3], first[1, ..., 3])  # (both within the overlay's first frame)
        assert (second[0, ..., 3] > 127).sum() > (first[0, ..., 3] > 127).sum() > 0  # the wipe went on
        m.close()


def test_a_mix_matting_runs_every_background_on_one_graph(clip, seed32_ckpt, tmp_path):
    """Live on a GPU: blur, a colour and an image on one "mix" graph (two blur strengths need
    two), switched with the temporal state kept in the one backend, each composite what
    the background's own graph gives."""
    import cv2

    image = tmp_path / "bg.png"
    cv2.imwrite(str(image), np.random.default_rng(2).integers(0, 256, (32, 48, 3), dtype=np.uint8))
    choices = [parse_background(b) for b in ("blur:8", "green", str(image))]
    with open_source(str(clip)) as src:
        frames = [f for f in src.items() if isinstance(f, Frame)][:3]
        opener = _opener(seed32_ckpt, src.layout, 32)
        opened = []
        mix = Matting(src.layout, choices, lambda c, b: opened.append(c) or opener(c, b), mix=True)
        assert mix.open_all() == 1 and [c.kind for c in opened] == ["mix"] and opened[0].strength == 8
        for i, choice in enumerate(choices):
            own = Matting(src.layout, [choice], opener)
            own.backend.reset(), mix.backend.reset()
            for frame in frames:
                (want, _), (got, _) = own.process([frame]), mix.process([frame])
                assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, choice
            own.close()
            if i < len(choices) - 1:
                backend = mix.backend
                mix.next_background()
                assert mix.backend is backend  # one graph: nothing to switch but its background
        mix.close()
        two = Matting(src.layout, [parse_background("blur:8"), parse_background("blur:24")], opener, mix=True)
        assert two.open_all() == 2
        two.close()


def test_warming_up_runs_each_graph_once_and_leaves_nothing_behind(clip, seed32_ckpt, tmp_path):
    """open_all(warm=True), as a live run does: every backend (image, colour, blur, and the
    mix graph) has run once, its history is forgotten, and the first real frames come out
    as from backends never warmed, background and all."""
    import cv2

    image = tmp_path / "bg.png"
    cv2.imwrite(str(image), np.random.default_rng(5).integers(0, 256, (32, 48, 3), dtype=np.uint8))
    with open_source(str(clip)) as src:
        frames = [f for f in src.items() if isinstance(f, Frame)][:2]
        opener = _opener(seed32_ckpt, src.layout, 32)
        calls: list[str] = []

        def counted(choice, batch):
            backend = opener(choice, batch)
            process = backend.process
            backend.process = lambda data: calls.append(backend.spec.background) or process(data)
            return backend

        for mix in (False, True):
            choices = [parse_background(b) for b in (str(image), "green", "blur:8")]
            warm, cold = Matting(src.layout, choices, counted, mix=mix), Matting(src.layout, choices, opener, mix=mix)
            calls.clear()
            assert warm.open_all(warm=True) == (1 if mix else 3)
            assert sorted(calls) == (["mix"] if mix else ["blur", "color", "image"])
            assert all((b.state == -1).all() for b in warm._backends.values())
            for _ in choices:
                for frame in frames:
                    (want, want_a), (got, got_a) = cold.process([frame]), warm.process([frame])
                    assert np.array_equal(got, want) and np.array_equal(got_a, want_a)
                warm.next_background(), cold.next_background()
            warm.close(), cold.close()


@pytest.mark.parametrize("ahead", [False, True], ids=["at-the-switch", "made-ahead"])
def test_switching_passes_over_a_damaged_background_and_closes_a_video_left(clip, seed32_ckpt, tmp_path, caplog, ahead):
    """``b`` through [a video, a damaged video, a colour, another colour], its feeds opened at
    each switch or made ahead (live): the damaged one is named and passed over, with the
    backend and the feed still agreeing (the colour's composite is what its own graph gives);
    the video's feed left behind has stopped its thread, and a new one starts when it comes
    round again."""
    video = make_clip(tmp_path / "bg.mp4", frames=4, size=(48, 32), audio_rate=None)
    (tmp_path / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    choices = [parse_background(str(p)) for p in (video, tmp_path / "broken.mp4")]
    choices += [parse_background("#3050a0"), parse_background("#000000")]
    with open_source(str(clip)) as src:
        frame = next(f for f in src.items() if isinstance(f, Frame))
        opener = _opener(seed32_ckpt, src.layout, 32)
        m = Matting(src.layout, choices, opener)
        m.open_all(ahead=ahead)
        first = m._feeds[0]._video._thread
        assert first.is_alive()
        with caplog.at_level("WARNING", logger="p3m_live"):
            assert m.next_background() is choices[2]
        assert "background video broken.mp4 is passed over" in caplog.text
        first.join(timeout=3)
        assert not first.is_alive() and 0 not in m._feeds
        own = Matting(src.layout, [choices[2]], opener)
        m.backend.reset()
        assert np.array_equal(m.process([frame])[0], own.process([frame])[0])
        assert m.next_background() is choices[3]
        assert m.next_background() is choices[0]
        assert m._feeds[0]._video._thread.is_alive() and m._feeds[0]._video._thread is not first
        m.close()
        stuck = Matting(src.layout, [choices[2], choices[1]], opener)  # nothing else opens: the colour stays
        stuck.open_all(ahead=ahead)
        assert stuck.next_background() is choices[2]
        stuck.backend.reset(), own.backend.reset()
        assert np.array_equal(stuck.process([frame])[0], own.process([frame])[0])
        stuck.close(), own.close()


def test_a_live_switch_finds_the_next_background_made_ahead(clip, seed32_ckpt, tmp_path, portrait_paths):
    """With ``ahead`` (live runs), the next background's feed is made on another thread while
    the current one shows, so a switch decodes nothing: the photo switched to can be gone
    from the disk by then, and its composite is still the one its own graph gives. Only the
    current feed and the next are held, however far a folder is switched through."""
    import cv2

    photos = []
    for k, (portrait, _) in enumerate(portrait_paths[:3]):
        photos.append(tmp_path / f"{k}.jpg")
        cv2.imwrite(str(photos[-1]), cv2.imread(str(portrait)))
    kept = photos[0].read_bytes()
    choices = [parse_background("#3050a0")] + [parse_background(str(p)) for p in photos]
    with open_source(str(clip)) as src:
        frame = next(f for f in src.items() if isinstance(f, Frame))
        opener = _opener(seed32_ckpt, src.layout, 32)
        own = Matting(src.layout, [choices[1]], opener)
        m = Matting(src.layout, choices, opener)
        assert m._coming is None  # (nothing is made ahead before open_all asks for it)
        m.open_all(ahead=True)
        made_for, made = m._coming
        assert made_for == 1
        made.result(timeout=10)
        photos[0].unlink()
        assert m.next_background() is choices[1]
        m.backend.reset()
        assert np.array_equal(m.process([frame])[0], own.process([frame])[0])
        assert m._coming[0] == 2
        photos[0].write_bytes(kept)  # (it comes round again below)
        for _ in range(2 * len(choices)):
            m.next_background()
            assert set(m._feeds) <= {m.current, (m.current + 1) % len(choices)}
        m.close(), own.close()
