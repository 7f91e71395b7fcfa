"""The foreground track's colours (``--fg-out``): the frame graph's estimate for one frame.

The track is made beside the frame graph, from the frame and the alpha the graph returned.
On a GPU run the estimate runs on the run's own device: on two CPU cores it takes about
100 ms a 1080p frame, which would hold a GPU run to 10 frames a second.
"""

from __future__ import annotations

import numpy as np


def estimated_foreground(rgb: np.ndarray, alpha: np.ndarray, device: str = "cpu") -> np.ndarray:
    """RGB uint8 (H, W, 3) and alpha uint8 (H, W) -> the person's colours, uint8 (H, W, 3),
    by :func:`p3m_live.graph.estimate_foreground` on ``device`` (the CPU where CUDA is not
    there). Opaque pixels keep their exact colours."""
    import torch

    from .graph import estimate_foreground, foreground_params

    if not torch.cuda.is_available():
        device = "cpu"
    h, w = alpha.shape
    img = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None].float() / 255.0
    a = torch.from_numpy(np.ascontiguousarray(alpha)).to(device)[None, None].float() / 255.0
    with torch.inference_mode():
        fg = estimate_foreground(img, a, *foreground_params(h, w))
        out = torch.clamp(torch.round(fg[0].permute(1, 2, 0) * 255.0), 0, 255).to(torch.uint8).cpu().numpy()
    return np.where(alpha[..., None] == 255, rgb, out)
