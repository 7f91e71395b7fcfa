"""The matting networks and their weights: P3M-Net (quality) and the fast model.

Both have ``matte(rgb) -> alpha``: float32 RGB in [0, 1] at the model size in,
float32 alpha in [0, 1] out, each network doing its own preprocessing, so the
frame graph treats them alike.

Finding the weights needs no torch, so this package imports it only when a network
is asked for (``load_p3mnet``, ``P3MNet``...): a run that finds its exported graph
in the cache, on ONNX Runtime or TensorRT, starts without PyTorch's second or so of
import.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..spec import fast_variant

__all__ = ["MattingNetwork", "P3MNet", "P3MOutputs", "fuse", "load_network", "load_p3mnet", "resolve_model_weights"]

_LAZY = {  # name -> the submodule that defines it (and imports torch)
    "MattingNetwork": "networks",
    "load_network": "networks",
    "load_p3mnet": "networks",
    "P3MNet": "p3mnet",
    "P3MOutputs": "p3mnet",
    "fuse": "p3mnet",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_model_weights(model: str, explicit: str | os.PathLike | None, height: int, width: int) -> Path:
    """The weights file for ``model`` at this frame size: P3M-Net's checkpoint (explicit,
    environment or cache), or the converted fast model for the frame's orientation."""
    if model == "p3m":
        from .weights import resolve_weights

        return resolve_weights(explicit, download=False)
    if explicit:
        return Path(explicit)
    from .fast_weights import resolve_fast_model

    return resolve_fast_model(fast_variant(height, width))
