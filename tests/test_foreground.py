"""The foreground track's colours (``--fg-out``, ``matte --fg``): the frame graph's fourth output."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from p3m_live.backends import open_backend
from p3m_live.export import require_tensorrt_ops
from p3m_live.graph import (
    FrameGraph,
    GraphSpec,
    decode_frame,
    downscale,
    estimate_foreground,
    foreground_params,
    resize,
    rgb_to_yuv,
)
from p3m_live.spec import rgb_to_planes
from tests.test_graph import TrueMatte

H, W = 96, 128


@pytest.fixture(scope="module")
def portrait(portrait_paths) -> tuple[np.ndarray, torch.Tensor]:
    """The first shared portrait at W x H, RGB, and its official matte (1, 1, H, W) in [0, 1]."""
    img, matte = portrait_paths[0]
    rgb = cv2.resize(cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB), (W, H), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(cv2.imread(str(matte), cv2.IMREAD_GRAYSCALE), (W, H), interpolation=cv2.INTER_AREA)
    return rgb, torch.from_numpy(alpha).float()[None, None] / 255.0


def _outputs(spec: GraphSpec, truth: torch.Tensor, frame: np.ndarray) -> list[np.ndarray]:
    graph = FrameGraph(TrueMatte(truth), spec).eval()
    with torch.inference_mode():
        outs = graph(torch.from_numpy(frame)[None], torch.tensor([[0, 177, 64]], dtype=torch.uint8),
                     torch.full(spec.state_shape, -1.0))  # fmt: skip
    return [o.numpy() for o in outs]


def test_the_track_is_the_full_estimate_with_opaque_pixels_exact(portrait):
    """Blur fusion from the matte, rounded to 8 bits, and the frame's own colours wherever
    the alpha output is 255 (the estimate there is the frame's colour only to within float
    rounding, and an alpha just under 1 still rounds to 255)."""
    rgb, truth = portrait
    spec = GraphSpec(H, W, "rgb", "rgb", model_short_side=64, background="color", temporal="off",
                     upsampler="bilinear", foreground="frame", foreground_track=True)  # fmt: skip
    _, alpha_u8, _, track = _outputs(spec, truth, rgb)
    assert track.shape == (1, H, W, 3) and track.dtype == np.uint8
    alpha = resize(downscale(truth, spec.model_hw), (H, W))  # what the graph's bilinear upsampler makes
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    want = estimate_foreground(img, alpha, *foreground_params(H, W))[0].permute(1, 2, 0).numpy()
    want = np.clip(np.round(want * 255), 0, 255).astype(np.uint8)
    opaque, soft = alpha_u8[0] == 255, (alpha_u8[0] > 0) & (alpha_u8[0] < 255)
    assert opaque.any() and soft.sum() > 100
    assert np.array_equal(track[0][opaque], rgb[opaque])
    assert np.abs(track[0][soft].astype(int) - want[soft]).max() <= 1
    assert np.abs(track[0][soft].astype(int) - rgb[soft]).mean() > 2  # the old room's colour taken out
    # A composite that estimates the colours too hands its estimate over: the same track.
    assert np.array_equal(_outputs(spec.with_(foreground="estimate"), truth, rgb)[3], track)


def test_the_track_takes_the_old_background_out_of_a_soft_edge():
    """A red person with a soft edge shot over blue (the true matte in place of the network,
    at the frame's own size): the track takes the blue out of the edge."""
    h, w = 64, 96
    alpha = np.tile(np.clip((np.arange(w) - 45) * 64, 0, 255).astype(np.uint8), (h, 1))  # a 4-pixel soft edge
    a = alpha[..., None] / 255.0
    shot = (a * (220, 30, 30) + (1 - a) * (20, 40, 230)).round().astype(np.uint8)
    spec = GraphSpec(h, w, "rgb", "rgb", model_short_side=64, background="color", temporal="off",
                     upsampler="bilinear", foreground="frame", foreground_track=True)  # fmt: skip
    assert spec.model_hw == (h, w)
    _, alpha_out, _, track = _outputs(spec, torch.from_numpy(alpha).float()[None, None] / 255.0, shot)
    assert np.array_equal(alpha_out[0], alpha)
    soft = (alpha > 20) & (alpha < 235)
    assert track[0][..., 2][soft].mean() < 0.5 * shot[..., 2][soft].mean()  # the background's blue mostly gone


def test_the_track_is_the_same_however_the_composite_is_made(portrait):
    """On the YUV planes (the frame's colours, the quick estimate) or in RGB (the full
    estimate), the track is the same for the same alpha; and asking for it changes nothing else. Its YUV
    chroma is upsampled smoothly, so an opaque pixel is the frame's colour as a bilinear
    chroma upsampling gives it (smoother than the composite's repeated chroma)."""
    rgb, truth = portrait
    frame = rgb_to_planes(rgb[None])[0]
    base = GraphSpec(
        H, W, "i420", "i420", model_short_side=64, background="color", temporal="off", upsampler="bilinear"
    )  # fmt: skip (the paths' guided fits differ; the track is from the alpha)
    tracks = []
    for changes in ({"foreground": "frame"}, {"foreground": "quick"}, {"foreground": "estimate", "planes": False}):
        spec = base.with_(**changes)
        *outs, track = _outputs(spec.with_(foreground_track=True), truth, frame)
        without = _outputs(spec, truth, frame)
        assert len(without) == 3 and all(np.array_equal(a, b) for a, b in zip(outs, without))
        tracks.append(track)
    assert all(np.array_equal(t, tracks[0]) for t in tracks[1:])
    decoded = decode_frame(torch.from_numpy(frame)[None], "i420", smooth_chroma=True)[0].permute(1, 2, 0).numpy()
    decoded = np.clip(np.round(decoded * 255), 0, 255).astype(np.uint8)
    opaque = _outputs(base.with_(foreground_track=True), truth, frame)[1][0] == 255
    assert np.array_equal(tracks[0][0][opaque], decoded[opaque])
    smooth = decode_frame(torch.from_numpy(frame)[None], "i420", smooth_chroma=True)
    blocky = decode_frame(torch.from_numpy(frame)[None], "i420")
    roughness = [float(rgb_to_yuv(x)[1].diff(n=2, dim=-1).abs().mean()) for x in (smooth, blocky)]
    assert roughness[0] < 0.5 * roughness[1]  # no steps every second pixel


def test_the_track_exports_and_runs_on_onnxruntime(seed32_ckpt, portrait_paths, tmp_path):
    """The track is an output of the exported graph: it passes TensorRT's op check (FP16
    too), and ONNX Runtime's agrees with PyTorch's (within a level, but where the random
    network's near-tied logits flip, as for the alpha: tests/backends)."""
    from p3m_live.backends.onnxruntime_backend import export_frame_graph
    from tests.media import portrait_i420

    spec = GraphSpec(H, W, "i420", "i420", model_short_side=64, background="image", foreground_track=True)
    report = require_tensorrt_ops(export_frame_graph(spec.with_(precision="fp16"), seed32_ckpt, tmp_path / "t.onnx"))
    assert report.ok
    frame = portrait_i420(portrait_paths[1][0], W, H)
    bg = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    tracks = []
    for name in ("torch", "onnxruntime"):
        with open_backend(name, spec, seed32_ckpt) as be:
            be.set_background(bg)
            composite, alpha, track = be.process(frame)
            assert track.shape == (1, H, W, 3)
            tracks.append(track.astype(int))
    diff = np.abs(tracks[0] - tracks[1])
    assert (diff > 1).mean() <= 1e-2 and np.median(diff) == 0
