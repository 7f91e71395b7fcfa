"""Building a TensorRT engine from the exported FP16 frame graph.

Written against the documented TensorRT Python API, 10.x and 11.x: the network is
strongly typed (the FP16 precision is in the ONNX graph itself; TensorRT 10 needs
the STRONGLY_TYPED creation flag, TensorRT 11 has no other kind and no
BuilderFlag.FP16), explicit batch, one optimisation profile per build, a
workspace limit, a timing cache kept next to the plans and reused, and progress
reported while the builder works. Not run in this project's CI: no machine here
has TensorRT (see the README).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..errors import P3MError
from ..terminal import is_terminal, say

log = logging.getLogger("p3m_live")

WORKSPACE = 4 << 30


def _progress_monitor(trt):
    """A progress monitor: a log line as each top-level phase starts, and on a terminal its
    step counter redrawn in place (a log file would get a line of it per step)."""

    class Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.lock = threading.Lock()
            self.phases: dict[str, tuple[str | None, int]] = {}
            self.counting = is_terminal() and log.isEnabledFor(logging.INFO)  # (not with -q)
            self.counted = False  # a step counter is on the line

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with self.lock:
                self.phases[phase_name] = (parent_phase, num_steps)
                if parent_phase is None:
                    log.info("engine build: %s", phase_name)

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self.lock:
                parent, steps = self.phases.get(phase_name, (None, 0))
                if self.counting and parent is None and steps:
                    self.counted = say(f"\r  {phase_name}: {step + 1}/{steps}")
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            with self.lock:
                parent, _ = self.phases.pop(phase_name, (None, 0))
                if parent is None and self.counted:
                    self.counted = not say("\n")

    return Progress()


def build_engine(
    onnx_path: Path,
    plan_path: Path,
    shapes: dict[str, tuple[int, ...]],
    timing_cache: Path | None = None,
    workspace: int = WORKSPACE,
) -> None:
    """Parse ``onnx_path`` and write a serialized plan to ``plan_path``.

    ``shapes`` gives each input's shape (the frame graph's shapes are fixed per
    export; the profile's min, opt and max are that shape).
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):  # TensorRT 10; implied in 11
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # deprecated no-op in 10, gone in 11
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise P3MError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = shapes[tensor.name]
        profile.set_shape(tensor.name, shape, shape, shape)
    config.add_optimization_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    if hasattr(config, "progress_monitor"):
        config.progress_monitor = _progress_monitor(trt)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise P3MError("TensorRT could not build the engine (see the messages above)")
    plan_path.write_bytes(bytes(serialized))
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
