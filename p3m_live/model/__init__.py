"""The matting networks and their weights: P3M-Net (quality) and the fast model.

Both have ``matte(rgb) -> alpha``: float32 RGB in [0, 1] at the model size in,
float32 alpha in [0, 1] out, each network doing its own preprocessing, so the
frame graph treats them alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn

from .checkpoint import clean_keys, load_into, read_checkpoint, unwrap
from .p3mnet import P3MNet, P3MOutputs, fuse
from .unpool import UnpoolMode

__all__ = ["MattingNetwork", "P3MNet", "P3MOutputs", "fuse", "load_network", "load_p3mnet", "resolve_model_weights"]


class MattingNetwork(Protocol):
    """What the frame graph needs of a network."""

    def matte(self, rgb: Tensor) -> Tensor: ...

    def half(self) -> nn.Module: ...


def load_p3mnet(
    weights: str | os.PathLike | Mapping[str, Tensor],
    unpool: UnpoolMode = "native",
    device: str | torch.device = "cpu",
) -> P3MNet:
    """P3M-Net in eval mode with the given weights (a path or a state dict).

    ``unpool="portable"`` builds the variant without MaxPool indices and
    MaxUnpool, numerically identical, that TensorRT's ONNX parser accepts.
    """
    obj = weights if isinstance(weights, Mapping) else read_checkpoint(weights)
    model = P3MNet(unpool=unpool)
    load_into(model, clean_keys(unwrap(obj)))
    return model.eval().to(device)


def load_network(model: str, weights: str | os.PathLike, portable: bool = False) -> nn.Module:
    """The network named by ``model`` ("p3m" or "fast") with its weights, in eval mode.

    ``portable`` asks for the export-friendly P3M-Net (no MaxUnpool); the fast model
    is portable as it is."""
    if model == "fast":
        from .fast import load_fast_model

        return load_fast_model(weights)
    return load_p3mnet(weights, unpool="portable" if portable else "native")


def resolve_model_weights(model: str, explicit: str | os.PathLike | None, height: int, width: int) -> Path:
    """The weights file for ``model`` at this frame size: P3M-Net's checkpoint (explicit,
    environment or cache), or the converted fast model for the frame's orientation."""
    if model == "p3m":
        from .weights import resolve_weights

        return resolve_weights(explicit, download=False)
    if explicit:
        return Path(explicit)
    from .fast import fast_variant
    from .fast_weights import resolve_fast_model

    return resolve_fast_model(fast_variant(height, width))
