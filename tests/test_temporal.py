"""The temporal filters' state handling: first frame, still and moving regions, scene cuts, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from p3m_live.graph import ADAPTIVE_MOVING, ADAPTIVE_STILL, FrameGraph, GraphSpec


class NoNetwork(torch.nn.Module):
    """Only ``smooth`` is exercised here; the network is never called."""

    def matte(self, rgb):  # pragma: no cover
        raise AssertionError


def _graph(temporal: str) -> FrameGraph:
    return FrameGraph(NoNetwork(), GraphSpec(64, 64, model_short_side=32, temporal=temporal))


def _fresh(g: FrameGraph) -> torch.Tensor:
    return torch.full(g.spec.state_shape, -1.0)


def test_first_frame_takes_the_new_alpha_and_keeps_luma():
    g = _graph("adaptive")
    a = torch.rand(1, 1, 32, 32)
    luma = torch.rand(1, 1, 32, 32)
    out, state = g.smooth(a, _fresh(g), luma)
    assert torch.equal(out, a) and state.shape == (1, 2, 32, 32)
    assert torch.equal(state[:, :1], a) and torch.equal(state[:, 1:], luma)


def test_still_regions_are_smoothed_moving_ones_follow():
    g = _graph("adaptive")
    luma0 = torch.full((1, 1, 32, 32), 0.5)
    a0, a1 = torch.zeros(1, 1, 32, 32), torch.ones(1, 1, 32, 32)
    _, state = g.smooth(a0, _fresh(g), luma0)
    luma1 = luma0.clone()
    luma1[..., :, 20:] += 2 * ADAPTIVE_MOVING  # the right part of the picture moved
    out, _ = g.smooth(a1, state, luma1)
    assert out[0, 0, 5, 5].item() == pytest.approx(ADAPTIVE_STILL)  # still: mostly the old alpha
    assert out[0, 0, 5, 28].item() == pytest.approx(1.0)  # moving: the new alpha, no trail


def test_scene_cut_starts_afresh():
    """Most of the picture changes at once: even the part that happens to look the same
    takes the new alpha (a new shot), instead of being blended with the old one."""
    g = _graph("adaptive")
    _, state = g.smooth(torch.zeros(1, 1, 32, 32), _fresh(g), torch.zeros(1, 1, 32, 32))
    luma = torch.ones(1, 1, 32, 32)
    luma[..., :, :8] = 0.0  # a quarter of the frame looks as before
    out, _ = g.smooth(torch.ones(1, 1, 32, 32), state, luma)
    assert torch.equal(out, torch.ones(1, 1, 32, 32))


@pytest.mark.parametrize("temporal", ["ema", "adaptive"])
def test_a_batch_equals_frame_by_frame(temporal):
    g = _graph(temporal)
    gen = torch.Generator().manual_seed(0)
    alphas, lumas = torch.rand(4, 1, 32, 32, generator=gen), torch.rand(4, 1, 32, 32, generator=gen) * 0.1
    batch_out, batch_state = g.smooth(alphas, _fresh(g), lumas)
    state, singles = _fresh(g), []
    for t in range(4):
        o, state = g.smooth(alphas[t : t + 1], state, lumas[t : t + 1])
        singles.append(o)
    assert torch.allclose(batch_out, torch.cat(singles)) and torch.allclose(batch_state, state)


def test_ema_weight():
    g = _graph("ema")
    _, state = g.smooth(torch.zeros(1, 1, 32, 32), _fresh(g), torch.zeros(1, 1, 32, 32))
    out, _ = g.smooth(torch.ones(1, 1, 32, 32), state, torch.zeros(1, 1, 32, 32))
    assert out.mean().item() == pytest.approx(g.spec.ema_weight)


def test_adaptive_state_survives_export_and_reset(seed32_ckpt, portrait_paths):
    """Both backends run the adaptive filter alike; reset() forgets the history."""
    import cv2

    from p3m_live.backends import open_backend

    spec = GraphSpec(96, 128, "rgb", "rgb", model_short_side=64, background="color", temporal="adaptive")
    imgs = [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (128, 96)) for p, _ in portrait_paths[:2]]
    results = {}
    for name in ("torch", "onnxruntime"):
        with open_backend(name, spec, seed32_ckpt) as be:
            be.set_background((0, 0, 0))
            first = be.process(imgs[0])[1]
            second = be.process(imgs[0])[1]  # the same frame again: still, smoothed towards itself
            be.reset()
            again = be.process(imgs[0])[1]
            results[name] = (first, second, again)
            assert be.state.shape == spec.state_shape
    for a, b in zip(results["torch"], results["onnxruntime"]):
        assert np.abs(a.astype(int) - b).mean() < 0.5
    first, second, again = results["torch"]
    assert np.array_equal(first, again)  # reset: exactly the first frame's result
    assert np.abs(second.astype(int) - first).max() <= 1  # a still frame smoothed to itself
