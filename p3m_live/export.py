"""ONNX export, and the check that TensorRT's ONNX parser will accept the result.

The frame graph is exported once; TensorRT, ONNX Runtime and PyTorch all run
that same function. The op check reads the supported-operator list shipped in
``p3m_live/data/tensorrt_onnx_ops.txt`` (with the TensorRT version it was taken
from) and also enforces the restrictions that bite P3M-Net: MaxPool may not have
an Indices output, MaxUnpool does not exist, and UINT8 tensors may only be
network inputs or outputs.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from .errors import P3MError

DEFAULT_OPSET = 17


def export_onnx(
    module: nn.Module,
    args: tuple,
    path: str | os.PathLike | io.BytesIO,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path | io.BytesIO:
    """Export with the TorchScript-based exporter: exact op-for-op, no onnxscript needed.
    ``path`` may be a buffer in memory (where no file can be written)."""
    target: str | io.BytesIO = path if isinstance(path, io.BytesIO) else str(path)
    if not isinstance(path, io.BytesIO):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), args, target, dynamo=False, opset_version=opset,
            input_names=list(input_names), output_names=list(output_names),
            dynamic_axes={k: dict(v) for k, v in (dynamic_axes or {}).items()},
            do_constant_folding=True,
        )  # fmt: skip
    return path


@dataclass(frozen=True)
class TensorRTOpList:
    version: str
    opsets: tuple[int, int]
    supported: frozenset[str]


def tensorrt_op_list() -> TensorRTOpList:
    """The supported-operator list shipped with the package."""
    text = resources.files("p3m_live").joinpath("data/tensorrt_onnx_ops.txt").read_text()
    meta: dict[str, str] = {}
    ops: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# ") and ":" in line and line[2:].split(":")[0] in ("tensorrt", "opset"):
            key, value = line[2:].split(":", 1)
            meta[key] = value.strip()
        elif line and not line.startswith("#"):
            ops.update(line.split())
    lo, hi = (int(v) for v in meta["opset"].split("-"))
    return TensorRTOpList(meta["tensorrt"], (lo, hi), frozenset(ops))


@dataclass
class OpReport:
    """What the graph uses and what TensorRT would refuse."""

    ops: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    tensorrt: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def table(self) -> str:
        rows = [f"{op:<24}{n:>6}" for op, n in sorted(self.ops.items())]
        verdict = "OK" if self.ok else "REFUSED: " + "; ".join(self.problems)
        return "\n".join([*rows, f"TensorRT {self.tensorrt} ONNX parser: {verdict}"])


def check_tensorrt_ops(onnx_model) -> OpReport:
    """List the graph's ops and every reason TensorRT's ONNX parser would refuse it
    (``onnx_model``: a path, or a loaded ``onnx.ModelProto``)."""
    import onnx

    model = onnx_model if isinstance(onnx_model, onnx.ModelProto) else onnx.load(str(onnx_model))
    trt = tensorrt_op_list()
    report = OpReport(tensorrt=trt.version)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not trt.opsets[0] <= opset <= trt.opsets[1]:
        report.problems.append(f"opset {opset} outside {trt.opsets[0]}..{trt.opsets[1]}")
    for node in model.graph.node:
        report.ops[node.op_type] += 1
        if node.domain not in ("", "ai.onnx"):
            report.problems.append(f"custom-domain op {node.domain}::{node.op_type}")
        elif node.op_type not in trt.supported:
            report.problems.append(f"unsupported op {node.op_type}")
        elif node.op_type == "MaxPool" and len([o for o in node.output if o]) > 1:
            report.problems.append("MaxPool with an Indices output")
        elif node.op_type == "Resize":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            mode = attrs.get("mode", b"nearest")
            if mode not in (b"nearest", b"linear") or attrs.get("antialias", 0):
                report.problems.append(f"Resize mode {mode.decode()} / antialias")
    report.problems.extend(_inner_uint8(model))
    report.problems = list(dict.fromkeys(report.problems))  # each reason once, in order
    return report


def _inner_uint8(model) -> list[str]:
    """UINT8 is only allowed for network inputs and outputs in TensorRT."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    io = {v.name for v in (*inferred.graph.input, *inferred.graph.output)}
    return [
        f"UINT8 intermediate tensor {v.name}"
        for v in inferred.graph.value_info
        if v.type.tensor_type.elem_type == onnx.TensorProto.UINT8 and v.name not in io
    ]


def require_tensorrt_ops(onnx_model, name: str | os.PathLike | None = None) -> OpReport:
    """The op report, or a P3MError naming the graph (``name``, else the path given)."""
    report = check_tensorrt_ops(onnx_model)
    if not report.ok:
        what = name if name is not None else onnx_model
        raise P3MError(f"{what} would not parse in TensorRT: " + "; ".join(report.problems[:5]))
    return report
