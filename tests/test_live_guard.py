"""Fail-closed live output: backends that raise, hang or return NaN never let the camera through."""

from __future__ import annotations

import logging
import time

import av
import numpy as np
import pytest

from p3m_live.backends.base import Backend
from p3m_live.errors import P3MError
from p3m_live.live import run_live
from p3m_live.pipeline import Matting, graph_spec
from p3m_live.privacy import blur_i420
from p3m_live.spec import rgb_to_planes
from p3m_live.video.backgrounds import parse_background
from p3m_live.video.sinks import Sink
from p3m_live.video.sources import AVSource, Source


def rgb_to_i420(rgb: np.ndarray, matrix: str, full_range: bool) -> np.ndarray:
    return rgb_to_planes(rgb[None], matrix, full_range)[0]


GREEN = rgb_to_i420(np.full((64, 96, 3), (0, 200, 0), np.uint8), "bt601", False)
BLUE = rgb_to_i420(np.full((64, 96, 3), (0, 0, 255), np.uint8), "bt601", False)
CHECKS = rgb_to_i420(
    np.kron(np.indices((8, 12)).sum(0) % 2, np.ones((8, 8)))[..., None].repeat(3, 2).astype(np.uint8) * 255,
    "bt601",
    False,
)


class FlakyBackend(Backend):
    """A test double for a failing backend: green composites, except on calls
    ``bad`` (a range), where it raises, hangs for ``hang`` seconds, or returns NaN."""

    def __init__(self, spec, mode: str, bad: range, hang: float = 1.0, good: np.ndarray = GREEN) -> None:
        super().__init__(spec)
        self.mode, self.bad, self.hang, self.calls, self.good = mode, bad, hang, 0, good

    def _run(self, inputs):
        self.calls += 1
        h, w = self.spec.height, self.spec.width
        out = {
            "composite": self.good[None].copy(),
            "alpha": np.full((1, h, w), 255, np.uint8),
            "state_alpha_out": inputs["state_alpha"],
        }
        if self.calls in self.bad:
            if self.mode == "raise":
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            if self.mode == "hang":
                time.sleep(self.hang)
            if self.mode == "nan":
                out["composite"] = np.full(out["composite"].shape, np.nan, np.float32)
        return out


class Recorder(Sink):
    def __init__(self) -> None:
        self.composites: list[np.ndarray] = []

    def write(self, frame, composite, alpha):
        self.composites.append(composite.copy())


def _run(mode: str, bad: range, background: str = "#0000ff", duration: float = 2.0, good: np.ndarray = GREEN):
    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    backend = {}

    def opener(choice, batch):
        backend["b"] = FlakyBackend(graph_spec(src.layout, choice, batch), mode, bad, good=good)
        return backend["b"]

    matting = Matting(src.layout, [parse_background(background)], opener)
    rec = Recorder()
    summary = run_live(src, matting, [rec], duration=duration, status_interval=1e9, deadline=0.2)
    return summary, rec.composites, backend["b"]


def _kinds(outs: list[np.ndarray]) -> list[str]:
    """Each output as "green" (a good composite), "blue" (the privacy frame) or "other"."""
    return ["green" if np.array_equal(o, GREEN) else "blue" if np.array_equal(o, BLUE) else "other" for o in outs]


@pytest.mark.parametrize("mode", ["raise", "hang", "nan"])
def test_failures_show_the_background_never_the_camera(mode, caplog):
    caplog.set_level(logging.INFO, logger="p3m_live")
    summary, outs, backend = _run(mode, range(5, 10) if mode != "hang" else range(5, 6))
    kinds = _kinds(outs)
    assert "other" not in kinds  # nothing but good composites and privacy frames, ever
    after = kinds[kinds.index("green") :]  # (a loaded machine may show privacy frames while starting)
    assert after.count("blue") >= (5 if mode != "hang" else 4)  # the hang lasted 1 s: privacy frames kept coming
    assert after[-1] == "green"  # recovered by itself
    assert summary.failures == 1 and summary.privacy_frames == kinds.count("blue")
    text = caplog.text
    assert "showing the privacy frame" in text and "recovered" in text
    assert {"raise": "CUDA error", "hang": "no result for", "nan": "NaN"}[mode] in text


def test_blur_background_fails_to_a_heavy_blur_of_the_last_good_frame():
    summary, outs, _ = _run("raise", range(3, 6), background="blur", duration=1.5, good=CHECKS)
    first = next(i for i, o in enumerate(outs) if np.array_equal(o, CHECKS))
    blurred = [o for o in outs[first:] if not np.array_equal(o, CHECKS)]
    assert len(blurred) >= 3 and summary.failures == 1
    assert all(np.array_equal(b, blur_i420(CHECKS)) for b in blurred)


def test_failure_before_any_good_frame_is_grey():
    summary, outs, _ = _run("raise", range(1, 10_000), background="blur", duration=1.0)
    assert outs and all((o == 128).all() for o in outs) and summary.shown == 0


def test_heavy_blur_removes_detail():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (96, 128), dtype=np.uint8)  # I420 of a 128x64 noise image
    out = blur_i420(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    detail = [np.abs(np.diff(f[:64].astype(int), axis=1)).mean() for f in (out, frame)]
    assert detail[0] < 0.1 * detail[1]


def test_slow_first_matte_is_warm_up_not_a_failure(caplog):
    """A backend whose first call takes 0.6 s: privacy frames until the first matte, no failure."""
    caplog.set_level(logging.INFO, logger="p3m_live")
    summary, outs, _ = _run("hang", range(1, 2), duration=1.5)
    kinds = _kinds(outs)
    assert "other" not in kinds and kinds[0] == "blue" and kinds[-1] == "green"
    assert summary.failures == 0 and summary.privacy_frames >= 5
    assert "waiting for the first matte" in caplog.text and "failed" not in caplog.text


def test_a_lost_source_is_reopened_while_privacy_frames_go_out(caplog):
    """A camera unplugged or a stream dropped: the outputs keep going with the background
    alone, the source is reopened, and the composites come back. Real lavfi sources that
    end after 0.5 s stand in for the camera (each reopen gives a fresh one); the first
    two reopen attempts fail, as a camera that is not back yet."""
    caplog.set_level(logging.INFO, logger="p3m_live")

    def camera() -> AVSource:
        return AVSource("testsrc2=size=96x64:rate=30:duration=0.5,realtime", format="lavfi", live=True)

    attempts = []

    def reopen() -> AVSource:
        attempts.append(time.monotonic())
        if len(attempts) <= 2:
            raise P3MError("camera /dev/video0: no such file or device; check the path")
        return camera()

    src = camera()
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )
    rec = Recorder()
    summary = run_live(src, matting, [rec], duration=2.5, status_interval=1e9, reopen=reopen, reconnect_every=0.3)
    kinds = _kinds(rec.composites)
    assert "other" not in kinds
    first_blue = kinds.index("blue")
    assert "green" in kinds[first_blue:]  # composites again after the gap
    assert kinds[first_blue:].count("blue") >= 15  # about 0.9 s of privacy frames at 30 fps: the gap was filled
    assert summary.shown > 20 and len(attempts) >= 3  # more than the first source's 15 frames
    assert "the source ended: privacy frames until it is back" in caplog.text and "the source is back" in caplog.text


def test_a_source_that_comes_back_different_stops_the_run():
    src = AVSource("testsrc2=size=96x64:rate=30:duration=0.3,realtime", format="lavfi", live=True)
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )

    def reopen() -> AVSource:
        return AVSource("testsrc2=size=128x64:rate=30,realtime", format="lavfi", live=True)

    with pytest.raises(P3MError, match="came back as 128x64 i420, not as before, and its frames have another shape"):
        run_live(src, matting, [Recorder()], duration=3.0, status_interval=1e9, reopen=reopen, reconnect_every=0.2)


def test_a_stream_that_comes_back_at_another_size_of_its_shape_is_scaled(caplog):
    """A stream reopened at twice the size (a sender that changed its output size): its
    frames are scaled to the run's, and the composites come back."""
    caplog.set_level(logging.INFO, logger="p3m_live")
    src = AVSource("testsrc2=size=96x64:rate=30:duration=0.4,realtime", format="lavfi", live=True)
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )
    sizes = []

    class Sizes(Recorder):
        def write(self, frame, composite, alpha):
            super().write(frame, composite, alpha)
            if frame.data is not None:
                sizes.append(frame.data.shape)

    def reopen() -> AVSource:
        return AVSource("testsrc2=size=192x128:rate=30,realtime", format="lavfi", live=True)

    rec = Sizes()
    run_live(src, matting, [rec], duration=2.0, status_interval=1e9, reopen=reopen, reconnect_every=0.2)
    kinds = _kinds(rec.composites)
    assert "other" not in kinds and kinds[-1] == "green" and kinds.count("green") > 20  # (15 before the loss)
    assert set(sizes) == {(96, 96)}  # every frame as the run's 96x64 I420
    assert "came back as 192x128 i420: scaled to 96x64 i420, as before" in caplog.text


class StallingCamera(Source):
    """A test double for a camera that stalls without an error (a USB hiccup; no real
    device here): a real lavfi source whose frames stop for ``pause`` seconds after
    ``before`` frames, then go on; or, with ``gives_up``, end in the error a camera read
    without blocking gives after its stall time (see ``AVSource(stall=...)``)."""

    def __init__(self, before: int, pause: float, gives_up: bool = False) -> None:
        self.real = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
        self.layout, self.rate, self.time_base = self.real.layout, self.real.rate, self.real.time_base
        self.live, self.before, self.pause, self.gives_up = True, before, pause, gives_up

    def items(self):
        for i, item in enumerate(self.real.items()):
            if i == self.before:
                time.sleep(self.pause)
                if self.gives_up:
                    raise P3MError(f"camera /dev/video0 sent no frame for {self.pause:.1f} s (stalled)")
            yield item

    def close(self) -> None:
        self.real.close()


def test_a_stalled_source_gets_privacy_frames_until_it_sends_again(caplog):
    caplog.set_level(logging.INFO, logger="p3m_live")
    src = StallingCamera(before=20, pause=2.0)
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )
    rec = Recorder()

    def reopen():
        raise AssertionError("a stalled source is waited for, not reopened")

    run_live(src, matting, [rec], duration=3.5, status_interval=1e9, reopen=reopen)
    kinds = _kinds(rec.composites)
    assert "other" not in kinds
    gap = kinds[kinds.index("blue") :]
    assert 15 <= gap.count("blue") <= 45 and gap[-1] == "green"  # about 1 s of privacy frames, then composites
    assert "no frame from the source for 1.0 s" in caplog.text and "frames from the source again" in caplog.text


def test_privacy_frames_convert_a_held_video_background_once(tmp_path, monkeypatch):
    """During a failure the video background holds still: its privacy frame is converted to
    I420 once, not again for every frame the output thread shows; when it moves on, again."""
    from p3m_live import privacy
    from p3m_live.video.frames import Layout
    from tests.media import make_clip

    layout = Layout(96, 64, "i420", False, "bt601")
    background = make_clip(tmp_path / "bg.mp4", frames=5, size=(96, 64), audio_rate=None)
    matting = Matting(
        layout, [parse_background(str(background))], lambda c, b: FlakyBackend(graph_spec(layout, c, b), "", range(0))
    )
    calls = []
    real = privacy.rgb_to_planes
    monkeypatch.setattr(privacy, "rgb_to_planes", lambda *a: calls.append(1) or real(*a))
    frames = privacy.PrivacyFrames(matting)
    first = [frames.frame() for _ in range(5)]
    assert len(calls) == 1 and all(np.array_equal(f, first[0]) for f in first)
    matting._feeds[0].value([0.0]), matting._feeds[0].value([0.04])  # the background moves on a frame
    moved = frames.frame()
    assert len(calls) == 2 and not np.array_equal(moved, first[0])
    matting.close()


def test_a_transparent_backgrounds_privacy_frame_puts_it_over_the_heavy_blur(tmp_path):
    """A logo over the blurred room fails to the logo over the heavy blur of the last good
    composite (grey before there is one): where it is opaque the logo, elsewhere never more
    than the heavy blur shows."""
    from PIL import Image

    from p3m_live import privacy
    from p3m_live.video.frames import Layout

    layout = Layout(96, 64, "i420", False, "bt601")
    rgba = np.zeros((64, 96, 4), np.uint8)
    rgba[:, :48] = (200, 30, 40, 255)  # the left half opaque, the right transparent
    Image.fromarray(rgba).save(tmp_path / "logo.png")
    choice = parse_background(str(tmp_path / "logo.png"))
    matting = Matting(layout, [choice], lambda c, b: FlakyBackend(graph_spec(layout, c, b), "", range(0)))
    assert matting.backend.spec.background == "mix"
    frames = privacy.PrivacyFrames(matting)
    logo = rgb_to_i420(rgba[..., :3], "bt601", False)
    y = slice(None, 64)
    grey = frames.frame()
    assert np.array_equal(grey[y, :44], logo[y, :44]) and (grey[y, 52:] == 128).all()
    frames.good(CHECKS)
    over = frames.frame()
    heavy = blur_i420(CHECKS)
    assert np.array_equal(over[y, :44], logo[y, :44]) and np.abs(over[y, 52:].astype(int) - heavy[y, 52:]).max() <= 1
    u = over[64:80].reshape(32, 48)  # (the U plane)
    assert np.abs(u[:, :20].astype(int) - logo[64:80].reshape(32, 48)[:, :20]).max() <= 1
    assert np.abs(u[:, 28:].astype(int) - heavy[64:80].reshape(32, 48)[:, 28:]).max() <= 1
    matting.close()


def test_a_camera_stalled_for_good_is_reopened(caplog):
    """Privacy frames after a second of silence, then, when the camera's read gives up on
    the stall, a reopen, and composites again from the new one."""
    caplog.set_level(logging.INFO, logger="p3m_live")
    src = StallingCamera(before=15, pause=1.5, gives_up=True)
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )
    rec = Recorder()
    reopened = []

    def reopen():
        reopened.append(StallingCamera(before=10_000, pause=0))
        return reopened[-1]

    run_live(src, matting, [rec], duration=3.5, status_interval=1e9, reopen=reopen, reconnect_every=0.2)
    kinds = _kinds(rec.composites)
    gap = kinds[kinds.index("blue") :]
    assert "other" not in kinds and len(reopened) == 1 and gap[-1] == "green"
    assert 8 <= gap.count("blue") <= 60  # from 1 s of silence to the reopen (at 1.5 s, and 0.2 s more)
    assert "no frame from the source for 1.0 s" in caplog.text
    assert "the source failed (camera /dev/video0 sent no frame for 1.5 s (stalled))" in caplog.text
    assert "the source is back" in caplog.text


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])  # the sound copied, and re-encoded (Opus)
def test_outputs_stay_on_one_clock_across_a_reconnect_with_their_sound(tmp_path, suffix):
    """A real recording of a live source (lavfi video and sound, 0.5 s a connection) that
    ends and is reopened, its clock starting at zero again each time: in the file, the
    video runs forwards over the whole run, the gaps held by privacy frames on the run's
    clock, and the sound of every connection is there, in step with the picture."""

    from p3m_live.video.sinks import FileSink

    graph = (
        "testsrc2=size=96x64:rate=30:duration=0.5,settb=1/90000,realtime[out0];"  # (an MPEG-TS stream's clock)
        "sine=frequency=440:sample_rate=16000:duration=0.5,arealtime[out1]"
    )

    opened, open_before = [], []

    def camera() -> AVSource:
        if len(opened) >= 2:  # (one replaced a whole connection ago: its sound is written by now)
            open_before.append(opened[-2].container is not None)
        opened.append(AVSource(graph, format="lavfi", live=True))
        return opened[-1]

    src = camera()
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )
    out = tmp_path / f"call{suffix}"
    sink = FileSink(out, src.layout, rate=src.rate, time_base=src.time_base, audio_streams=src.audio_streams)
    t0 = time.monotonic()
    run_live(src, matting, [sink], duration=2.5, status_interval=1e9, reopen=camera, reconnect_every=0.3)
    wall = time.monotonic() - t0
    sink.close()
    with av.open(str(out)) as c:
        video = [f.time for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        sound = [(float(p.pts * p.time_base), float(p.duration * p.time_base)) for p in c.demux(audio=0) if p.size]
    assert all(b > a for a, b in zip(video, video[1:]))
    assert video[-1] - video[0] > wall - 0.6  # the whole run, not the gap squeezed into ticks
    gaps = [b[0] - (a[0] + a[1]) for a, b in zip(sound, sound[1:])]
    assert max(gaps) > 0.15  # the second connection's sound after the gap (0.3 s and more), not closed up
    n = len(opened)  # (the last one may be cut short by the end of the run)
    assert n >= 2 and 0.5 * (n - 1) < sum(d for _, d in sound) <= 0.5 * n + 0.05  # every connection's sound
    assert abs((sound[-1][0] + sound[-1][1]) - video[-1]) < 0.3  # still in step at the end
    assert open_before and not any(open_before)  # replaced sources are closed during the run, not kept
    assert all(c.container is None for c in opened)  # ... and the rest at the end


def test_a_microphone_stands_in_for_the_sources_own_sound_without_a_word(caplog):
    """With a microphone, the source's own sound (lavfi's, here) is simply not used: no
    warning that it "came back with other sound"."""
    from p3m_live.video.devices import SoundSource

    caplog.set_level(logging.INFO, logger="p3m_live")
    graph = "testsrc2=size=96x64:rate=30,realtime[out0];sine=frequency=440:sample_rate=16000,arealtime[out1]"
    src = AVSource(graph, format="lavfi", live=True)
    mic = SoundSource("sine=frequency=880:sample_rate=16000,arealtime", "lavfi", "the microphone")
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )
    run_live(src, matting, [Recorder()], duration=1.0, status_interval=1e9, microphone=mic)
    mic.close()
    assert src.audio_streams and "other sound" not in caplog.text


def test_a_microphone_that_stops_is_reopened(tmp_path, caplog):
    """A microphone unplugged mid-call (here FFmpeg's lavfi sine, in real time, ending after
    0.8 s each time it is opened): the outputs go on without sound until it is back, then
    with its sound again, on the run's clock."""
    from p3m_live.video.devices import SoundSource
    from p3m_live.video.sinks import FileSink

    caplog.set_level(logging.INFO, logger="p3m_live")

    opened, open_before = [], []

    def microphone() -> SoundSource:
        if len(opened) >= 2:  # (one reopened here, replaced 0.3 s ago: its sound is written by now)
            open_before.append(opened[-1].container is not None)
        sine = "sine=frequency=440:sample_rate=16000:duration=0.8,arealtime"
        opened.append(SoundSource(sine, "lavfi", "the microphone"))
        return opened[-1]

    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    mic = microphone()
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )
    out = tmp_path / "call.mkv"
    sink = FileSink(out, src.layout, rate=src.rate, time_base=src.time_base, audio_streams=mic.audio_streams)
    run_live(src, matting, [sink], duration=3.0, status_interval=1e9, microphone=mic,
             reopen_microphone=microphone, reconnect_every=0.3)  # fmt: skip
    sink.close()
    mic.close()
    with av.open(str(out)) as c:
        sound = [(float(p.pts * p.time_base), float(p.duration * p.time_base)) for p in c.demux(audio=0) if p.size]
    gaps = [b[0] - (a[0] + a[1]) for a, b in zip(sound, sound[1:])]
    heard = sum(d for _, d in sound)
    assert 1.5 < heard < 2.7 and max(gaps) > 0.2  # more than the first 0.8 s, with the gaps kept
    assert "the microphone ended; the outputs go on without sound, reopening it every 0.3 s" in caplog.text
    assert "the microphone is back" in caplog.text
    assert open_before and not any(open_before)  # replaced ones are closed during the run, not kept


def test_a_recording_that_fills_the_disk_stops_and_the_call_goes_on(small_disk, caplog):
    """A live run feeding a call and recording onto a disk that fills: the recording stops
    as the disk fills, finished and playable as far as it got, and the call's frames keep
    coming; the run's end raises the disk's error."""
    from p3m_live.video.relay import Relay
    from p3m_live.video.sinks import FileSink

    disk = small_disk("48k")
    src = AVSource("testsrc2=size=96x64:rate=30,realtime", format="lavfi", live=True)
    matting = Matting(
        src.layout, [parse_background("#0000ff")], lambda c, b: FlakyBackend(graph_spec(src.layout, c, b), "", range(0))
    )
    recording = FileSink(disk / "call.mp4", src.layout, rate=src.rate, time_base=src.time_base, preset="ultrafast")
    relay, call = Relay(recording, "call.mp4", outlived=True), Recorder()
    run_live(src, matting, [relay, call], duration=2.0, status_interval=1e9)
    with pytest.raises(P3MError, match=r"the disk is full: call\.mp4 could not be written after \d+ frames"):
        relay.close()
    stopped = next(r for r in caplog.records if "stopped (the disk is full" in r.getMessage())
    assert len(call.composites) > 50  # about 60 frames: the whole run
    with av.open(str(disk / "call.partial.mp4")) as c:
        kept = sum(1 for _ in c.decode(video=0))  # every frame of it decodes
    assert 0 < kept <= 30 and stopped.created < time.time() - 0.5  # stopped a second in, not at the end
