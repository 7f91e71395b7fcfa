"""Backends that run the frame graph, and the ``auto`` choice between them.

``open_backend("auto", ...)`` picks, in order: TensorRT where usable, torch on
CUDA, ONNX Runtime's CUDA provider (onnxruntime-gpu beside a CPU-only torch), ONNX
Runtime on the CPU, torch on the CPU, and logs one line saying which and why.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import sys
from pathlib import Path

from ..errors import P3MError
from ..spec import GraphSpec
from .base import Backend

log = logging.getLogger("p3m_live")

BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime")


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _gpu_driver() -> bool:
    """Whether a GPU driver that PyTorch's CUDA (or ROCm) build could use is here. Without
    one no GPU can be seen, and importing torch to hear so costs a second at start-up."""
    if sys.platform == "darwin":
        return False
    if os.path.exists("/dev/kfd"):  # AMD's ROCm, which torch.cuda also drives
        return True
    try:
        ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return False
    return True


def _cuda_available() -> bool:
    if "torch" not in sys.modules and not _gpu_driver():
        return False
    import torch

    return torch.cuda.is_available()


def _ort_has_cuda() -> bool:
    """Whether ONNX Runtime was built with its CUDA provider (onnxruntime-gpu)."""
    if not _has("onnxruntime"):
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def choose_backend(device: str | None = None) -> tuple[str, str, str]:
    """(backend, device, reason) for ``--backend auto``; a CUDA device asked for where none is
    seen is an error, not a quiet run on the CPU."""
    want_cpu = device is not None and device.startswith("cpu")
    if not want_cpu and _cuda_available():
        if _has("tensorrt") and _has("pycuda") and _has("p3m_live.backends.tensorrt_backend"):
            return "tensorrt", device or "cuda", "NVIDIA GPU with TensorRT and pycuda"
        why = "NVIDIA GPU, TensorRT " + ("backend not available" if _has("tensorrt") else "not installed")
        return "torch", device or "cuda", why
    if not want_cpu and _ort_has_cuda():
        return "onnxruntime", device or "cuda", "PyTorch sees no CUDA GPU, ONNX Runtime has its CUDA provider"
    if device is not None and device.startswith("cuda"):
        raise P3MError(
            f"--device {device} asked for, but nothing here sees a CUDA GPU (PyTorch sees none, and ONNX "
            "Runtime has no CUDA provider); use --device cpu, or install PyTorch's CUDA build"
        )
    where = "CPU requested" if want_cpu else "no CUDA GPU"
    if _has("onnxruntime"):
        return "onnxruntime", "cpu", f"{where}, ONNX Runtime installed"
    return "torch", "cpu", f"{where}, ONNX Runtime not installed"


def open_backend(
    name: str,
    spec: GraphSpec,
    weights: str | os.PathLike,
    device: str | None = None,
    engine_dir: Path | None = None,
    threads: int | None = None,
    paced: bool = False,
) -> Backend:
    """Open the named backend (or the ``auto`` choice) for ``spec``; ``engine_dir`` is where
    the TensorRT backend keeps its plans (default: the engine store's); ``threads``, how many
    CPU threads a CPU backend computes with (default: one per physical core); ``paced``,
    frames come at a live source's pace, so ONNX Runtime's threads wait without spinning."""
    if name not in BACKENDS:
        raise P3MError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        name, device, reason = choose_backend(device)
        log.info("backend: %s on %s (%s)", name, device, reason)
    if name == "torch":
        from .torch_backend import TorchBackend

        dev = device or "cpu"
        if dev.startswith("cuda") and not _cuda_available():
            raise P3MError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu")
        return TorchBackend(spec, weights, device=dev, threads=threads)
    if name == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(spec, weights, device=device or "cpu", threads=threads, spinning=not paced)
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(spec, weights, device=device or "cuda", engine_dir=engine_dir)
