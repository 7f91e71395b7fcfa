"""Loading P3M-Net checkpoints in three small steps: unwrap, clean keys, load.

The official release is ``torch.save({'state_dict': sd})`` where ``sd`` holds the
backbone twice (``resnet.*`` and the aliases ``encoder0..4.*``, same tensors) and
an unused ImageNet classifier (``resnet.fc.*``). We accept the release format, a
bare state dict, DataParallel's ``module.`` prefix, and either backbone key set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import P3MError

# Official alias prefix -> our canonical prefix (the backbone lives under resnet.*).
BACKBONE_ALIASES: tuple[tuple[str, str], ...] = (
    ("encoder0.0.", "resnet.conv1."),
    ("encoder0.1.", "resnet.bn1."),
    ("encoder1.0.", "resnet.layer1."),
    ("encoder2.", "resnet.layer2."),
    ("encoder3.", "resnet.layer3."),
    ("encoder4.", "resnet.layer4."),
)
DROPPED_PREFIXES = ("resnet.fc.",)
CONTAINER_KEYS = ("state_dict", "model", "net")
OPTIONAL_SUFFIXES = (".num_batches_tracked",)


def read_checkpoint(path: str | os.PathLike) -> object:
    """torch.load on the CPU with tensors only, turning file problems into P3MError."""
    p = Path(path)
    if not p.is_file():
        raise P3MError(f"weights file not found: {p} (pass --weights PATH or set P3M_LIVE_WEIGHTS)")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for bad files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise P3MError(
            f"cannot read weights file {p}: not a PyTorch checkpoint, or truncated ({reason[:120]}); download it again"
        ) from e


def unwrap(obj: object) -> dict[str, Tensor]:
    """The state dict inside a checkpoint container (or the object itself)."""
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor)}
        if tensors:
            return tensors
    raise P3MError("the weights file holds no state dict of tensors: it is not a P3M-Net checkpoint")


def clean_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Strip ``module.``, fold backbone aliases into ``resnet.*``, drop the classifier.

    Where a tensor appears under both names they must agree; a checkpoint whose
    two copies differ is ambiguous and refused.
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        for alias, canon in BACKBONE_ALIASES:
            if key.startswith(alias):
                key = canon + key[len(alias) :]
                break
        if key.startswith(DROPPED_PREFIXES):
            continue
        if key in out and not (out[key].shape == value.shape and torch.equal(out[key], value)):
            raise P3MError(
                f"the weights file holds two different tensors for {key} "
                "(backbone and its encoder alias disagree): it is not a clean P3M-Net checkpoint"
            )
        out[key] = value
    return out


def _first(keys: list[str], n: int = 3) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_into(model: nn.Module, state: Mapping[str, Tensor]) -> None:
    """Strict load with a readable report of the first missing, unexpected or misshapen keys.

    BatchNorm's ``num_batches_tracked`` counters are training bookkeeping: they
    may be absent or of any shape, and are not loaded.
    """
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith(OPTIONAL_SUFFIXES)}
    state = {k: v for k, v in state.items() if not k.endswith(OPTIONAL_SUFFIXES)}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} weights ({_first(missing)})")
    if misshapen:
        problems.append(f"wrong shape for {_first(misshapen)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} weights ({_first(unexpected)})")
    if problems:
        raise P3MError(
            "the weights do not fit P3M-Net (ResNet-34): " + "; ".join(problems)
            + ". Use the official p3mnet_pretrained_on_p3m10k.pth"
        )  # fmt: skip
    model.load_state_dict(state, strict=False)
