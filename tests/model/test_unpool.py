"""The portable pool/unpool pair equals the CPU max_pool2d/max_unpool2d bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from p3m_live.model.unpool import pool_with_switches, unpool_with_switches


def _inputs(seed: int, h: int, w: int, kind: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "random":
        return torch.randn(2, 3, h, w, generator=g)
    if kind == "relu":  # many exact zeros: ties inside windows and shared argmaxes
        return torch.relu(torch.randn(2, 3, h, w, generator=g))
    if kind == "zeros":
        return torch.zeros(2, 3, h, w)
    if kind == "few_levels":  # heavy ties with non-zero values
        return torch.randint(0, 3, (2, 3, h, w), generator=g).float()
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["random", "relu", "zeros", "few_levels"])
def test_matches_native_on_many_sizes(kind):
    for seed, (h, w) in enumerate([(1, 1), (2, 2), (3, 5), (7, 7), (8, 6), (9, 12), (16, 16), (31, 33)]):
        x = _inputs(seed, h, w, kind)
        pooled, idx = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
        ours, code = pool_with_switches(x)
        assert torch.equal(ours, pooled), (h, w)
        y = torch.randn(pooled.shape, generator=torch.Generator().manual_seed(seed + 100))
        ref = F.max_unpool2d(y, idx, 2, stride=2, output_size=(h, w))
        got = unpool_with_switches(y, code, (h, w))
        assert torch.equal(got, ref), (h, w, kind)


def test_overlap_last_window_wins():
    # A single peak at (1, 1) is the argmax of all four windows that cover it;
    # max_unpool2d keeps the value of the last window in raster order.
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 5.0
    _, code = pool_with_switches(x)
    y = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    out = unpool_with_switches(y, code)
    assert out[0, 0, 1, 1] == 4.0
    assert out.sum() == 4.0


def test_tie_goes_to_first_position():
    x = torch.ones(1, 1, 2, 2)  # one window (with padding) over four equal values
    pooled, code = pool_with_switches(x[..., :1, :1].expand(1, 1, 1, 1).contiguous())
    assert code.item() == 4  # the only valid position is the window centre
    _, code = pool_with_switches(x)
    # window (0, 0) covers rows -1..1, cols -1..1: first valid position is (0, 0) = code 4
    assert code[0, 0, 0, 0].item() == 4


def test_default_size_is_twice_the_pooled_size():
    x = torch.randn(1, 2, 8, 10)
    _, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    _, code = pool_with_switches(x)
    y = torch.randn(1, 2, 4, 5)
    assert torch.equal(unpool_with_switches(y, code), F.max_unpool2d(y, idx, 2, 2))
