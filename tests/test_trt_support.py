"""TensorRT support that needs neither TensorRT nor a GPU: the engine store's decisions and
the device-slot schedule (run on host memory)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from p3m_live.graph import GRAPH_VERSION, GraphSpec
from p3m_live.trt.slots import HostDevice, SlotPipeline
from p3m_live.trt.store import EngineStore, Target, check_plan_for

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


def test_a_plan_from_another_gpu_is_refused_by_path(tmp_path):
    store = EngineStore(tmp_path)
    plan = store.find_or_build(_target(), _builder([]), lambda s: None)
    here = _target(gpu="NVIDIA L4", compute_capability="8.9")
    assert "cannot run here: it was built on NVIDIA H100" in check_plan_for(plan, here)
    assert check_plan_for(plan, _target()) is None
    plan.with_suffix(".json").unlink()
    assert "no sidecar" in check_plan_for(plan, _target())


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
