"""ONNX export of the portable network, the TensorRT op check, and ONNX Runtime on the result."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from p3m_live.errors import P3MError
from p3m_live.export import check_tensorrt_ops, export_onnx, require_tensorrt_ops, tensorrt_op_list

NAMES = ("global", "local", "fusion", "side2", "side1", "side0")


@pytest.fixture(scope="module")
def network_onnx(p3m_portable, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "p3mnet.onnx"
    return export_onnx(
        p3m_portable, (torch.zeros(1, 3, 64, 64),), path, ["image"], list(NAMES),
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
    )  # fmt: skip


def test_portable_network_has_no_indices_ops(network_onnx):
    model = onnx.load(str(network_onnx))
    assert model.opset_import[0].version >= 17
    ops = [n.op_type for n in model.graph.node]
    assert "MaxUnpool" not in ops
    assert all(len([o for o in n.output if o]) == 1 for n in model.graph.node if n.op_type == "MaxPool")
    report = check_tensorrt_ops(network_onnx)
    assert report.ok, report.problems
    assert "Conv" in report.table() and "OK" in report.table()


@pytest.mark.parametrize("size", ["64x64", "96x128"])
def test_onnxruntime_reproduces_reference(network_onnx, seed32_ref, size):
    sess = ort.InferenceSession(str(network_onnx), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"image": seed32_ref[f"{size}_input_normalized"]})
    for name, out in zip(NAMES, outs):
        ref = seed32_ref[f"{size}_{name}"]
        tol = 1e-4 if name in ("local", "fusion") else 1e-4 * np.abs(ref).max()
        assert np.abs(out - ref).max() <= tol, name


def _save(nodes, inputs, outputs, path):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_indices_pooling_is_refused(tmp_path):
    # What the official network exports to: MaxPool with Indices, then MaxUnpool.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    path = _save(nodes, [x], [y], tmp_path / "n.onnx")
    report = check_tensorrt_ops(path)
    assert report.problems == ["MaxPool with an Indices output", "unsupported op MaxUnpool"]
    with pytest.raises(P3MError, match="would not parse in TensorRT"):
        require_tensorrt_ops(path)


def test_op_list_is_data_with_its_version():
    ops = tensorrt_op_list()
    assert ops.version.startswith("10.")
    assert {"Conv", "Resize", "Where", "MaxPool"} <= ops.supported
    assert "MaxUnpool" not in ops.supported and "NonMaxSuppression" in ops.supported


def test_inner_uint8_is_refused(tmp_path):
    # uint8 in -> Cast -> uint8 intermediate -> Identity -> out: TensorRT allows uint8 only at the edges.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 4])
    nodes = [
        helper.make_node("Cast", ["x"], ["mid"], to=TensorProto.UINT8),
        helper.make_node("Identity", ["mid"], ["y"]),
    ]
    path = _save(nodes, [x], [y], tmp_path / "u8.onnx")
    assert check_tensorrt_ops(path).problems == ["UINT8 intermediate tensor mid"]


@pytest.mark.parametrize("size", [(19, 25), (8, 12)])  # odd sizes at every pull-push level, and even ones
def test_the_blur_of_the_room_alone_is_the_same_on_onnxruntime(tmp_path, size):
    """The blur's pull-push levels pool odd sizes with ceil_mode (a last row or column on
    its own): exported, ONNX Runtime computes what torch does."""
    from p3m_live.graph import blur_background, resize

    class Blur(torch.nn.Module):
        def forward(self, x, alpha):
            return resize(blur_background(x, alpha, size), (96, 128))

    g = torch.Generator().manual_seed(5)
    x, alpha = torch.rand(1, 3, 96, 128, generator=g), torch.zeros(1, 1, 96, 128)
    alpha[..., 20:90, 30:100] = 1  # a person with room around them
    path = export_onnx(Blur(), (x, alpha), tmp_path / "blur.onnx", ["x", "alpha"], ["y"])
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy(), "alpha": alpha.numpy()}
    )
    want = Blur()(x, alpha).numpy()
    assert np.abs(got[0] - want).max() < 1e-5


@pytest.mark.parametrize("background", ["blur", "image", "mix"])
@pytest.mark.parametrize("foreground", ["frame", "quick", "estimate"])
def test_frame_graphs_pass_the_tensorrt_op_check(seed32_ckpt, tmp_path, background, foreground):
    """The frame graphs that composite on the YUV planes (what CPUs run, and a GPU with
    --foreground frame or quick), and the one in RGB that estimates the foreground (a GPU's
    default), with each background input, the mix of them all included: all must parse in
    TensorRT."""
    from p3m_live.backends.onnxruntime_backend import export_frame_graph
    from p3m_live.graph import GraphSpec

    spec = GraphSpec(64, 96, "i420", "nv12", model_short_side=32, background=background, foreground=foreground)
    report = require_tensorrt_ops(export_frame_graph(spec, seed32_ckpt, tmp_path / "planes.onnx"))
    assert report.ok and "AveragePool" in report.ops and "Resize" in report.ops


def test_the_motion_filter_passes_the_tensorrt_op_check(seed32_ckpt, tmp_path):
    """The motion-compensated filter (a batch of two, so unrolled twice) and a GPU's FP16
    graph: its block matching is convolution, padding and elementwise picks TensorRT parses;
    --erode is a MaxPool without indices."""
    from p3m_live.backends.onnxruntime_backend import export_frame_graph
    from p3m_live.graph import GraphSpec

    spec = GraphSpec(64, 96, "nv12", "nv12", batch=2, model_short_side=32, background="mix", temporal="motion",
                     foreground="estimate", precision="fp16", erode=2)  # fmt: skip
    report = require_tensorrt_ops(export_frame_graph(spec, seed32_ckpt, tmp_path / "motion.onnx"))
    assert report.ok and {"Pad", "Where", "Min", "Less", "MaxPool"} <= set(report.ops)
