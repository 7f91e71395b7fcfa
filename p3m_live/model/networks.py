"""Loading a matting network with its weights: the part of :mod:`p3m_live.model` that needs torch."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

import torch
from torch import Tensor, nn

from .checkpoint import clean_keys, load_into, read_checkpoint, unwrap
from .p3mnet import P3MNet
from .unpool import UnpoolMode


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
