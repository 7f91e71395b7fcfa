"""Device slots and streams: how a GPU backend moves frames through its engine.

Two slots of page-locked host and device buffers, and three streams (upload,
compute, download) ordered by events, so that frame N+1's upload overlaps frame
N's compute and frame N-1's download. The recurrent state never leaves the
device: each call's state input is bound to the previous call's state output
(the slots alternate), unless the caller hands in a new state (a reset).

The schedule is written once against a small device interface (:class:`Device`),
with three implementations: pycuda (the TensorRT backend), torch CUDA, and
host memory (:class:`HostDevice`, which runs every operation at once, in order,
and logs it, so the schedule is tested on machines without a GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

Spec = dict[str, tuple[tuple[int, ...], np.dtype]]  # tensor name -> (shape, dtype)


class Device(Protocol):
    """What the slot schedule needs of a GPU API."""

    def device_buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> Any: ...
    def host_buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray: ...  # page-locked
    def stream(self, name: str) -> Any: ...
    def event(self) -> Any: ...
    def upload(self, dst: Any, src: np.ndarray, stream: Any) -> None: ...
    def download(self, dst: np.ndarray, src: Any, stream: Any) -> None: ...
    def record(self, event: Any, stream: Any) -> None: ...
    def wait(self, stream: Any, event: Any) -> None: ...
    def sync(self, event: Any) -> None: ...


@dataclass
class Slot:
    host_in: dict[str, np.ndarray]
    dev_in: dict[str, Any]
    dev_out: dict[str, Any]
    host_out: dict[str, np.ndarray]
    uploaded: Any
    computed: Any
    downloaded: Any
    used: bool = False


# compute(slot, inputs_on_device, outputs_on_device, stream): enqueue the engine on ``stream``.
Compute = Callable[[Slot, dict[str, Any], dict[str, Any], Any], None]


class SlotPipeline:
    def __init__(
        self,
        device: Device,
        inputs: Spec,
        outputs: Spec,
        compute: Compute,
        state: tuple[str, str] = ("state_alpha", "state_alpha_out"),
        slots: int = 2,
    ) -> None:
        self.device, self.compute, self.state = device, compute, state
        self.inputs, self.outputs = inputs, outputs
        d = device
        self.h2d, self.run_stream, self.d2h = d.stream("upload"), d.stream("compute"), d.stream("download")
        self.slots = [
            Slot(
                host_in={n: d.host_buffer(*s) for n, s in inputs.items()},
                dev_in={n: d.device_buffer(*s) for n, s in inputs.items()},
                dev_out={n: d.device_buffer(*s) for n, s in outputs.items()},
                host_out={n: d.host_buffer(*s) for n, s in outputs.items()},
                uploaded=d.event(),
                computed=d.event(),
                downloaded=d.event(),
            )
            for _ in range(slots)
        ]
        self.calls = 0
        self._pending: list[int] = []  # slots submitted and not yet collected, oldest first
        self._last_state: np.ndarray | None = None  # the host copy of the newest state output

    @property
    def in_flight(self) -> int:
        """Calls submitted and not collected yet (their compute may still be running)."""
        return len(self._pending)

    def submit(self, host_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """Enqueue one call; return the outputs of the oldest pending call once all slots are
        busy (so at most ``slots - 1`` calls run ahead), else None."""
        d = self.device
        k = self.calls % len(self.slots)
        slot = self.slots[k]
        ready = None
        if k in self._pending:  # this slot's previous call must be collected first
            ready = self._collect()
        prev = self.slots[(self.calls - 1) % len(self.slots)] if self.calls else None
        state_in, state_out = self.state
        given = host_inputs.get(state_in)
        # No state, or the very array the previous call returned: chain on the device.
        chained = state_in in self.inputs and prev is not None and (given is None or given is self._last_state)
        dev_in = dict(slot.dev_in)
        if slot.used:
            d.sync(slot.uploaded)  # its host buffers may be refilled only after their last upload
        d.wait(self.h2d, slot.computed)  # dev_in is free once the slot's previous compute has read it
        if chained:
            dev_in[state_in] = prev.dev_out[state_out]  # the state stays on the device
        for name, arr in host_inputs.items():
            if name == state_in and (chained or arr is None):
                continue
            np.copyto(slot.host_in[name], arr)
            d.upload(slot.dev_in[name], slot.host_in[name], self.h2d)
        d.record(slot.uploaded, self.h2d)
        d.wait(self.run_stream, slot.uploaded)
        d.wait(self.run_stream, slot.downloaded)  # dev_out is free once its last download is done
        self.compute(slot, dev_in, slot.dev_out, self.run_stream)
        d.record(slot.computed, self.run_stream)
        d.wait(self.d2h, slot.computed)
        for name in self.outputs:
            d.download(slot.host_out[name], slot.dev_out[name], self.d2h)
        d.record(slot.downloaded, self.d2h)
        slot.used = True
        self._pending.append(k)
        self.calls += 1
        return ready

    def _collect(self) -> dict[str, np.ndarray]:
        k = self._pending.pop(0)
        slot = self.slots[k]
        self.device.sync(slot.downloaded)
        out = {n: a.copy() for n, a in slot.host_out.items()}
        self._last_state = out[self.state[1]]
        return out

    def flush(self) -> list[dict[str, np.ndarray]]:
        """Outputs of every pending call, oldest first."""
        return [self._collect() for _ in list(self._pending)]

    def run(self, host_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call, synchronously (what ``Backend._run`` needs)."""
        if self._pending:
            raise RuntimeError("run() after submit(): flush() the pending calls first")
        self.submit(host_inputs)
        return self.flush()[0]


@dataclass
class HostDevice:
    """Host memory as the "device": every operation runs at once, in order, and is logged as
    (operation, stream, detail), so the schedule can be checked without a GPU."""

    log: list[tuple[str, str, str]] = field(default_factory=list)
    _events: int = 0

    def device_buffer(self, shape, dtype) -> np.ndarray:
        return np.zeros(shape, dtype)

    def host_buffer(self, shape, dtype) -> np.ndarray:
        return np.zeros(shape, dtype)

    def stream(self, name: str) -> str:
        return name

    def event(self) -> str:
        self._events += 1
        return f"e{self._events}"

    def upload(self, dst, src, stream) -> None:
        np.copyto(dst, src)
        self.log.append(("upload", stream, ""))

    def download(self, dst, src, stream) -> None:
        np.copyto(dst, src)
        self.log.append(("download", stream, ""))

    def record(self, event, stream) -> None:
        self.log.append(("record", stream, event))

    def wait(self, stream, event) -> None:
        self.log.append(("wait", stream, event))

    def sync(self, event) -> None:
        self.log.append(("sync", "host", event))
