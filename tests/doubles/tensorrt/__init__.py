"""Test double of the ``tensorrt`` Python API, 10.x style (see tests/doubles/README.md).

A plan is the ONNX file behind a header; the engine runs it with ONNX Runtime on the
host, on tensors at the addresses bound by ``set_tensor_address`` in the pycuda
double's memory. Only the calls p3m-live makes exist.
"""

from __future__ import annotations

import enum
import hashlib
import json
from pathlib import Path

import numpy as np

__version__ = "10.99.0+double"
MAGIC = b"TRT-DOUBLE\n"


class Logger:
    WARNING = 2

    def __init__(self, min_severity: int = WARNING) -> None:
        self.min_severity = min_severity


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class ExecutionContextAllocationStrategy(enum.IntEnum):
    STATIC = 0
    ON_PROFILE_CHANGE = 1
    USER_MANAGED = 2


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT32 = 3
    UINT8 = 5


_NP = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT32: np.int32, DataType.UINT8: np.uint8}
_ONNX = {"tensor(float)": DataType.FLOAT, "tensor(float16)": DataType.HALF, "tensor(int32)": DataType.INT32,
         "tensor(uint8)": DataType.UINT8}  # fmt: skip


def nptype(dtype: DataType) -> type:
    return _NP[dtype]


class IProgressMonitor:
    def __init__(self) -> None:
        pass


class _Tensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape = name, shape


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.onnx: bytes = b""
        self.inputs: list[_Tensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
        self.network, self.errors = network, []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]

    def parse_from_file(self, path: str) -> bool:
        import onnx

        try:
            model = onnx.load(path)
        except Exception as e:  # noqa: BLE001 (the parser reports, it does not raise)
            self.errors.append(f"cannot read the model: {e}")
            return False
        dims = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in model.graph.input}
        self.network.inputs = [_Tensor(n, s) for n, s in dims.items()]
        self.network.onnx = Path(path).read_bytes()
        return True


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, min, opt, max) -> None:  # noqa: A002 (TensorRT's names)
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class IHostMemory(bytes):
    pass


class ITimingCache:
    def __init__(self, data: bytes) -> None:
        self.entries = set(data.decode().split()) if data else set()

    def serialize(self) -> IHostMemory:
        return IHostMemory("\n".join(sorted(self.entries)).encode())


class IBuilderConfig:
    def __init__(self) -> None:
        self.pools: dict[MemoryPoolType, int] = {}
        self.profiles: list[IOptimizationProfile] = []
        self.timing_cache: ITimingCache | None = None
        self.progress_monitor: IProgressMonitor | None = None

    def set_memory_pool_limit(self, pool: MemoryPoolType, size: int) -> None:
        self.pools[pool] = size

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> ITimingCache:
        return ITimingCache(bytes(data))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self.timing_cache


class Builder:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        """None, as TensorRT, for a profile that misses an input or contradicts its fixed shape."""
        if len(config.profiles) != 1:
            return None
        shapes = config.profiles[0].shapes
        if any(shapes.get(t.name) != (t.shape,) * 3 for t in network.inputs):
            return None
        monitor = config.progress_monitor
        if monitor is not None:
            monitor.phase_start("Building engine", None, 2)
            for step in range(2):
                monitor.step_complete("Building engine", step)
            monitor.phase_finish("Building engine")
        if config.timing_cache is not None:
            config.timing_cache.entries.add(hashlib.sha256(network.onnx).hexdigest()[:16])
        header = {"tensorrt": __version__, "flags": network.flags, "workspace": config.pools.get(0)}
        return IHostMemory(MAGIC + json.dumps(header).encode() + b"\n" + network.onnx)


class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> ICudaEngine | None:
        if not data.startswith(MAGIC):
            return None
        header, onnx = data[len(MAGIC) :].split(b"\n", 1)
        if json.loads(header)["tensorrt"] != __version__:
            return None
        return ICudaEngine(json.loads(header), onnx)


class ICudaEngine:
    def __init__(self, header: dict, onnx: bytes) -> None:
        import onnxruntime as ort

        self.header = header
        self.session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
        self.io = {}  # name -> (mode, shape, dtype)
        sides = (TensorIOMode.INPUT, self.session.get_inputs()), (TensorIOMode.OUTPUT, self.session.get_outputs())
        for mode, args in sides:
            for a in args:
                self.io[a.name] = (mode, tuple(a.shape), _ONNX[a.type])
        self.names = list(self.io)

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, i: int) -> str:
        return self.names[i]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self.io[name][0] if name in self.io else TensorIOMode.NONE

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.io[name][1]

    def get_tensor_dtype(self, name: str) -> DataType:
        return self.io[name][2]

    @property
    def device_memory_size_v2(self) -> int:
        """Activation memory a context needs: here twice the bytes of its tensors, so that
        engines of different shapes need different amounts."""
        return 2 * sum(int(np.prod(shape)) * np.dtype(nptype(dt)).itemsize for _, shape, dt in self.io.values())

    def create_execution_context(
        self, strategy: ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy.STATIC
    ) -> IExecutionContext:
        return IExecutionContext(self, user_managed=strategy == ExecutionContextAllocationStrategy.USER_MANAGED)


class IExecutionContext:
    def __init__(self, engine: ICudaEngine, user_managed: bool = False) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.enqueued = 0
        self.user_managed = user_managed
        self.device_memory: tuple[int, int] | None = None  # (address, size) given by the caller

    def set_device_memory(self, memory: int, size: int) -> None:
        self.device_memory = (int(memory), int(size))

    def set_input_shape(self, name: str, shape) -> bool:
        ok = self.engine.get_tensor_mode(name) == TensorIOMode.INPUT and tuple(shape) == self.engine.io[name][1]
        if ok:
            self.shapes[name] = tuple(shape)
        return ok

    def set_tensor_address(self, name: str, address: int) -> bool:
        if name not in self.engine.io or not isinstance(address, int):
            return False
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        from pycuda import driver

        driver._need_context()
        io = self.engine.io
        inputs = [n for n, (mode, _, _) in io.items() if mode == TensorIOMode.INPUT]
        if set(self.shapes) != set(inputs) or set(self.addresses) != set(io) or not isinstance(stream_handle, int):
            return False
        if self.user_managed:  # TensorRT refuses to enqueue without enough activation memory
            if self.device_memory is None or self.device_memory[1] < self.engine.device_memory_size_v2:
                return False
            driver.device_view(self.device_memory[0], (self.engine.device_memory_size_v2,), np.uint8)[:] = 0xAB
        view = {n: driver.device_view(self.addresses[n], shape, nptype(dt)) for n, (_, shape, dt) in io.items()}
        outs = self.engine.session.run(None, {n: view[n].copy() for n in inputs})
        for out, arg in zip(outs, self.engine.session.get_outputs()):
            np.copyto(view[arg.name], out)
        self.enqueued += 1
        return True
