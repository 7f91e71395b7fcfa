"""Read a TensorFlow Lite flatbuffer into our own graph description and weights.

Only what the MediaPipe selfie segmenters use is understood (see
``SUPPORTED``); anything else is refused with the op's name, so a changed model
fails at conversion, not with wrong masks. The result is plain data: a JSON-able
graph (ops in execution order, NHWC shapes, options) and float16/float32 arrays
in PyTorch layouts. :mod:`p3m_live.model.fast` builds the network from it; the
``tflite`` package is needed only here, at conversion time.
"""

from __future__ import annotations

import numpy as np

from ..errors import P3MError

# TFLite enums (schema.fbs): padding, fused activations, tensor types.
PADDING = {0: "same", 1: "valid"}
ACTIVATION = {0: "none", 1: "relu", 3: "relu6"}
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32}
CUSTOM_PADDING = {1: "same", 2: "valid"}  # TfLitePadding, used by MediaPipe's custom op
SUPPORTED = (
    "CONV_2D DEPTHWISE_CONV_2D HARD_SWISH RELU LOGISTIC MUL ADD AVERAGE_POOL_2D MEAN RESIZE_BILINEAR DEQUANTIZE "
    "Convolution2DTransposeBias"
).split()


def _options(tflite, op, cls_name: str):
    table = op.BuiltinOptions()
    opts = getattr(tflite, cls_name)()
    opts.Init(table.Bytes, table.Pos)
    return opts


def import_tflite(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(graph, arrays) for a .tflite model; raises P3MError on anything unexpected."""
    try:
        import tflite
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise P3MError("reading .tflite models needs the tflite package: pip install tflite") from e
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        n_ops = graph.OperatorsLength()
    except Exception as e:  # flatbuffers raises plain errors on garbage
        raise P3MError(f"not a TensorFlow Lite model ({e})") from e
    builtin = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(op) -> str:
        code = model.OperatorCodes(op.OpcodeIndex())
        if code.CustomCode():
            return code.CustomCode().decode()
        return builtin[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]

    def tensor_data(index: int) -> np.ndarray | None:
        t = graph.Tensors(index)
        buf = model.Buffers(t.Buffer())
        if buf.Offset() > 1:
            raw = data[buf.Offset() : buf.Offset() + buf.Size()]
        elif buf.DataLength():
            raw = buf.DataAsNumpy().tobytes()
        else:
            return None
        shape = [int(s) for s in t.ShapeAsNumpy()] if t.ShapeLength() else []
        return np.frombuffer(raw, dtype=DTYPES[t.Type()]).reshape(shape)

    def shape(index: int) -> list[int]:
        return [int(s) for s in graph.Tensors(index).ShapeAsNumpy()]

    consts: dict[int, np.ndarray] = {}
    arrays: dict[str, np.ndarray] = {}
    ops: list[dict] = []
    for i in range(n_ops):
        op = graph.Operators(i)
        name = op_name(op)
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        out = op.Outputs(0)
        if name not in SUPPORTED:
            raise P3MError(f"the model uses {name}, which this importer does not support")
        if name == "DEQUANTIZE":  # float16 weights: kept as float16, cast when the network is built
            consts[out] = tensor_data(ins[0])
            continue
        for t in ins[1:]:
            if t not in consts and (value := tensor_data(t)) is not None:
                consts[t] = value
        entry: dict = {"op": name.lower(), "inputs": [f"t{t}" for t in ins], "output": f"t{out}", "shape": shape(out)}

        def weight(t: int, layout: tuple[int, ...] | None = None) -> str:
            key = f"t{t}"
            value = consts[t]
            arrays[key] = np.ascontiguousarray(value.transpose(layout) if layout else value)
            return key

        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            cls = "Conv2DOptions" if name == "CONV_2D" else "DepthwiseConv2DOptions"
            o = _options(tflite, op, cls)
            # OHWI (conv) and 1HW(C*M) (depthwise) -> PyTorch OIHW
            entry["weight"] = weight(ins[1], (0, 3, 1, 2) if name == "CONV_2D" else (3, 0, 1, 2))
            entry["bias"] = weight(ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
            entry["inputs"] = entry["inputs"][:1]
            entry.update(
                stride=[o.StrideH(), o.StrideW()],
                dilation=[o.DilationHFactor(), o.DilationWFactor()],
                padding=PADDING[o.Padding()],
                activation=_activation(o.FusedActivationFunction()),
            )
        elif name == "Convolution2DTransposeBias":
            padding, stride_w, stride_h = np.frombuffer(op.CustomOptionsAsNumpy().tobytes(), dtype=np.int32)[:3]
            entry["weight"] = weight(ins[1], (3, 0, 1, 2))  # OHWI -> PyTorch's transposed (I, O, H, W)
            entry["bias"] = weight(ins[2])
            entry["inputs"] = entry["inputs"][:1]
            entry.update(stride=[int(stride_h), int(stride_w)], padding=CUSTOM_PADDING[int(padding)])
        elif name in ("ADD", "MUL"):
            cls = "AddOptions" if name == "ADD" else "MulOptions"
            entry["activation"] = _activation(_options(tflite, op, cls).FusedActivationFunction())
            for k, t in enumerate(ins):
                if t in consts:
                    entry["inputs"][k] = weight(t)
        elif name == "AVERAGE_POOL_2D":
            o = _options(tflite, op, "Pool2DOptions")
            entry.update(
                kernel=[o.FilterHeight(), o.FilterWidth()],
                stride=[o.StrideH(), o.StrideW()],
                padding=PADDING[o.Padding()],
                activation=_activation(o.FusedActivationFunction()),
            )
        elif name == "MEAN":
            entry["axes"] = [int(a) for a in consts[ins[1]].reshape(-1)]
            entry["keep_dims"] = bool(_options(tflite, op, "ReducerOptions").KeepDims())
            entry["inputs"] = entry["inputs"][:1]
        elif name == "RESIZE_BILINEAR":
            o = _options(tflite, op, "ResizeBilinearOptions")
            if o.AlignCorners() or not o.HalfPixelCenters():
                raise P3MError("RESIZE_BILINEAR without half-pixel centres is not supported")
            entry["size"] = [int(s) for s in consts[ins[1]].reshape(-1)]
            entry["inputs"] = entry["inputs"][:1]
        ops.append(entry)
    inputs, outputs = graph.Inputs(0), graph.Outputs(0)
    return {
        "format": "p3m-live-fast/1",
        "input": f"t{inputs}",
        "input_shape": shape(inputs),
        "output": f"t{outputs}",
        "ops": ops,
    }, arrays


def _activation(code: int) -> str:
    if code not in ACTIVATION:
        raise P3MError(f"fused activation {code} is not supported")
    return ACTIVATION[code]
