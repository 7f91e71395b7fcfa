"""The fast model: MediaPipe's selfie segmenter, rebuilt in PyTorch from its converted graph.

The network is built from the plain graph description that
:mod:`p3m_live.model.tflite_import` wrote (ops in order, TFLite options) and runs in
NCHW. TFLite's "same" padding is asymmetric (the extra pixel goes after), so it is
an explicit pad, which ONNX and TensorRT take as it is. Input: RGB in [0, 1] at the
model size (256x256, or 144x256 with the landscape model); output: the mask in
[0, 1], the way MediaPipe reads it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import P3MError
from ..spec import FAST_GENERAL as GENERAL
from ..spec import FAST_LANDSCAPE as LANDSCAPE
from ..spec import FAST_MODEL_SIZES as MODEL_SIZES
from ..spec import fast_variant

__all__ = ["GENERAL", "LANDSCAPE", "MODEL_SIZES", "SelfieSegmenter", "fast_variant", "load_fast_model"]

NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TensorFlow "same" padding: (before, after), the odd pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _activate(x: Tensor, kind: str) -> Tensor:
    if kind == "relu":
        return F.relu(x)
    if kind == "relu6":
        return F.hardtanh(x, 0.0, 6.0)
    return x


class SelfieSegmenter(nn.Module):
    """The converted graph as a module; weights are buffers named after their tensors."""

    def __init__(self, graph: dict, arrays: dict[str, np.ndarray]) -> None:
        super().__init__()
        if graph.get("format") != "p3m-live-fast/1":
            raise P3MError("not a p3m-live fast model file; run: p3m-live weights fetch fast")
        self.graph = graph
        self.ops = graph["ops"]
        n, h, w, c = graph["input_shape"]
        self.model_hw = (h, w)
        for key, value in arrays.items():
            self.register_buffer(key, torch.from_numpy(np.asarray(value, dtype=np.float32)))

    def _const(self, name: str) -> Tensor:
        return getattr(self, name)

    def _value(self, env: dict[str, Tensor], name: str) -> Tensor:
        if name in env:
            return env[name]
        value = self._const(name)  # an NHWC constant: move its channel axis for NCHW broadcasting
        return value.reshape(-1, 1, 1) if value.dim() == 1 else value

    def forward(self, rgb: Tensor) -> Tensor:
        """(B, 3, h, w) RGB in [0, 1] -> (B, 1, h, w) mask in [0, 1]."""
        env = {self.graph["input"]: rgb}
        for op in self.ops:
            env[op["output"]] = self._run(op, env)
        return env[self.graph["output"]]

    def _run(self, op: dict, env: dict[str, Tensor]) -> Tensor:
        kind = op["op"]
        x = self._value(env, op["inputs"][0])
        if kind in ("conv_2d", "depthwise_conv_2d"):
            w = self._const(op["weight"])
            b = self._const(op["bias"]) if op["bias"] else None
            (sh, sw), (dh, dw) = op["stride"], op["dilation"]
            if op["padding"] == "same":
                top, bottom = _same_pads(x.shape[2], w.shape[2], sh, dh)
                left, right = _same_pads(x.shape[3], w.shape[3], sw, dw)
                if top or bottom or left or right:
                    x = F.pad(x, (left, right, top, bottom))
            groups = x.shape[1] if kind == "depthwise_conv_2d" else 1
            return _activate(F.conv2d(x, w, b, (sh, sw), 0, (dh, dw), groups), op["activation"])
        if kind == "convolution2dtransposebias":
            w, b = self._const(op["weight"]), self._const(op["bias"])
            sh, sw = op["stride"]
            y = F.conv_transpose2d(x, w, b, (sh, sw))
            if op["padding"] == "same":  # keep in * stride, cropping the overhang evenly, extra after
                h, wd = x.shape[2] * sh, x.shape[3] * sw
                top, left = (y.shape[2] - h) // 2, (y.shape[3] - wd) // 2
                y = y[:, :, top : top + h, left : left + wd]
            return y
        if kind == "relu":
            return F.relu(x)
        if kind == "hard_swish":
            return F.hardswish(x)
        if kind == "logistic":
            return torch.sigmoid(x)
        if kind in ("add", "mul"):
            y = self._value(env, op["inputs"][1])
            return _activate(x + y if kind == "add" else x * y, op["activation"])
        if kind == "average_pool_2d":
            (kh, kw), (sh, sw) = op["kernel"], op["stride"]
            if op["padding"] == "same" and (any(_same_pads(x.shape[2], kh, sh)) or any(_same_pads(x.shape[3], kw, sw))):
                raise P3MError("average pooling with 'same' padding that pads is not supported")
            return _activate(F.avg_pool2d(x, (kh, kw), (sh, sw)), op["activation"])
        if kind == "mean":
            dims = [NHWC_TO_NCHW_AXIS[a] for a in op["axes"]]
            return x.mean(dim=dims, keepdim=op["keep_dims"])
        if kind == "resize_bilinear":
            return F.interpolate(x, size=tuple(op["size"]), mode="bilinear", align_corners=False)
        raise P3MError(f"unknown op {kind} in the fast model file")

    def matte(self, rgb: Tensor) -> Tensor:
        """Same interface as :meth:`P3MNet.matte`: float32 RGB in [0, 1] at the model size in,
        float32 alpha out; runs in the module's own precision."""
        dtype = next(iter(self.buffers())).dtype
        return self(rgb.to(dtype)).float()


def save_fast_model(path: Path, graph: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Our format: one .npz with the graph as JSON and the weights (float16 as shipped)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, __graph__=np.frombuffer(json.dumps(graph).encode(), dtype=np.uint8), **arrays)
    os.replace(tmp, path)
    return path


def load_fast_model(path: str | os.PathLike) -> SelfieSegmenter:
    try:
        with np.load(path, allow_pickle=False) as z:
            graph = json.loads(z["__graph__"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != "__graph__"}
    except (OSError, ValueError, KeyError) as e:
        raise P3MError(f"{path} is not a p3m-live fast model file ({e}); run: p3m-live weights fetch fast") from e
    return SelfieSegmenter(graph, arrays).eval()
