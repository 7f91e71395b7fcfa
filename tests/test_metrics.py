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
