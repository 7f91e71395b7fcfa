"""Matting metrics on float arrays in [0, 1], as the official P3M evaluation defines them.

SAD = sum |pred - gt| / 1000; MSE and MAD per pixel; Grad: gradient magnitudes
from Gaussian first-derivative filters (sigma 1.4), squared difference, summed,
/ 10; Conn: connectivity error with thresholds in steps of 0.1, the largest
common 4-connected component, phi = 1 - d * [d >= 0.15], summed, / 1000. Each
takes an optional ``mask`` (for example a trimap's unknown band) that restricts
the sum; MSE and MAD then average over the mask's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def _mask(shape: tuple[int, ...], mask: np.ndarray | None) -> np.ndarray:
    return np.ones(shape, bool) if mask is None else mask.astype(bool)


def sad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    m = _mask(gt.shape, mask)
    return float(np.abs(pred - gt)[m].sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    m = _mask(gt.shape, mask)
    return float(np.square(pred - gt)[m].sum() / max(1, m.sum()))


def mad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    m = _mask(gt.shape, mask)
    return float(np.abs(pred - gt)[m].sum() / max(1, m.sum()))


def _gaussian_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Smoothing and first-derivative kernels, as scipy.ndimage builds them (radius 4 sigma)."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * x * x / (sigma * sigma))
    phi /= phi.sum()
    return phi, -x / (sigma * sigma) * phi


def gradient_magnitude(a: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """|grad a| from Gaussian derivative filters, mirror-reflected edges (scipy's 'reflect')."""
    smooth, deriv = _gaussian_kernels(sigma)
    a = a.astype(np.float64)
    # sepFilter2D correlates: flip the (odd) derivative kernel to convolve, as scipy does.
    gy = cv2.sepFilter2D(a, cv2.CV_64F, smooth, deriv[::-1].copy(), borderType=cv2.BORDER_REFLECT)
    gx = cv2.sepFilter2D(a, cv2.CV_64F, deriv[::-1].copy(), smooth, borderType=cv2.BORDER_REFLECT)
    return np.sqrt(gx * gx + gy * gy)


def gradient_error(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, sigma: float = 1.4) -> float:
    err = np.square(gradient_magnitude(pred, sigma) - gradient_magnitude(gt, sigma))
    return float(err[_mask(gt.shape, mask)].sum() / 10.0)


def connectivity_error(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, step: float = 0.1) -> float:
    """Connectivity error: how far each pixel is from the level at which it stays
    connected to the largest common 4-connected foreground component."""
    thresholds = np.arange(0.0, 1.0 + step, step)
    level = np.full(gt.shape, -1.0)
    for i in range(1, len(thresholds)):
        both = ((pred >= thresholds[i]) & (gt >= thresholds[i])).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(both, connectivity=4)
        if n <= 1:
            continue
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        lost = (level == -1) & (labels != largest)
        level[lost] = thresholds[i - 1]
    level[level == -1] = 1.0
    d_pred, d_gt = pred - level, gt - level
    phi_pred = 1.0 - d_pred * (d_pred >= 0.15)
    phi_gt = 1.0 - d_gt * (d_gt >= 0.15)
    return float(np.abs(phi_pred - phi_gt)[_mask(gt.shape, mask)].sum() / 1000.0)


def trimap_sad_mse_mad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> tuple[float, float, float]:
    """SAD-T, MSE-T, MAD-T as the official evaluation computes them: the prediction is set to
    the trimap's certain values (255 -> 1, 0 -> 0), then the SAD is summed over the whole
    image (/1000) and MSE and MAD are divided by the number of unknown (128) pixels."""
    p = np.array(pred, dtype=np.float64)
    p[trimap == 255] = 1.0
    p[trimap == 0] = 0.0
    unknown = float((trimap == 128).sum())
    if unknown == 0:  # the official fallback: everything that is neither 0 nor 255
        unknown = float(trimap.size - (trimap == 255).sum() - (trimap == 0).sum())
    diff = p - gt
    return (
        float(np.abs(diff).sum() / 1000.0),
        float(np.square(diff).sum() / unknown) if unknown else 0.0,
        float(np.abs(diff).sum() / unknown) if unknown else 0.0,
    )


def sad_fg_bg(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> tuple[float, float]:
    """SAD in the trimap's foreground (255) and background (0), /1000 each."""
    diff = np.abs(pred - gt)
    return float(diff[trimap == 255].sum() / 1000.0), float(diff[trimap == 0].sum() / 1000.0)


# ---------------------------------------------------------------- video


def dtssd(pred: np.ndarray, gt: np.ndarray) -> float:
    """dtSSD (Erofeev et al., 2015): how far the prediction's frame-to-frame change is from the
    truth's, sqrt(mean over pixels of ((p_t - p_t-1) - (g_t - g_t-1))^2), averaged over t >= 1.
    ``pred`` and ``gt`` are (T, H, W) in [0, 1]. (Some papers report it times 100.)"""
    if pred.shape != gt.shape or pred.ndim != 3 or len(pred) < 2:
        raise ValueError("dtssd needs two (T, H, W) sequences of the same shape with T >= 2")
    d = np.diff(pred.astype(np.float64), axis=0) - np.diff(gt.astype(np.float64), axis=0)
    return float(np.mean(np.sqrt(np.mean(d * d, axis=(1, 2)))))


def gt_flow(gt0: np.ndarray, gt1: np.ndarray) -> np.ndarray:
    """Integer motion (dy, dx) of the true alpha from one frame to the next (Farneback flow on
    the mattes, rounded), the motion MESSDdt follows."""
    a0, a1 = (np.clip(g * 255.0, 0, 255).astype(np.uint8) for g in (gt0, gt1))
    flow = cv2.calcOpticalFlowFarneback(a0, a1, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # (H, W, (dx, dy))
    return np.rint(flow[..., ::-1]).astype(np.int64)


def messddt(pred: np.ndarray, gt: np.ndarray, flows: list[np.ndarray] | None = None) -> float:
    """MESSDdt (Erofeev et al., 2015): the change of the squared error along the true motion,
    mean over pixels of |e_t(p)^2 - e_t+1(p + flow)^2|, averaged over t. ``flows`` (one (H, W, 2)
    integer (dy, dx) field per step) default to :func:`gt_flow` of the truth."""
    if pred.shape != gt.shape or pred.ndim != 3 or len(pred) < 2:
        raise ValueError("messddt needs two (T, H, W) sequences of the same shape with T >= 2")
    t, h, w = gt.shape
    err = np.square(pred.astype(np.float64) - gt.astype(np.float64))
    yy, xx = np.mgrid[0:h, 0:w]
    values = []
    for i in range(t - 1):
        f = flows[i] if flows is not None else gt_flow(gt[i], gt[i + 1])
        y1 = np.clip(yy + f[..., 0], 0, h - 1)
        x1 = np.clip(xx + f[..., 1], 0, w - 1)
        values.append(np.mean(np.abs(err[i] - err[i + 1][y1, x1])))
    return float(np.mean(values))
