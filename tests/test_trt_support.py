"""TensorRT support that needs neither TensorRT nor a GPU: the engine store's decisions and
the device-slot schedule (run on host memory)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from p3m_live.graph import GRAPH_VERSION, GraphSpec
from p3m_live.trt.slots import HostDevice, SlotPipeline
from p3m_live.trt.store import EngineStore, Target

SPEC = GraphSpec(720, 1280, precision="fp16")
H100 = dict(tensorrt="10.15.1", gpu="NVIDIA H100 80GB HBM3", compute_capability="9.0")


def _target(**changes) -> Target:
    spec = changes.pop("spec", SPEC)
    return Target(spec=spec, **{"checkpoint": "abc123", **H100, **changes})


def _builder(calls: list):
    def build(path):
        calls.append(path)
        path.write_bytes(b"plan bytes %d" % len(calls))

    return build


def test_build_once_then_reuse(tmp_path):
    store, calls, said = EngineStore(tmp_path), [], []
    plan = store.find_or_build(_target(), _builder(calls), said.append)
    assert plan.is_file() and len(calls) == 1 and "no engine was built" in said[0]
    assert store.find_or_build(_target(), _builder(calls), said.append) == plan and len(calls) == 1
    meta = store.read_sidecar(plan)
    assert meta["gpu"] == H100["gpu"] and meta["graph_version"] == GRAPH_VERSION
    assert meta["width"] == 1280 and meta["model_size"] == list(SPEC.model_hw) and meta["precision"] == "fp16"
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(tensorrt="11.0.0"), "built with TensorRT 10.15.1, this is TensorRT 11.0.0"),
        (dict(gpu="NVIDIA GeForce RTX 4090", compute_capability="8.9"), "built on NVIDIA H100 80GB HBM3"),
        (dict(checkpoint="fff999"), "the weights changed"),
        (dict(spec=SPEC.with_(batch=4)), "its batch is 1, this run needs 4"),
        (dict(spec=SPEC.with_(model_short_side=384)), "its model size is [512, 896], this run needs [384, 672]"),
    ],
)
def test_each_mismatch_is_rebuilt_with_its_reason(tmp_path, change, reason):
    """A stored plan under the name another target would use, with this target's old sidecar."""
    store, calls, said = EngineStore(tmp_path), [], []
    old = store.find_or_build(_target(), _builder(calls), said.append)
    new_target = _target(**change)
    plan, side = store.paths(new_target)
    plan.write_bytes(old.read_bytes())
    side.write_text(old.with_suffix(".json").read_text())
    assert reason in store.check(new_target)[1]
    store.find_or_build(new_target, _builder(calls), said.append)
    assert len(calls) == 2 and reason in said[-1]
    assert store.check(new_target)[1] is None


def test_graph_version_change(tmp_path, monkeypatch):
    store, calls, said = EngineStore(tmp_path), [], []
    plan = store.find_or_build(_target(), _builder(calls), said.append)
    meta = json.loads(plan.with_suffix(".json").read_text())
    meta["graph_version"] = GRAPH_VERSION - 1
    plan.with_suffix(".json").write_text(json.dumps(meta))
    assert "frame graph changed" in store.check(_target())[1]


def test_corrupt_plan_and_sidecar(tmp_path):
    store, calls, said = EngineStore(tmp_path), [], []
    plan = store.find_or_build(_target(), _builder(calls), said.append)
    plan.write_bytes(b"garbage")
    assert "damaged" in store.check(_target())[1]
    store.find_or_build(_target(), _builder(calls), said.append)
    assert len(calls) == 2 and store.check(_target())[1] is None
    plan.with_suffix(".json").write_text("{not json")
    assert "sidecar is missing or unreadable" in store.check(_target())[1]


def test_plans_copied_from_another_gpu_are_never_loaded(tmp_path):
    """An engines/ folder copied from an H100 machine to an L4 one: the L4 run builds its own."""
    store, calls, said = EngineStore(tmp_path), [], []
    h100 = store.find_or_build(_target(), _builder(calls), said.append)
    here = _target(gpu="NVIDIA L4", compute_capability="8.9")
    plan = store.find_or_build(here, _builder(calls), said.append)
    assert plan != h100 and len(calls) == 2 and store.read_sidecar(plan)["gpu"] == "NVIDIA L4"
    assert store.read_sidecar(h100)["gpu"] == H100["gpu"]  # left as it was, for the H100


def test_build_failure_leaves_nothing(tmp_path):
    store = EngineStore(tmp_path)

    def broken(path):
        path.write_bytes(b"half")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        store.find_or_build(_target(), broken, lambda s: None)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- slots

INPUTS = {"frame": ((4,), np.dtype(np.float32)), "state_alpha": ((4,), np.dtype(np.float32))}
OUTPUTS = {"composite": ((4,), np.dtype(np.float32)), "state_alpha_out": ((4,), np.dtype(np.float32))}


def _kernel(device: HostDevice):
    """The "engine": composite = frame + state; the new state is the composite."""

    def compute(slot, dev_in, dev_out, stream):
        np.copyto(dev_out["composite"], dev_in["frame"] + dev_in["state_alpha"])
        np.copyto(dev_out["state_alpha_out"], dev_out["composite"])
        device.log.append(("compute", stream, ""))

    return compute


def test_state_chains_on_the_device_and_resets():
    dev = HostDevice()
    pipe = SlotPipeline(dev, INPUTS, OUTPUTS, _kernel(dev))
    state = np.zeros(4, np.float32)
    seen = []
    for i in range(5):
        out = pipe.run({"frame": np.full(4, i + 1, np.float32), "state_alpha": state})
        state = out["state_alpha_out"]  # what Backend.process feeds back
        seen.append(out["composite"][0])
    assert seen == [1, 3, 6, 10, 15]  # running sums: each call saw the previous call's state
    uploads = [e for e in dev.log if e[0] == "upload"]
    assert len(uploads) == 5 + 1  # five frames, and the state only once (the first call)
    out = pipe.run({"frame": np.ones(4, np.float32), "state_alpha": np.zeros(4, np.float32)})  # reset
    assert out["composite"][0] == 1


def test_submit_runs_one_call_ahead_and_orders_the_streams():
    dev = HostDevice()
    pipe = SlotPipeline(dev, INPUTS, OUTPUTS, _kernel(dev))
    results = []
    for i in range(4):
        ready = pipe.submit({"frame": np.full(4, i + 1, np.float32), "state_alpha": None if i else np.zeros(4)})
        if ready is not None:
            results.append(ready["composite"][0])
    assert len(results) == 2  # calls 0 and 1 came back while 2 and 3 were submitted
    results += [r["composite"][0] for r in pipe.flush()]
    assert results == [1, 3, 6, 10]
    # Each compute waits for its own upload; the upload stream never waits for the
    # compute of the call just before it (that is the overlap), only for the slot's previous use.
    log = dev.log
    computes = [i for i, e in enumerate(log) if e[0] == "compute"]
    assert len(computes) == 4
    for n, i in enumerate(computes):
        recorded_upload = [e for e in log[:i] if e[0] == "record" and e[1] == "upload"][-1][2]
        assert ("wait", "compute", recorded_upload) in log[:i]
        if n >= 1:
            prev_computed = [e for e in log[: computes[n - 1] + 2] if e[0] == "record" and e[1] == "compute"][-1][2]
            upload_waits = [e[2] for e in log[computes[n - 1] : i] if e[:2] == ("wait", "upload")]
            assert prev_computed not in upload_waits


def test_the_tensorrt_path_does_not_import_torch():
    """The runtime needs TensorRT and pycuda only; the graph's spec lives in a torch-free module."""
    import subprocess
    import sys

    code = (
        "import sys; import p3m_live.backends.tensorrt_backend, p3m_live.trt.store, p3m_live.trt.slots; "
        "print('torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


# ---------------------------------------------------------------- a GPU backend's run-ahead path


class HostSlotBackend:
    """A test double for a GPU backend (there is no GPU here): the real slot schedule and the
    real Backend.submit/flush path, on host memory, with a tiny kernel standing in for the
    engine: the composite is the frame, and each call's alpha is a counter carried in the state."""

    @staticmethod
    def make(spec):
        from p3m_live.backends.base import Backend
        from p3m_live.graph import frame_shape

        class _Backend(Backend):
            name = "host-slots"

            def __init__(self) -> None:
                super().__init__(spec)
                f = frame_shape(spec.in_format, spec.batch, spec.height, spec.width)
                u8, f32 = np.dtype(np.uint8), np.dtype(np.float32)
                inputs = {"frame": (f, u8), "background": ((1, 3), u8), "state_alpha": (spec.state_shape, f32)}
                outputs = {
                    "composite": (f, u8),
                    "alpha": ((spec.batch, spec.height, spec.width), u8),
                    "state_alpha_out": (spec.state_shape, f32),
                }
                self.device = HostDevice()
                self.pipe = SlotPipeline(self.device, inputs, outputs, self._kernel)

            def _kernel(self, slot, dev_in, dev_out, stream):
                count = np.where(dev_in["state_alpha"] < 0, 0, dev_in["state_alpha"] + 1)
                np.copyto(dev_out["state_alpha_out"], count)
                np.copyto(dev_out["composite"], dev_in["frame"])
                dev_out["alpha"][...] = int(count.flat[0])

            def _run(self, inputs):
                return self.pipe.run(inputs)

        return _Backend()


def test_submit_keeps_one_call_in_flight_and_resets():
    spec = GraphSpec(64, 96, batch=2, model_short_side=32, background="color", temporal="ema")
    be = HostSlotBackend.make(spec)
    be.set_background((0, 0, 0))
    frames = [np.full((2, 96, 96), i, np.uint8) for i in range(4)]
    assert be.submit(frames[0]) == []  # nothing back yet: call 0 is in flight
    got = [r for f in frames[1:] for r in be.submit(f)] + be.flush()
    assert [int(a[0, 0, 0]) for _, a in got] == [0, 1, 2, 3]  # in order, the state chained on the "device"
    assert [int(c[0, 0, 0]) for c, _ in got] == [0, 1, 2, 3]
    be.reset()
    assert [int(a[0, 0, 0]) for _, a in be.submit(frames[0]) + be.flush()] == [0]  # a fresh state went up
    with pytest.raises(Exception, match="flush"):
        be.submit(frames[0])
        be.process(frames[0])


def test_offline_pipeline_runs_ahead_in_order(tmp_path):
    from p3m_live.pipeline import Matting, graph_spec, run_offline
    from p3m_live.video.backgrounds import parse_background
    from p3m_live.video.sinks import Sink
    from p3m_live.video.sources import open_source
    from tests.media import make_clip

    class Recorder(Sink):
        def __init__(self):
            self.got = []

        def write(self, frame, composite, alpha):
            self.got.append((frame.index, int(alpha[0, 0]), np.array_equal(composite, frame.data)))

    clip = make_clip(tmp_path / "c.mp4", frames=7, audio_rate=None)
    with open_source(str(clip)) as src:
        backends = []

        def opener(choice, batch):
            backends.append(HostSlotBackend.make(graph_spec(src.layout, choice, batch, model_short_side=32)))
            return backends[-1]

        matting = Matting(src.layout, [parse_background("black")], opener, batch=2)
        rec = Recorder()
        summary = run_offline(src, matting, [rec])
    assert summary.frames == 7
    assert [i for i, _, _ in rec.got] == list(range(7))
    assert [a for _, a, _ in rec.got] == [0, 0, 1, 1, 2, 2, 3]  # batch k carries counter k
    assert all(same for _, _, same in rec.got)  # each frame got its own composite back
    assert backends[0].pipe.calls == 4


def test_every_field_of_the_spec_tells_plans_apart(tmp_path):
    """A plan is found by its sidecar's spec fields: one left out would let a graph built
    with another value of it (another foreground, light wrap, erode) be loaded as this one."""
    from dataclasses import fields

    from p3m_live.trt.store import SPEC_FIELDS

    named = set(SPEC_FIELDS) | {"model_short_side"}  # (as the model size it gives)
    assert {f.name for f in fields(GraphSpec)} <= named
    store = EngineStore(tmp_path)
    changes = [
        dict(foreground="frame"),
        dict(light_wrap=0.5),
        dict(erode=2),
        dict(planes=False),
        dict(temporal="motion"),
        dict(foreground_track=True),
    ]
    stems = {store.paths(_target(spec=SPEC.with_(**c)))[0].name for c in changes}
    assert len(stems | {store.paths(_target())[0].name}) == len(changes) + 1
