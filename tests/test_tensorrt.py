"""TensorRT on a real GPU: build a small engine, run it, compare with ONNX Runtime.

Skipped, with the reason, where TensorRT, pycuda or a CUDA GPU is missing (every
machine this project's CI has); written to run as it is on a machine with all three.
"""

from __future__ import annotations

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed on this machine")
pytest.importorskip("pycuda.driver", reason="pycuda is not installed on this machine")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU on this machine", allow_module_level=True)

from p3m_live.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from p3m_live.backends.tensorrt_backend import TensorRTBackend  # noqa: E402
from p3m_live.graph import GraphSpec  # noqa: E402
from tests.media import portrait_i420  # noqa: E402

SPEC = GraphSpec(192, 256, "i420", "i420", model_short_side=128, background="color", temporal="ema")


def test_engine_matches_onnxruntime_and_is_reused(seed32_ckpt, portrait_paths, tmp_path):
    frames = [portrait_i420(img, 256, 192) for img, _ in portrait_paths[:3]]
    with TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path) as trt_be:
        trt_be.set_background((0, 177, 64))
        got = [trt_be.process(f) for f in frames]
    with OnnxRuntimeBackend(SPEC, seed32_ckpt) as ort_be:  # FP32 on the CPU
        ort_be.set_background((0, 177, 64))
        want = [ort_be.process(f) for f in frames]
    for (_, a), (_, b) in zip(got, want):
        diff = np.abs(a.astype(int) - b)
        assert diff.mean() < 1.5 and np.percentile(diff, 95) <= 4  # FP16 against FP32
    plans = sorted(tmp_path.glob("*.plan"))
    assert len(plans) == 1 and plans[0].with_suffix(".json").is_file()
    mtime = plans[0].stat().st_mtime
    with TensorRTBackend(SPEC, seed32_ckpt, engine_dir=tmp_path):
        pass
    assert plans[0].stat().st_mtime == mtime  # loaded, not rebuilt
