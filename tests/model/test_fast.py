"""The fast model: MediaPipe's selfie segmenters imported from the wheel, in the frame graph."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest
import torch

from p3m_live.errors import P3MError
from p3m_live.export import require_tensorrt_ops
from p3m_live.graph import FrameGraph, GraphSpec
from p3m_live.model.fast import GENERAL, LANDSCAPE, load_fast_model
from p3m_live.model.fast_weights import WHEEL_FOLDER, convert_wheel, download_wheel, fetch_fast_models
from tests.conftest import SHARED

REF = SHARED / "mediapipe_reference" / "selfie_segmentation_outputs.npz"


@pytest.mark.parametrize("index, variant", [(0, GENERAL), (1, LANDSCAPE)])
def test_imported_models_reproduce_mediapipe(fast_models, index, variant):
    net = load_fast_model(fast_models[variant])
    with np.load(REF) as ref:
        names = [k[: -len("_input_rgb_uint8")] for k in ref.files if k.startswith(f"model{index}_") and "input" in k]
        assert len(names) == 7
        for name in names:
            rgb = torch.from_numpy(ref[f"{name}_input_rgb_uint8"]).permute(2, 0, 1)[None].float() / 255
            with torch.inference_mode():
                mask = net.matte(rgb)[0, 0].numpy()
            assert np.abs(mask - ref[f"{name}_mask"]).max() <= 2e-3, name


def test_model_size_policy():
    assert GraphSpec(720, 1280, model="fast").model_hw == (144, 256)
    assert GraphSpec(1280, 720, model="fast").model_hw == (256, 256)
    assert GraphSpec(480, 480, model="fast").model_hw == (256, 256)


def test_fast_graph_exports_and_passes_the_op_check(fast_models, tmp_path, portrait_paths):
    """In the frame graph: ONNX export, TensorRT op check, ONNX Runtime equals PyTorch."""
    from p3m_live.backends.onnxruntime_backend import OnnxRuntimeBackend, export_frame_graph

    spec = GraphSpec(180, 320, "rgb", "rgb", background="color", temporal="off", model="fast")
    path = export_frame_graph(spec, fast_models[LANDSCAPE], tmp_path / "fast.onnx")
    report = require_tensorrt_ops(path)
    assert report.ok and "ConvTranspose" in report.ops
    img = cv2.resize(cv2.cvtColor(cv2.imread(str(portrait_paths[0][0])), cv2.COLOR_BGR2RGB), (320, 180))
    backend = OnnxRuntimeBackend(spec, onnx_path=path)  # (temporal off: the export has no state input)
    backend.set_background((0, 255, 0))
    _, got = backend.process(img)
    graph = FrameGraph(load_fast_model(fast_models[LANDSCAPE]), spec).eval()
    with torch.inference_mode():
        _, want, _ = graph(
            torch.from_numpy(img[None]),
            torch.tensor([[0, 255, 0]], dtype=torch.uint8),
            torch.full((1, 1, 144, 256), -1.0),
        )
    assert np.abs(got.astype(int) - want.numpy()).max() <= 1
    assert 0.05 < (got > 127).mean() < 0.95  # a person is found, not everything or nothing


def test_fast_alpha_is_close_to_p3m_on_real_portraits(fast_models, portrait_paths):
    """A trained network, measured: mean |alpha - official P3M-Net matte| on three portraits."""
    spec = GraphSpec(360, 480, "rgb", "rgb", background="color", temporal="off", model="fast")
    graph = FrameGraph(load_fast_model(fast_models[LANDSCAPE]), spec).eval()
    errors = []
    for img_path, alpha_path in portrait_paths[:3]:
        img = cv2.resize(cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB), (480, 360), cv2.INTER_AREA)
        truth = cv2.resize(cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE), (480, 360), cv2.INTER_AREA) / 255
        with torch.inference_mode():
            _, alpha, _ = graph(
                torch.from_numpy(img[None]),
                torch.tensor([[0, 0, 0]], dtype=torch.uint8),
                torch.full((1, 1, 144, 256), -1.0),
            )
        errors.append(np.abs(alpha[0].numpy() / 255 - truth).mean())
    assert np.mean(errors) < 0.08


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_wrong_wheels_are_refused(tmp_path, mediapipe_wheel):
    (tmp_path / "b.whl").write_bytes(b"not a zip")
    with pytest.raises(P3MError, match="not a wheel"):
        convert_wheel(tmp_path / "b.whl")
    with pytest.raises(P3MError, match="is not the mediapipe==0.10.14 wheel"):
        convert_wheel(_zip(tmp_path / "c.whl", {"x.txt": b"x"}))
    real = zipfile.ZipFile(mediapipe_wheel)
    general = real.read(f"{WHEEL_FOLDER}/{GENERAL}.tflite")
    tampered = general[:-1] + bytes([general[-1] ^ 1])
    with pytest.raises(P3MError, match="SHA-256 differs"):
        convert_wheel(_zip(tmp_path / "d.whl", {f"{WHEEL_FOLDER}/{GENERAL}.tflite": tampered}))
    with pytest.raises(P3MError, match="wheel not found"):
        fetch_fast_models(tmp_path / "missing.whl")


def test_no_network_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with pytest.raises(P3MError, match="cannot download mediapipe==0.10.14 with pip.*--wheel FILE") as e:
        download_wheel(tmp_path)
    assert "\n" not in str(e.value)


def test_fetch_from_a_wheel_file_via_the_command_line(mediapipe_wheel, capsys):
    from p3m_live.cli import main

    assert main(["weights", "fetch", "fast", "--wheel", str(mediapipe_wheel)]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in printed] == [f"{GENERAL}.npz", f"{LANDSCAPE}.npz"]
    assert main(["weights", "path", "fast"]) == 0
    assert capsys.readouterr().out.split() == printed
