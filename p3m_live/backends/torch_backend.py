"""PyTorch backend: the frame graph module run directly.

CPU: FP32, eager. CUDA: FP16 network in channels-last, captured once as a CUDA
graph for the spec's fixed shapes, run through the same slot schedule as the
TensorRT backend (page-locked host buffers, upload/compute/download streams,
asynchronous copies); the state stays on the device between calls.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from ..graph import FrameGraph, GraphSpec
from ..model.networks import load_network
from .base import Backend

log = logging.getLogger("p3m_live")


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self,
        spec: GraphSpec,
        weights: str | os.PathLike,
        device: str = "cpu",
        cuda_graph: bool = True,
        threads: int | None = None,
    ) -> None:
        """``threads``: PyTorch's CPU threads (None: its own choice, one per physical core);
        they are the process's, not this backend's alone."""
        self.device = torch.device(device)
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(threads)
        if self.device.type == "cuda" and self.device.index is not None:
            # (streams, buffers and the capture are made on the current device: make it this one)
            torch.cuda.set_device(self.device)
        if self.device.type == "cuda" and spec.precision == "fp32":
            spec = spec.with_(precision="fp16")
        super().__init__(spec)
        net = load_network(spec.model, weights).to(self.device)
        if self.device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        self.graph = FrameGraph(net, spec).to(self.device).eval()
        self._cuda: _CudaRunner | None = None
        if self.device.type == "cuda":
            self._cuda = _CudaRunner(self.graph, cuda_graph)
            self.pipe = self._cuda.pipe  # lets submit() keep one call in flight

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._cuda is not None:
            return self._cuda.run(inputs)
        with torch.inference_mode():
            outs = self.graph(*(torch.from_numpy(inputs[n]) for n in self.graph.input_names))
        return {n: o.numpy() for n, o in zip(self.graph.output_names, outs)}

    def close(self) -> None:
        self._cuda = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


class TorchCudaDevice:
    """The slot schedule's device interface (:mod:`p3m_live.trt.slots`) on torch CUDA."""

    def device_buffer(self, shape, dtype) -> torch.Tensor:
        return torch.empty(shape, dtype=_TORCH_DTYPES[np.dtype(dtype)], device="cuda")

    def host_buffer(self, shape, dtype) -> np.ndarray:
        return torch.empty(shape, dtype=_TORCH_DTYPES[np.dtype(dtype)]).pin_memory().numpy()

    def stream(self, name: str) -> torch.cuda.Stream:
        return torch.cuda.Stream()

    def event(self) -> torch.cuda.Event:
        return torch.cuda.Event()

    def upload(self, dst, src, stream) -> None:
        with torch.cuda.stream(stream):
            dst.copy_(torch.from_numpy(src), non_blocking=True)

    def download(self, dst, src, stream) -> None:
        with torch.cuda.stream(stream):
            torch.from_numpy(dst).copy_(src, non_blocking=True)

    def record(self, event, stream) -> None:
        event.record(stream)

    def wait(self, stream, event) -> None:
        stream.wait_event(event)

    def sync(self, event) -> None:
        event.synchronize()


_TORCH_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32,
                 np.dtype(np.float16): torch.float16}  # fmt: skip


def capture(graph: FrameGraph, inputs: list[torch.Tensor], stream) -> tuple[torch.cuda.CUDAGraph | None, tuple]:
    """The frame graph captured as a CUDA graph on ``inputs`` (static tensors), and its
    outputs. Where the capture fails (a driver, a cuDNN algorithm or an op that cannot be
    captured), one warning says so and the graph runs without it: slower, not broken."""
    cuda_graph = torch.cuda.CUDAGraph()
    try:
        with torch.inference_mode(), torch.cuda.graph(cuda_graph, stream=stream):
            return cuda_graph, graph(*inputs)
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("the frame graph could not be captured as a CUDA graph (%s); it runs without one", reason)
    torch.cuda.synchronize()
    with torch.inference_mode():
        return None, graph(*inputs)


class _CudaRunner:
    """The frame graph on CUDA: captured once as a CUDA graph on static tensors, fed through
    the slot schedule that the TensorRT backend uses too (two slots, upload/compute/download
    streams, the state kept on the device)."""

    def __init__(self, graph: FrameGraph, use_graph: bool) -> None:
        from ..trt.slots import SlotPipeline

        self.graph = graph
        # Shapes are fixed per graph, so let cuDNN time its algorithms once (in the warm-up
        # below, outside the capture) instead of picking them by heuristics.
        torch.backends.cudnn.benchmark = True
        example = graph.example_inputs("cuda")
        self.static_in = {k: v.clone() for k, v in example.items()}
        capture_stream = torch.cuda.Stream()
        capture_stream.wait_stream(torch.cuda.current_stream())  # (the inputs were made on the default stream)
        with torch.inference_mode(), torch.cuda.stream(capture_stream):
            for _ in range(3):  # warm-up: cuDNN times its algorithms outside the capture
                outs = graph(*self.static_in.values())
        capture_stream.synchronize()
        self.cuda_graph: torch.cuda.CUDAGraph | None = None
        if use_graph:
            self.cuda_graph, outs = capture(graph, list(self.static_in.values()), capture_stream)
        self.static_out = dict(zip(graph.output_names, outs))

        def spec(tensors: dict[str, torch.Tensor]):
            return {k: (tuple(v.shape), np.dtype(str(v.dtype).removeprefix("torch."))) for k, v in tensors.items()}

        self.pipe = SlotPipeline(TorchCudaDevice(), spec(self.static_in), spec(self.static_out), self._compute)

    def _compute(self, slot, dev_in, dev_out, stream) -> None:
        with torch.inference_mode(), torch.cuda.stream(stream):
            for name, t in dev_in.items():
                self.static_in[name].copy_(t)
            if self.cuda_graph is not None:
                self.cuda_graph.replay()
            else:
                outs = self.graph(*self.static_in.values())
                for k, v in zip(self.graph.output_names, outs):
                    self.static_out[k].copy_(v)
            for name, t in dev_out.items():
                t.copy_(self.static_out[name])

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.pipe.run(inputs)
