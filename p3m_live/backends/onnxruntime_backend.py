"""ONNX Runtime backend: the exported frame graph in an InferenceSession.

The graph is exported once per (spec, checkpoint) into the user cache and
reused; a run that finds it there never imports torch. Every call goes through
one I/O binding on the session's device (the CPU, or the GPU with the CUDA
provider): the frame goes up each call, the background only when it changes,
and the state output stays where ONNX Runtime made it and is bound as the next
call's state input, so a GPU run copies back only the composite and the alpha.

In a live run its CPU threads do not spin-wait between ops for the next one, as
ONNX Runtime's do by default: the frames come at the camera's pace, and spinning is
CPU that the decoder, the encoder and the call app need (on 2 cores, the fast model
at 720p: 40% less CPU a frame, for 4 ms more; BENCHMARKS.md). Offline, where the
next frame is always waiting, they spin.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import P3MError, out_of_room, reason
from ..model.weights import cache_dir
from ..spec import GraphSpec
from .base import Backend, device_index, spec_key

log = logging.getLogger("p3m_live")


def export_frame_graph(
    spec: GraphSpec, weights: str | os.PathLike, path: str | os.PathLike | io.BytesIO
) -> Path | io.BytesIO:
    """Export the frame graph for ``spec`` (P3M-Net with portable unpooling) to ``path``."""
    from ..export import export_onnx
    from ..graph import FrameGraph
    from ..model.networks import load_network

    graph = FrameGraph(load_network(spec.model, weights, portable=True), spec)
    example = graph.example_inputs()
    return export_onnx(graph, tuple(example.values()), path, graph.input_names, graph.output_names)


class CacheUnwritable(P3MError):
    """The user cache cannot take the exported graph (a full disk, a read-only home)."""


def cached_onnx(spec: GraphSpec, weights: str | os.PathLike) -> Path:
    """The exported graph for this spec and checkpoint, exporting it on first use."""
    path = cache_dir() / "onnx" / f"frame-graph-{spec_key(spec, Path(weights))}.onnx"
    if not path.is_file():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            export_frame_graph(spec, weights, tmp)
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            why = "the disk is full" if out_of_room(e) else reason(e)
            raise CacheUnwritable(
                f"cannot keep the exported frame graph in {path.parent} ({why}); free some space there, "
                "or set XDG_CACHE_HOME to a folder that can be written"
            ) from e
    return path


def frame_graph_model(spec: GraphSpec, weights: str | os.PathLike) -> str | bytes:
    """What an InferenceSession opens: the cached graph's path, or, where the cache cannot
    be written, the graph exported into memory for this run alone (one warning; the run
    does not need the cache, only its next start does)."""
    try:
        return str(cached_onnx(spec, weights))
    except CacheUnwritable as e:
        log.warning("%s; exported for this run only, again at the next start", e)
    buffer = io.BytesIO()
    export_frame_graph(spec, weights, buffer)
    return buffer.getvalue()


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(
        self,
        spec: GraphSpec,
        weights: str | os.PathLike | None = None,
        onnx_path: str | os.PathLike | None = None,
        device: str = "cpu",
        threads: int | None = None,
        spinning: bool = True,
    ) -> None:
        """``threads``: the CPU threads of each op (None: one per physical core, ONNX
        Runtime's choice); ``spinning``: whether they spin-wait between ops (ONNX Runtime's
        default; off for a live run, see the module's docstring)."""
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise P3MError("ONNX Runtime is not installed: pip install 'p3m-live[onnx]'") from e
        super().__init__(spec)
        available = ort.get_available_providers()
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in available:
                raise P3MError(
                    f"ONNX Runtime has no CUDA provider here (providers: {', '.join(available)}); "
                    "pip install onnxruntime-gpu, or use --device cpu"
                )
            providers = [("CUDAExecutionProvider", {"device_id": device_index(device)}), "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        if onnx_path is None:
            if weights is None:
                raise P3MError("the onnxruntime backend needs weights or an exported graph")
            model = frame_graph_model(spec, weights)
        else:
            model = str(onnx_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self.session = ort.InferenceSession(model, opts, providers=providers)
        self.on_gpu = self.session.get_providers()[0] == "CUDAExecutionProvider"
        if device.startswith("cuda") and not self.on_gpu:
            # onnxruntime-gpu lists the provider even when it cannot load CUDA or cuDNN, and
            # then quietly runs on the CPU with settings chosen for a GPU.
            raise P3MError(
                "ONNX Runtime could not load its CUDA provider (are the CUDA and cuDNN libraries "
                "it needs installed?); use --device cpu"
            )
        self.output_names = [o.name for o in self.session.get_outputs()]
        # The exporter drops inputs the graph does not read (the state with --temporal off).
        self.input_names = {i.name for i in self.session.get_inputs()}
        self._ort = ort
        self._device = ("cuda", device_index(device)) if self.on_gpu else ("cpu", 0)
        self._binding = self.session.io_binding()
        self._uploaded: tuple[np.ndarray, object] | None = None  # (host background, its device copy)

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        binding, (kind, index) = self._binding, self._device
        for name, value in inputs.items():
            if name not in self.input_names:
                continue
            if isinstance(value, self._ort.OrtValue):  # the previous call's state, on the device
                binding.bind_ortvalue_input(name, value)
            elif name == "background":  # sticky: copied to the device when it is a new array
                if self._uploaded is None or self._uploaded[0] is not value:
                    self._uploaded = (value, self._ort.OrtValue.ortvalue_from_numpy(value, kind, index))
                binding.bind_ortvalue_input(name, self._uploaded[1])
            else:
                binding.bind_cpu_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, kind if name == STATE_OUT else "cpu", index if name == STATE_OUT else 0)
        self.session.run_with_iobinding(binding)
        outs = dict(zip(self.output_names, binding.get_outputs()))
        return {name: v if name == STATE_OUT else v.numpy() for name, v in outs.items()}

    def _host_state(self, state) -> np.ndarray:
        return state.numpy() if isinstance(state, self._ort.OrtValue) else state

    def close(self) -> None:
        self._binding = self._uploaded = None  # type: ignore[assignment]
        self.session = None  # type: ignore[assignment]


STATE_OUT = "state_alpha_out"  # kept on the session's device between calls
