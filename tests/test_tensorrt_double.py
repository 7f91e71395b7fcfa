"""The TensorRT backend's own code, run here against test doubles of TensorRT and pycuda.

No machine here has TensorRT or a GPU (tests/test_tensorrt.py is the real test, skipped
here). The doubles in tests/doubles/ keep "device" memory on the host and run the plan's
ONNX with ONNX Runtime, so what these tests check is our side of the API: the engine
store and builder calls, the named-tensor bindings, the recurrent state chained through
device addresses by the slot schedule, and the CUDA context pushed on every thread that
touches the device. Nothing here says anything about TensorRT's numbers or speed.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from p3m_live.backends.base import file_digest
from p3m_live.backends.onnxruntime_backend import OnnxRuntimeBackend
from p3m_live.backends.tensorrt_backend import TensorRTBackend, input_shapes
from p3m_live.cli import main
from p3m_live.errors import P3MError
from p3m_live.graph import GraphSpec
from tests.media import make_clip, portrait_i420, probe

DOUBLES = Path(__file__).parent / "doubles"
SPEC = GraphSpec(96, 128, "i420", "i420", model_short_side=64, background="color", temporal="ema", precision="fp16")
GREEN = (0, 177, 64)


@pytest.fixture
def trt_double(monkeypatch):
    """The doubles as ``tensorrt`` and ``pycuda`` (any real ones are put back afterwards)."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("tensorrt", "pycuda")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(DOUBLES))
    import pycuda.driver as cuda
    import tensorrt as trt

    assert Path(trt.__file__).is_relative_to(DOUBLES) and Path(cuda.__file__).is_relative_to(DOUBLES)
    cuda.freed_without_context.clear()
    yield trt, cuda
    gc.collect()
    freed = list(cuda.freed_without_context)
    for name in [m for m in sys.modules if m.split(".")[0] in ("tensorrt", "pycuda")]:
        del sys.modules[name]
    assert not freed, "device memory was freed with no CUDA context current"


def _frames(portrait_paths, n: int) -> list[np.ndarray]:
    return [portrait_i420(img, SPEC.width, SPEC.height) for img, _ in portrait_paths[:n]]


def _same(got, want) -> None:
    assert len(got) == len(want)
    for (c, a), (wc, wa) in zip(got, want):
        np.testing.assert_array_equal(a, wa)
        np.testing.assert_array_equal(c, wc)


def test_a_plan_with_the_foreground_track_returns_its_colours(trt_double, seed32_ckpt, portrait_paths, tmp_path):
    """--fg-out on TensorRT: the plan's fourth output comes back third, after the composite and
    the alpha, through the run-ahead path too, as ONNX Runtime gives it from the same graph."""
    spec = SPEC.with_(foreground_track=True)
    frames = [portrait_i420(img, spec.width, spec.height) for img, _ in portrait_paths[:2]]
    with TensorRTBackend(spec, seed32_ckpt, engine_dir=tmp_path) as be:
        be.set_background(GREEN)
        got = [r for f in frames for r in be.submit(f)] + be.flush()
    with OnnxRuntimeBackend(spec, seed32_ckpt) as ref:
        ref.set_background(GREEN)
        want = [ref.process(f) for f in frames]
    assert [len(r) for r in got] == [3, 3] and got[0][2].shape == (1, spec.height, spec.width, 3)
    for ours, theirs in zip(got, want):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(got[0][2], got[1][2])  # (two portraits: two sets of colours)


def test_the_plan_runs_like_onnxruntime_with_the_state_on_the_device(
    trt_double, seed32_ckpt, portrait_paths, tmp_path, caplog
):
    trt, _ = trt_double
    caplog.set_level("INFO", logger="p3m_live")
    frames = _frames(portrait_paths, 4)
    with TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path) as be:
        be.set_background(GREEN)
        one_by_one = [be.process(f) for f in frames]  # Backend.process: the state handed back each call
        be.reset()
        ahead = [r for f in frames for r in be.submit(f)] + be.flush()  # one call in flight, state on the device
    with OnnxRuntimeBackend(SPEC, seed32_ckpt) as ref:  # the same FP16 graph, run directly
        ref.set_background(GREEN)
        want = [ref.process(f) for f in frames]
        fresh = []
        for f in frames:
            ref.reset()
            fresh.append(ref.process(f)[1])
    _same(one_by_one, want)
    _same(ahead, want)
    # The comparison can fail: without the previous frame's state the alphas differ.
    assert any(not np.array_equal(a, w[1]) for a, w in zip(fresh[1:], want[1:]))

    assert "building the TensorRT engine (no engine was built for this yet)" in caplog.text
    assert "engine build: Building engine" in caplog.text  # the progress monitor spoke
    (plan,) = tmp_path.glob("*.plan")
    meta = json.loads(plan.with_suffix(".json").read_text())
    assert meta["tensorrt"] == trt.__version__ and meta["gpu"] == "Double GPU (host memory)"
    header = json.loads(plan.read_bytes()[len(trt.MAGIC) :].split(b"\n", 1)[0])
    assert header["flags"] & (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    (timing,) = tmp_path.glob("timing-*.cache")
    assert timing.stat().st_size > 0  # kept for the next build

    mtime = plan.stat().st_mtime_ns
    caplog.clear()
    with TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path):
        pass
    assert plan.stat().st_mtime_ns == mtime and "building" not in caplog.text  # loaded, not rebuilt


def test_other_threads_push_the_context(trt_double, seed32_ckpt, portrait_paths, tmp_path):
    """The live worker thread calls the backend: every call pushes the primary context."""
    _, cuda = trt_double
    (frame,) = _frames(portrait_paths, 1)
    with TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path) as be:
        be.set_background(GREEN)
        here = be.process(frame)
        be.reset()
        there = {}
        worker = threading.Thread(target=lambda: there.setdefault("out", be.process(frame)))
        worker.start()
        worker.join()
        _same([there["out"]], [here])
        # The error pycuda raises without the push (what the double enforces, so the
        # calls above prove the push): the slot schedule called bare.
        inputs = {"frame": frame[None], "background": np.array([GREEN], np.uint8), "state_alpha": be.state}
        with pytest.raises(cuda.LogicError, match="no currently active context"):
            be.pipe.run(inputs)


def test_build_errors_are_one_clear_message(trt_double, seed32_ckpt, tmp_path):
    from p3m_live.backends.onnxruntime_backend import cached_onnx
    from p3m_live.trt.build import build_engine

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(P3MError, match="TensorRT cannot parse junk.onnx"):
        build_engine(junk, tmp_path / "a.plan", {})
    onnx = cached_onnx(SPEC, seed32_ckpt)
    shapes = input_shapes(SPEC.with_(batch=2))  # a profile the fixed-size graph contradicts
    with pytest.raises(P3MError, match="could not build the engine"):
        build_engine(onnx, tmp_path / "b.plan", shapes)
    assert not (tmp_path / "b.plan").exists()


def test_a_plan_tensorrt_cannot_load_says_what_to_do(trt_double, seed32_ckpt, tmp_path):
    with TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path):
        pass
    (plan,) = tmp_path.glob("*.plan")
    side = plan.with_suffix(".json")
    plan.write_bytes(b"a plan from some other build of the same TensorRT version")
    meta = json.loads(side.read_text())
    meta["plan_sha256"] = file_digest(plan, None)  # a consistent sidecar
    side.write_text(json.dumps(meta))
    with pytest.raises(P3MError, match="cannot be loaded by TensorRT .*delete it to rebuild"):
        TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path)


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as f:
        return [fr.to_ndarray(format="yuv420p") for fr in f.decode(video=0)]


def test_prepare_then_run_offline_on_the_tensorrt_backend(trt_double, seed32_ckpt, tmp_path, capsys):
    """The command line on --backend tensorrt --device cuda: GPU defaults (batch 4, FP16,
    foreground estimation), --prepare builds the engine ahead, the run only loads it, and
    the frames equal ONNX Runtime's run of the same graph."""
    clip = make_clip(tmp_path / "in.mp4", frames=10, size=(128, 96))
    engines = tmp_path / "engines"
    common = ["--weights", str(seed32_ckpt), "--model-size", "64", "-q", str(clip), "--background", "#00b140"]
    trt_run = [*common, "--backend", "tensorrt", "--device", "cuda", "--engine-dir", str(engines)]
    out = tmp_path / "trt.mp4"
    assert main([*trt_run, "-o", str(out), "--prepare"]) == 0
    assert "building the TensorRT engine" in capsys.readouterr().err and not out.exists()
    assert len(list(engines.glob("*.plan"))) == 1
    assert main([*trt_run, "-o", str(out)]) == 0
    assert "building" not in capsys.readouterr().err
    ref = tmp_path / "ort.mp4"
    same_graph = ["--backend", "onnxruntime", "--precision", "fp16", "--batch", "4", "--foreground", "estimate"]
    assert main([*common, *same_graph, "-o", str(ref)]) == 0
    got, want = _decoded(out), _decoded(ref)
    assert len(got) == 10 and all(np.array_equal(g, w) for g, w in zip(got, want))
    assert probe(out)["audio"] == probe(clip)["audio"]


def test_live_run_builds_its_one_engine_before_output(trt_double, seed32_ckpt, tmp_path, capsys):
    """Live on the TensorRT backend: one engine, the mix graph, serves the blur and the green
    that b switches between; it is built before the output starts, and matting runs on the
    live worker thread (the context pushed there)."""
    import json

    engines, out = tmp_path / "engines", tmp_path / "live.mp4"
    argv = ["testsrc2=size=64x48:rate=30", "--format", "lavfi", "--live", "-o", str(out), "--duration", "1.5"]
    argv += ["--weights", str(seed32_ckpt), "--model-size", "32", "--backend", "tensorrt", "--device", "cuda"]
    assert main([*argv, "--engine-dir", str(engines)]) == 0
    err = capsys.readouterr().err
    assert err.count("building the TensorRT engine") == 1 and len(list(engines.glob("*.plan"))) == 1
    (sidecar,) = engines.glob("*.json")
    assert json.loads(sidecar.read_text())["background"] == "mix"
    assert "matting failed" not in err  # a failing backend would still give frames: privacy frames
    assert len(probe(out)["times"]) >= 3


def test_build_engine_command_builds_once_per_size(trt_double, seed32_ckpt, tmp_path, capsys):
    engines = tmp_path / "engines"
    argv = ["build-engine", "--size", "128x96", "--size", "96x64", "--weights", str(seed32_ckpt)]
    argv += ["--model-size", "32", "--background", "blur", "--engine-dir", str(engines)]
    assert main(argv) == 0
    first = capsys.readouterr()
    plans = first.out.split()
    assert len(plans) == 2 and all(Path(p).is_file() and Path(p).parent == engines for p in plans)
    assert first.err.count("building the TensorRT engine") == 2
    assert main(argv) == 0
    again = capsys.readouterr()
    assert again.out.split() == plans and "building" not in again.err  # both found in the store


def test_engines_of_one_run_share_their_activation_memory(trt_double, seed32_ckpt, portrait_paths, tmp_path):
    """A live run holds one engine per background kind and runs one at a time: their contexts
    share one block, as large as the largest needs, moved when a larger engine arrives."""
    from p3m_live.backends.tensorrt_backend import _SCRATCH

    frames = _frames(portrait_paths, 2)
    small = TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path)  # colour: no background image input
    first_block = small.context.device_memory
    assert small.context.user_managed and first_block[1] == small.engine.device_memory_size_v2
    big = TensorRTBackend(SPEC.with_(background="image"), seed32_ckpt, engine_dir=tmp_path)
    need = big.engine.device_memory_size_v2
    assert need > first_block[1]
    assert small.context.device_memory == big.context.device_memory == (int(_SCRATCH[0].block), need)
    small.set_background(GREEN)
    big.set_background(np.zeros((SPEC.height, SPEC.width, 3), np.uint8))
    with OnnxRuntimeBackend(SPEC, seed32_ckpt) as ref:
        ref.set_background(GREEN)
        _same([small.process(f) for f in frames], [ref.process(f) for f in frames])  # (reset by a fresh backend)
    big.process(frames[0])
    # Two at once would share the block mid-computation: refused.
    big.submit(frames[1])
    with pytest.raises(P3MError, match="share scratch memory were run at the same time"):
        small.process(frames[0])
    big.flush()
    small.process(frames[0])
    big.close()
    assert _SCRATCH[0].contexts == [small.context] and _SCRATCH[0].size == need
    small.close()
    assert _SCRATCH[0].block is None and _SCRATCH[0].size == 0


def test_tensorrt_without_user_managed_memory_gives_each_context_its_own(
    trt_double, seed32_ckpt, portrait_paths, tmp_path, monkeypatch
):
    """TensorRT 10.0 has no device_memory_size_v2 (nor set_device_memory with a size): each
    context allocates its own, as before."""
    trt, _ = trt_double
    monkeypatch.delattr(trt.ICudaEngine, "device_memory_size_v2")
    with TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path) as be:
        assert be.scratch is None and not be.context.user_managed
        be.set_background(GREEN)
        assert be.process(_frames(portrait_paths, 1)[0])[1].shape == (1, SPEC.height, SPEC.width)


def test_the_build_step_counter_shows_on_a_terminal_only(trt_double, monkeypatch, caplog):
    """The builder's progress: each top-level phase a log line; its steps counted in place
    on a terminal, the line ended when the phase finishes; not into a file or pipe (a line
    per step), and never failing the build on a terminal that hung up."""
    import os

    import tensorrt as trt

    from p3m_live.trt.build import _progress_monitor
    from tests.terminal import Terminal

    if os.name != "posix":
        pytest.skip("pseudo-terminals are POSIX")

    def build(stream) -> None:
        with monkeypatch.context() as m:
            m.setattr(sys, "stderr", stream)
            monitor = _progress_monitor(trt)
            monitor.phase_start("Building engine", None, 3)
            monitor.phase_start("Tactic timing", "Building engine", 9)  # (a sub-phase: not counted)
            for step in range(9):
                assert monitor.step_complete("Tactic timing", step)
            monitor.phase_finish("Tactic timing")
            for step in range(3):
                assert monitor.step_complete("Building engine", step)
            monitor.phase_finish("Building engine")

    with caplog.at_level("INFO", logger="p3m_live"):
        for hung_up in (False, True):
            terminal = Terminal()
            if hung_up:
                terminal.hang_up()
            build(terminal.stream)
            if not hung_up:
                shown = terminal.shown()
                counted = "\r  Building engine: 1/3\r  Building engine: 2/3\r  Building engine: 3/3\r\n"
                assert shown.endswith(counted) and shown.count("/3") == 3  # (after the log line, where it goes here)
            terminal.close()
        with open(os.devnull, "w") as piped:
            build(piped)
    assert caplog.text.count("engine build: Building engine") == 3 and "Tactic timing" not in caplog.text


def test_quiet_builds_count_no_steps(trt_double, monkeypatch, caplog):
    """-q (the log at WARNING): no step counter even on a terminal."""
    import tensorrt as trt

    from p3m_live.trt.build import _progress_monitor

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with caplog.at_level("WARNING", logger="p3m_live"):
        assert not _progress_monitor(trt).counting
    with caplog.at_level("INFO", logger="p3m_live"):
        assert _progress_monitor(trt).counting
