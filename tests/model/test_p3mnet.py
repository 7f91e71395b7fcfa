"""P3M-Net reproduces the official network's outputs for the seed-32 checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from p3m_live.model import P3MNet, fuse, load_p3mnet
from tests.conftest import make_checkpoint

NAMES = ("global", "local", "fusion", "side2", "side1", "side0")


@pytest.mark.parametrize("variant", ["p3m_native", "p3m_portable"])
@pytest.mark.parametrize("size", ["64x64", "96x128"])
def test_reproduces_official_outputs(variant, size, seed32_ref, request):
    model = request.getfixturevalue(variant)
    x = torch.from_numpy(seed32_ref[f"{size}_input_normalized"])
    with torch.no_grad():
        outs = model(x)
    for name, out in zip(NAMES, outs):
        ref = seed32_ref[f"{size}_{name}"]
        assert out.shape == ref.shape, name
        err = np.abs(out.numpy() - ref).max()
        tol = 1e-4 if name in ("local", "fusion") else 1e-4 * np.abs(ref).max()
        assert err <= tol, (name, err, tol)


def test_other_seed_and_sizes_portable_equals_native(tmp_path):
    ckpt = make_checkpoint(7, tmp_path / "seed7.pth")
    native = load_p3mnet(ckpt, unpool="native")
    portable = load_p3mnet(ckpt, unpool="portable")
    g = torch.Generator().manual_seed(0)
    for h, w in ((32, 96), (160, 64)):
        x = torch.randn(2, 3, h, w, generator=g)
        with torch.no_grad():
            a, b = native(x), portable(x)
        assert a.semantic.shape == (2, 3, h, w) and a.fused.shape == (2, 1, h, w)
        for name, u, v in zip(NAMES, a, b):
            assert torch.equal(u, v), (h, w, name)


def test_fusion_rule():
    # classes: 0 background -> 0, 1 unknown -> detail, 2 foreground -> 1; ties pick the lower class
    semantic = torch.tensor([[5.0, 0, 0], [0, 5, 0], [0, 0, 5], [3, 3, 0], [0, 3, 3]]).T.reshape(1, 3, 1, 5)
    detail = torch.full((1, 1, 1, 5), 0.25)
    assert fuse(semantic, detail).flatten().tolist() == [0.0, 0.25, 1.0, 0.0, 0.25]


def test_parameter_count_matches_the_paper():
    n = sum(p.numel() for p in P3MNet().parameters())
    classifier = 512 * 1000 + 1000  # resnet.fc, in the release but unused (and not built here)
    assert 39.45e6 < n + classifier < 39.55e6  # the paper's 39.5 M
