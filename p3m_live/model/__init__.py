"""P3M-Net and its checkpoints: ``from p3m_live.model import P3MNet, load_p3mnet``."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import Tensor

from .checkpoint import clean_keys, load_into, read_checkpoint, unwrap
from .p3mnet import P3MNet, P3MOutputs, fuse
from .unpool import UnpoolMode

__all__ = ["P3MNet", "P3MOutputs", "fuse", "load_p3mnet"]


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
