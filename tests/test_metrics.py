"""Matting metrics on hand-computed cases, and Grad against SciPy's Gaussian derivatives."""

from __future__ import annotations

import numpy as np
import pytest

from p3m_live.metrics import connectivity_error, gradient_error, gradient_magnitude, mad, mse, sad


def test_sad_mse_mad_by_hand():
    gt = np.zeros((10, 20))
    pred = np.zeros((10, 20))
    pred[:5, :4] = 0.5  # 20 pixels off by 0.5
    assert sad(pred, gt) == pytest.approx(10 / 1000)
    assert mse(pred, gt) == pytest.approx(20 * 0.25 / 200)
    assert mad(pred, gt) == pytest.approx(10 / 200)
    band = np.zeros((10, 20), bool)
    band[:5, :8] = True  # 40 pixels, half of them wrong
    assert sad(pred, gt, band) == pytest.approx(10 / 1000)
    assert mse(pred, gt, band) == pytest.approx(20 * 0.25 / 40)
    assert mad(pred, gt, band) == pytest.approx(10 / 40)


def test_gradient_matches_scipy():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    a = rng.random((40, 50))
    gx = scipy_ndimage.gaussian_filter(a, 1.4, order=[1, 0])
    gy = scipy_ndimage.gaussian_filter(a, 1.4, order=[0, 1])
    assert np.abs(np.hypot(gx, gy) - gradient_magnitude(a)).max() < 1e-12


def test_gradient_error_cases():
    flat = np.full((20, 20), 0.3)
    assert gradient_magnitude(flat).max() < 1e-12
    step = np.zeros((20, 20))
    step[:, 10:] = 1.0
    assert gradient_error(step, step) == 0.0
    err = gradient_error(flat, step)  # a flat prediction misses the whole edge
    assert err == pytest.approx(np.square(gradient_magnitude(step)).sum() / 10)
    assert err > 0


def test_connectivity_by_hand():
    gt = np.array([[1.0, 1.0, 0.0, 0.0, 0.0]])
    # An isolated pixel at full opacity, cut off from the largest common component:
    # its level drops to 0, d = 1 >= 0.15, phi = 0 against gt's 1.
    assert connectivity_error(np.array([[1.0, 1.0, 0.0, 0.0, 1.0]]), gt) == pytest.approx(1 / 1000)
    assert connectivity_error(np.array([[1.0, 1.0, 0.0, 0.0, 0.5]]), gt) == pytest.approx(0.5 / 1000)
    # Below the 0.15 tolerance an island costs nothing.
    assert connectivity_error(np.array([[1.0, 1.0, 0.0, 0.0, 0.1]]), gt) == 0.0
    assert connectivity_error(gt, gt) == 0.0
    # 4-connectivity: a diagonal neighbour is its own component. With gt 1 and pred 0.1 there,
    # it is cut off at the first level (level 0, d_pred 0.1 < 0.15, phi 1 vs 0): error 1/1000;
    # under 8-connectivity it would stay connected until 0.2 and cost 0.9/1000.
    gt2 = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    pred2 = gt2.copy()
    pred2[2, 2] = 0.1
    assert connectivity_error(pred2, gt2) == pytest.approx(1 / 1000)
    only_band = np.zeros_like(gt2, bool)
    assert connectivity_error(pred2, gt2, only_band) == 0.0


def test_dtssd_hand_computed():
    from p3m_live.metrics import dtssd

    gt = np.zeros((3, 2, 2))
    pred = np.zeros((3, 2, 2))
    pred[1, 0, 0] = 0.5  # a flicker up then down on one of four pixels
    # step 1: d = 0.5 on one pixel -> sqrt(0.25 / 4) = 0.25; step 2: d = -0.5 -> 0.25
    assert dtssd(pred, gt) == pytest.approx(0.25)
    assert dtssd(gt, gt) == 0.0
    moving = np.stack([np.roll(np.eye(4), k, axis=1) for k in range(3)])
    assert dtssd(moving, moving) == 0.0  # following the truth's motion costs nothing


def test_messddt_follows_the_motion():
    from p3m_live.metrics import messddt

    t, h, w = 3, 4, 6
    gt = np.zeros((t, h, w))
    pred = np.zeros((t, h, w))
    for i in range(t):
        gt[i, :, i : i + 2] = 1.0  # a bar moving right by one pixel a frame
        pred[i, :, i : i + 2] = 1.0
        pred[i, 0, i] = 0.5  # the same error, carried along with the motion
    flows = [np.stack([np.zeros((h, w), int), np.ones((h, w), int)], axis=-1)] * (t - 1)
    assert messddt(pred, gt, flows) == pytest.approx(0.0)
    still = [np.zeros((h, w, 2), int)] * (t - 1)
    # Without the motion, the error seems to jump: 2 pixels of |0.25 - 0| per 24 pixels.
    assert messddt(pred, gt, still) == pytest.approx(2 * 0.25 / 24)


def test_video_metrics_refuse_bad_shapes():
    from p3m_live.metrics import dtssd, messddt

    with pytest.raises(ValueError):
        dtssd(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError):
        messddt(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
