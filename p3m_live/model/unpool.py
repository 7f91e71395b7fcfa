"""Max-pooling with switches, and the unpooling that uses them.

P3M-Net pools five times with ``MaxPool2d(3, stride=2, padding=1,
return_indices=True)`` and later scatters decoder features back with
``F.max_unpool2d(kernel_size=2, stride=2)`` at those indices. TensorRT's ONNX
parser accepts neither a MaxPool with an Indices output nor MaxUnpool, so the
``portable`` pair below computes the same thing with slices, comparisons and
selects only.

Exactness rules of the CPU kernels that the portable pair reproduces:

* inside a pooling window the maximum goes to the *first* position in raster
  order when several positions tie (strict ``>`` while scanning);
* the 3x3 windows overlap, so one input position can be the argmax of up to
  four windows; ``max_unpool2d`` writes in raster order of the windows, so the
  *last* of those windows wins.

Instead of flat indices the portable pool returns, per window, the code
``3 * dy + dx`` (0..8) of its argmax inside the window. A position ``(r, c)``
of the unpooled map is covered by at most four windows; for each parity phase
of ``(r, c)`` the covering windows and the code that would point at ``(r, c)``
are fixed, so unpooling is a short chain of ``where`` in window raster order.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UnpoolMode = Literal["native", "portable"]

# For each output phase (row parity s, column parity t): the windows that can
# point at that phase, as (row offset, column offset, code), in raster order of
# the windows, so that a later entry overrides an earlier one.
_PHASE_WINDOWS: dict[tuple[int, int], tuple[tuple[int, int, int], ...]] = {
    (0, 0): ((0, 0, 4),),
    (0, 1): ((0, 0, 5), (0, 1, 3)),
    (1, 0): ((0, 0, 7), (1, 0, 1)),
    (1, 1): ((0, 0, 8), (0, 1, 6), (1, 0, 2), (1, 1, 0)),
}


def pool_with_switches(x: Tensor) -> tuple[Tensor, Tensor]:
    """3x3 / stride 2 / padding 1 max-pool; returns (pooled, argmax code per window).

    Codes use the dtype of ``x`` (values 0..8 are exact even in float16), so
    the graph stays in one dtype for TensorRT's strongly typed networks.
    """
    h, w = x.shape[-2:]
    oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    xp = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    best = xp[..., 0 : 2 * oh - 1 : 2, 0 : 2 * ow - 1 : 2]
    code = torch.zeros_like(best)
    for k in range(1, 9):
        dy, dx = divmod(k, 3)
        v = xp[..., dy : dy + 2 * oh - 1 : 2, dx : dx + 2 * ow - 1 : 2]
        better = v > best
        best = torch.where(better, v, best)
        code = torch.where(better, torch.full_like(code, k), code)
    return best, code


def unpool_with_switches(y: Tensor, code: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """Inverse of :func:`pool_with_switches`, equal to ``F.max_unpool2d(y, idx, 2, 2, output_size=size)``.

    ``size`` is the pre-pool (H, W); it defaults to twice the pooled size, as
    ``max_unpool2d`` without ``output_size`` does.
    """
    oh, ow = y.shape[-2:]
    h, w = size if size is not None else (2 * oh, 2 * ow)
    yp = F.pad(y, (0, 1, 0, 1), value=0.0)
    cp = F.pad(code, (0, 1, 0, 1), value=-1.0)
    zero = torch.zeros_like(y)
    phases = {}
    for phase, windows in _PHASE_WINDOWS.items():
        out = zero
        for di, dj, k in windows:
            yw = yp[..., di : di + oh, dj : dj + ow]
            cw = cp[..., di : di + oh, dj : dj + ow]
            out = torch.where(cw == k, yw, out)
        phases[phase] = out
    # Interleave the four phases: (..., oh, ow) x 4 -> (..., 2*oh, 2*ow).
    top = torch.stack((phases[0, 0], phases[0, 1]), dim=-1)  # (..., oh, ow, 2)
    bottom = torch.stack((phases[1, 0], phases[1, 1]), dim=-1)
    full = torch.stack((top, bottom), dim=-3)  # (..., oh, 2, ow, 2)
    full = full.reshape(*y.shape[:-2], 2 * oh, 2 * ow)
    return full[..., :h, :w]


class SwitchPool(nn.Module):
    """The pool half of a pool/unpool pair; returns (pooled, switches)."""

    def __init__(self, mode: UnpoolMode = "native") -> None:
        super().__init__()
        if mode not in ("native", "portable"):
            raise ValueError(f"unpool mode must be 'native' or 'portable', not {mode!r}")
        self.mode = mode

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mode == "native":
            return F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
        return pool_with_switches(x)


def unpool(y: Tensor, switches: Tensor, mode: UnpoolMode) -> Tensor:
    """The unpool half: scatter ``y`` back to twice its size at the switches."""
    if mode == "native":
        return F.max_unpool2d(y, switches, kernel_size=2, stride=2)
    return unpool_with_switches(y, switches)
