"""Test double of ``pycuda.driver``: host memory addressed like device memory, and the
context discipline pycuda enforces (see tests/doubles/README.md)."""

from __future__ import annotations

import itertools
import threading

import numpy as np

_memory: dict[int, np.ndarray] = {}  # address -> uint8 block
_addresses = itertools.count(0x7F0000000000, 1 << 24)
_handles = itertools.count(0x5000)
_local = threading.local()
_initialised = False
freed_without_context: list[int] = []  # addresses a test expects to stay empty


class LogicError(RuntimeError):
    pass


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _need_context() -> None:
    if not _stack():
        raise LogicError("explicit_context_dependent failed: invalid device context - no currently active context?")


def init() -> None:
    global _initialised
    _initialised = True


class Context:
    def push(self) -> None:
        _stack().append(self)

    @staticmethod
    def pop() -> None:
        if not _stack():
            raise LogicError("cuCtxPopCurrent failed: invalid device context")
        _stack().pop()


class Device:
    def __init__(self, ordinal: int) -> None:
        if not _initialised:
            raise LogicError("cuDeviceGet failed: initialization error (call pycuda.driver.init() first)")
        if ordinal != 0:
            raise LogicError(f"cuDeviceGet failed: invalid device ordinal {ordinal}")

    def name(self) -> str:
        return "Double GPU (host memory)"

    def compute_capability(self) -> tuple[int, int]:
        return (9, 0)

    def retain_primary_context(self) -> Context:
        return Context()


class DeviceAllocation:
    def __init__(self, nbytes: int) -> None:
        self.address = next(_addresses)
        _memory[self.address] = np.zeros(nbytes, np.uint8)

    def __int__(self) -> int:
        return self.address

    def __del__(self) -> None:
        if not _stack():
            freed_without_context.append(self.address)
        _memory.pop(self.address, None)


def mem_alloc(nbytes: int) -> DeviceAllocation:
    _need_context()
    return DeviceAllocation(nbytes)


def pagelocked_empty(shape, dtype) -> np.ndarray:
    _need_context()
    return np.empty(shape, dtype)


def device_view(address: int, shape, dtype) -> np.ndarray:
    """The "device" memory at ``address`` as an array (what the tensorrt double reads and writes)."""
    block = _memory[address]
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes > block.nbytes:
        raise LogicError(f"{nbytes} bytes at {address:#x}, but only {block.nbytes} were allocated there")
    return block[:nbytes].view(dtype).reshape(shape)


class Stream:
    def __init__(self) -> None:
        _need_context()
        self.handle = next(_handles)

    def wait_for_event(self, event: Event) -> None:
        _need_context()

    def synchronize(self) -> None:
        pass


class Event:
    def __init__(self) -> None:
        _need_context()

    def record(self, stream: Stream | None = None) -> Event:
        _need_context()
        return self

    def synchronize(self) -> Event:
        return self


def memcpy_htod_async(dest: DeviceAllocation, src: np.ndarray, stream: Stream | None = None) -> None:
    _need_context()
    np.copyto(device_view(int(dest), src.shape, src.dtype), src)


def memcpy_dtoh_async(dest: np.ndarray, src: DeviceAllocation, stream: Stream | None = None) -> None:
    _need_context()
    np.copyto(dest, device_view(int(src), dest.shape, dest.dtype))
