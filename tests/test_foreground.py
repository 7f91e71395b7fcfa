"""The foreground track's colours, made beside the frame graph on the run's device."""

from __future__ import annotations

import numpy as np
import torch

from p3m_live.foreground import estimated_foreground
from p3m_live.graph import estimate_foreground, foreground_params


def test_the_track_is_the_graph_estimate_with_opaque_pixels_exact():
    """The graph's own blur fusion, rounded to 8 bits; where alpha is 255 the frame's colours
    exactly. Asked for a GPU where there is none, it is made on the CPU, the same."""
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    alpha = np.zeros((48, 64), np.uint8)
    alpha[:, 20:44] = np.linspace(0, 255, 24).astype(np.uint8)
    alpha[:, 44:] = 255
    got = estimated_foreground(rgb, alpha)
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    want = estimate_foreground(img, torch.from_numpy(alpha)[None, None].float() / 255.0, *foreground_params(48, 64))
    want = np.clip(np.round(want[0].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
    soft = (alpha > 0) & (alpha < 255)
    assert np.abs(got[soft].astype(int) - want[soft]).max() <= 1 and not np.array_equal(got[soft], rgb[soft])
    assert np.array_equal(got[alpha == 255], rgb[alpha == 255])
    if not torch.cuda.is_available():
        assert np.array_equal(estimated_foreground(rgb, alpha, "cuda"), got)
