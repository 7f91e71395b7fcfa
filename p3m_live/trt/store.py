"""The engine store: serialized TensorRT plans with a JSON sidecar each, and the one
decision that matters, whether a plan may be loaded for this run.

A plan only runs on the GPU model and TensorRT version it was built for, and only
computes what it was built from, so every field that fixes it is in the sidecar
(TensorRT version, GPU name and compute capability, the frame graph's spec and
version, the checkpoint's hash) along with the plan's own SHA-256. A plan is used
only if all of them match; otherwise it is rebuilt and the reason said, never
loaded stale. This module needs neither TensorRT nor a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..backends.base import file_digest
from ..spec import GRAPH_VERSION, GraphSpec

SIDECAR_FORMAT = 1
# Sidecar fields that come from the spec, with the words a mismatch is reported in.
SPEC_FIELDS = {
    "width": "frame width", "height": "frame height", "in_format": "input format", "out_format": "output format",
    "batch": "batch", "model": "model", "model_size": "model size", "precision": "precision",
    "background": "background kind", "temporal": "temporal filter", "upsampler": "upsampler", "matrix": "YUV matrix",
    "full_range": "YUV range", "ema_weight": "EMA weight", "blur_strength": "blur strength",
    "foreground": "foreground colours", "light_wrap": "light wrap", "planes": "compositing on the planes",
    "erode": "erode", "foreground_track": "foreground track output",
}  # fmt: skip


@dataclass(frozen=True)
class Target:
    """What this run needs: the spec, the weights and the machine."""

    spec: GraphSpec
    checkpoint: str  # digest of the weights file
    tensorrt: str  # TensorRT version string
    gpu: str  # GPU name
    compute_capability: str  # "9.0"

    def sidecar(self, plan_sha256: str = "") -> dict:
        s = self.spec.as_dict()
        meta = {k: s[k] for k in SPEC_FIELDS}
        meta["model_size"] = list(self.spec.model_hw)
        return {
            "format": SIDECAR_FORMAT,
            "tensorrt": self.tensorrt,
            "gpu": self.gpu,
            "compute_capability": self.compute_capability,
            **meta,
            "checkpoint": self.checkpoint,
            "graph_version": GRAPH_VERSION,
            "plan_sha256": plan_sha256,
        }

    @property
    def machine(self) -> str:
        """GPU and TensorRT version as a file-name part: what a plan and a timing cache belong to."""
        return f"{re.sub(r'[^a-z0-9]+', '-', self.gpu.lower()).strip('-')}-trt{self.tensorrt}"

    def file_stem(self) -> str:
        """A readable, unique plan name: size, precision, GPU, TensorRT, and a hash of the rest."""
        s = self.spec
        key = hashlib.sha256(json.dumps(self.sidecar(), sort_keys=True).encode()).hexdigest()[:12]
        return f"p3m-{s.model}-{s.width}x{s.height}-b{s.batch}-{s.precision}-{self.machine}-{key}"


def mismatch(meta: dict, want: dict) -> str | None:
    """Why a plan described by ``meta`` must not be loaded for ``want``; None if it may."""
    if meta.get("format") != SIDECAR_FORMAT:
        return "its sidecar is from another p3m-live version"
    if meta.get("tensorrt") != want["tensorrt"]:
        return f"it was built with TensorRT {meta.get('tensorrt')}, this is TensorRT {want['tensorrt']}"
    if (meta.get("gpu"), meta.get("compute_capability")) != (want["gpu"], want["compute_capability"]):
        return (
            f"it was built on {meta.get('gpu')} (compute {meta.get('compute_capability')}), "
            f"this is {want['gpu']} (compute {want['compute_capability']})"
        )
    if meta.get("graph_version") != want["graph_version"]:
        return f"the frame graph changed (version {meta.get('graph_version')} -> {want['graph_version']})"
    for key, words in SPEC_FIELDS.items():
        if meta.get(key) != want[key]:
            return f"its {words} is {meta.get(key)}, this run needs {want[key]}"
    if meta.get("checkpoint") != want["checkpoint"]:
        return "the weights changed"
    return None


def default_engine_dir() -> Path:
    """``engines/`` of a source checkout (next to pyproject.toml), else the user cache."""
    from ..model.weights import cache_dir

    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "engines").is_dir():
        return root / "engines"
    return cache_dir() / "engines"


Builder = Callable[[Path], None]  # writes a serialized plan to the given path


class EngineStore:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or default_engine_dir()

    def paths(self, target: Target) -> tuple[Path, Path]:
        stem = target.file_stem()
        return self.folder / f"{stem}.plan", self.folder / f"{stem}.json"

    def check(self, target: Target) -> tuple[Path, str | None]:
        """(plan path, reason it cannot be used or None)."""
        plan, side = self.paths(target)
        if not plan.is_file():
            return plan, "no engine was built for this yet"
        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError):
            return plan, "its sidecar is missing or unreadable"
        want = target.sidecar()
        reason = mismatch(meta, want)
        if reason is None and meta.get("plan_sha256") != file_digest(plan, None):
            reason = "the plan file is damaged (its SHA-256 differs from the sidecar's)"
        return plan, reason

    def find_or_build(self, target: Target, build: Builder, log: Callable[[str], None] = print) -> Path:
        """A plan that matches ``target``: the stored one, or a new one built with ``build``."""
        plan, reason = self.check(target)
        if reason is None:
            return plan
        log(f"building the TensorRT engine ({reason}); this takes minutes once and is cached in {self.folder}")
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = plan.with_name(plan.name + f".{os.getpid()}.tmp")
        try:
            build(tmp)
            meta = target.sidecar(file_digest(tmp, None))
            side = plan.with_suffix(".json")
            side.write_text(json.dumps(meta, indent=2))
            os.replace(tmp, plan)
        finally:
            tmp.unlink(missing_ok=True)
        return plan

    def read_sidecar(self, plan: Path) -> dict:
        return json.loads(plan.with_suffix(".json").read_text())
