"""TensorRT backend: the FP16 frame graph as a TensorRT engine, run with pycuda streams.

Thin by design: find (or build, once) the engine for the spec in the engine store,
deserialize it, bind named tensors (``set_input_shape``, ``set_tensor_address``)
and enqueue with ``execute_async_v3`` on the streams of the shared slot schedule
(:mod:`p3m_live.trt.slots`). pycuda works in the device's primary context (the one
PyTorch uses too), pushed around every call, so the backend can be called from any
thread. Nothing here computes with torch. Written against the documented TensorRT
10.x/11.x API; not run in this project's CI (no machine here has TensorRT).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import P3MError
from ..spec import GraphSpec, frame_shape
from ..trt.slots import SlotPipeline
from ..trt.store import EngineStore, Target
from .base import Backend, device_index, file_digest

log = logging.getLogger("p3m_live")


class PycudaDevice:
    """The slot schedule's device interface on pycuda."""

    def __init__(self, cuda) -> None:
        self.cuda = cuda

    def device_buffer(self, shape, dtype):
        return self.cuda.mem_alloc(max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize))

    def host_buffer(self, shape, dtype) -> np.ndarray:
        return self.cuda.pagelocked_empty(shape, dtype)

    def stream(self, name: str):
        return self.cuda.Stream()

    def event(self):
        return self.cuda.Event()

    def upload(self, dst, src, stream) -> None:
        self.cuda.memcpy_htod_async(dst, src, stream)

    def download(self, dst, src, stream) -> None:
        self.cuda.memcpy_dtoh_async(dst, src, stream)

    def record(self, event, stream) -> None:
        event.record(stream)

    def wait(self, stream, event) -> None:
        stream.wait_for_event(event)

    def sync(self, event) -> None:
        event.synchronize()


class SharedScratch:
    """One block of device memory for the activations of every TensorRT context on a GPU.

    A run can hold several engines (one per background kind offline, one per blur strength
    live), but runs one at a time, so their contexts can share what is usually the largest
    allocation of all. The block is as large as the largest context needs; a larger
    newcomer gets a new block and every context is pointed at it. Contexts that share a
    block must never run at the same time: :meth:`claim` refuses a call while another
    backend still has calls in flight."""

    def __init__(self, cuda) -> None:
        self.cuda = cuda
        self.block = None
        self.size = 0
        self.contexts: list = []
        self.owner = None  # the backend that enqueued last

    def attach(self, context, size: int) -> None:
        if size > self.size:
            self.block, self.size = self.cuda.mem_alloc(max(1, size)), size
            for c in self.contexts:
                c.set_device_memory(int(self.block), self.size)
        context.set_device_memory(int(self.block), self.size)
        self.contexts.append(context)

    def detach(self, context, backend) -> None:
        self.contexts = [c for c in self.contexts if c is not context]
        if self.owner is backend:
            self.owner = None
        if not self.contexts:
            self.block, self.size = None, 0

    def claim(self, backend) -> None:
        other = self.owner
        if other is not None and other is not backend and other.pipe is not None and other.pipe.in_flight:
            raise P3MError("two TensorRT backends that share scratch memory were run at the same time")
        self.owner = backend


_SCRATCH: dict[int, SharedScratch] = {}  # GPU ordinal -> its shared block (all in its primary context)


def create_context(engine, trt, cuda, device: str):
    """An execution context whose activation memory is the GPU's shared block where this
    TensorRT can do that (10.1 and later: USER_MANAGED, device_memory_size_v2,
    set_device_memory), else one that allocates its own; (context, scratch or None)."""
    try:
        strategy = trt.ExecutionContextAllocationStrategy.USER_MANAGED
        size = int(engine.device_memory_size_v2)
        context = engine.create_execution_context(strategy)
    except (AttributeError, TypeError):
        return engine.create_execution_context(), None
    if context is None:
        raise P3MError("TensorRT could not create an execution context (out of GPU memory?)")
    ordinal = device_index(device)
    scratch = _SCRATCH.get(ordinal)
    if scratch is None or not scratch.contexts:  # (an empty one holds no memory; start afresh)
        scratch = _SCRATCH[ordinal] = SharedScratch(cuda)
    scratch.attach(context, size)
    return context, scratch


def input_shapes(spec: GraphSpec) -> dict[str, tuple[int, ...]]:
    """The frame graph's input shapes for ``spec`` (what the export fixes)."""
    shapes = {"frame": frame_shape(spec.in_format, spec.batch, spec.height, spec.width)}
    if spec.background_shape is not None:
        shapes["background"] = spec.background_shape
    shapes["state_alpha"] = spec.state_shape
    return shapes


def trt_imports(what: str = "the tensorrt backend", fix: str = "use --backend auto to fall back"):
    """(tensorrt, pycuda.driver), or one line saying what needs them and what to do instead."""
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as e:
        raise P3MError(f"{what} needs TensorRT and pycuda on an NVIDIA GPU (pip install 'p3m-live[trt]'); {fix}") from e
    return trt, cuda


def primary_context(cuda, device: str):
    """(device, its primary context) for ``cuda`` or ``cuda:N``: the context PyTorch uses too,
    never pycuda.autoinit's own. The caller pushes and pops it."""
    cuda.init()
    dev = cuda.Device(device_index(device))
    return dev, dev.retain_primary_context()


def engine_target(spec: GraphSpec, weights: str | os.PathLike, cuda_device) -> Target:
    import tensorrt as trt

    major, minor = cuda_device.compute_capability()
    return Target(spec, file_digest(weights), trt.__version__, cuda_device.name(), f"{major}.{minor}")


def ensure_engine(spec: GraphSpec, weights: str | os.PathLike, cuda_device, store: EngineStore) -> Path:
    """The plan for ``spec`` on this GPU: from the store, or built now (export, op check, build)."""
    from ..export import require_tensorrt_ops
    from ..trt.build import build_engine
    from .onnxruntime_backend import cached_onnx

    target = engine_target(spec, weights, cuda_device)

    def build(path: Path) -> None:
        onnx = cached_onnx(spec, weights)
        require_tensorrt_ops(onnx)
        cache = store.folder / f"timing-{target.machine}.cache"  # kept and reused by every build here
        build_engine(onnx, path, input_shapes(spec), timing_cache=cache)

    return store.find_or_build(target, build, log.warning)


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(
        self, spec: GraphSpec, weights: str | os.PathLike, device: str = "cuda", engine_dir: Path | None = None
    ) -> None:
        trt, cuda = trt_imports()
        if spec.precision != "fp16":
            spec = spec.with_(precision="fp16")
        super().__init__(spec)
        dev, self.ctx = primary_context(cuda, device)
        self.ctx.push()
        try:
            plan = ensure_engine(spec, weights, dev, EngineStore(engine_dir))
            self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = self.runtime.deserialize_cuda_engine(plan.read_bytes())
            if self.engine is None:
                raise P3MError(f"{plan.name} cannot be loaded by TensorRT {trt.__version__}; delete it to rebuild")
            self.context, self.scratch = create_context(self.engine, trt, cuda, device)
            try:
                self._bind(trt, cuda, plan.name)
            except BaseException:
                if self.scratch is not None:
                    self.scratch.detach(self.context, self)
                raise
        finally:
            self.ctx.pop()

    def _bind(self, trt, cuda, plan_name: str) -> None:
        """Fix the input shapes and build the slot schedule from the engine's named tensors."""
        inputs, outputs = {}, {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                if not self.context.set_input_shape(name, shape):
                    raise P3MError(f"{plan_name}: TensorRT refused input {name} {shape}; delete it to rebuild")
                inputs[name] = (shape, dtype)
            else:
                outputs[name] = (shape, dtype)
        self.input_names = set(inputs)
        self.pipe = SlotPipeline(PycudaDevice(cuda), inputs, outputs, self._enqueue)

    def _enqueue(self, slot, dev_in, dev_out, stream) -> None:
        if self.scratch is not None:
            self.scratch.claim(self)
        for name, buf in {**dev_in, **dev_out}.items():
            if not self.context.set_tensor_address(name, int(buf)):
                raise P3MError(f"TensorRT has no tensor {name!r} in this engine; delete the plan to rebuild")
        if not self.context.execute_async_v3(stream.handle):
            raise P3MError("TensorRT could not enqueue the engine")

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = {k: v for k, v in inputs.items() if k in self.input_names}
        return self._pipe_call(self.pipe.run, inputs)

    def _pipe_call(self, fn, *args):
        self.ctx.push()  # pycuda works in the context current on this thread
        try:
            return fn(*args)
        finally:
            self.ctx.pop()

    def close(self) -> None:
        if getattr(self, "ctx", None) is not None:
            self.ctx.push()
            try:
                if getattr(self, "scratch", None) is not None:
                    self.scratch.detach(self.context, self)
                self.pipe = self.context = self.engine = None  # free device memory in this context
            finally:
                self.ctx.pop()
            self.ctx = None
