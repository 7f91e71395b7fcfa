"""The frame graph against the step-by-step computation, pixel formats, state, precision."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from p3m_live.graph import (
    FrameGraph,
    GraphSpec,
    blur_background,
    blur_size,
    composite_planes,
    decode_frame,
    downscale,
    encode_frame,
    encode_planes,
    frame_shape,
    guided_upsample,
    guided_upsample_planes,
    model_size,
    plane_codes,
    resize,
    rgb_to_yuv,
    yuv_luma,
    yuv_planes,
)
from p3m_live.spec import rgb_to_planes

H, W = 192, 256  # real portraits, scaled down so the CPU suite stays fast
SHORT = 128


@pytest.fixture(scope="module")
def portraits(portrait_paths):
    """Two real portraits (RGB uint8, H x W)."""
    out = []
    for img_path, _ in portrait_paths[:2]:
        img = cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB)
        out.append(cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA))
    return out


def _graph(net, **kw) -> FrameGraph:
    spec = GraphSpec(
        H, W, **{"in_format": "rgb", "out_format": "rgb", "model_short_side": SHORT, "foreground": "frame", **kw}
    )
    return FrameGraph(net, spec).eval()


def _run(graph: FrameGraph, frame: np.ndarray, background=None, state=None):
    ins = graph.example_inputs()
    ins["frame"] = torch.from_numpy(frame)
    if background is not None:
        ins["background"] = torch.from_numpy(background)
    if state is not None:
        ins["state_alpha"] = state
    with torch.no_grad():
        return graph(*ins.values())


@pytest.mark.parametrize("upsampler", ["bilinear", "guided"])
def test_graph_equals_step_by_step(p3m_native, portraits, upsampler):
    graph = _graph(p3m_native, temporal="off", upsampler=upsampler)
    bg = np.random.default_rng(0).integers(0, 256, (1, H, W, 3), dtype=np.uint8)
    for img in portraits:
        comp, alpha, _ = _run(graph, img[None], bg)
        # Official preprocessing: RGB / 255, ImageNet mean/std; then the network and its fusion.
        rgb = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
        rgb_lo = downscale(rgb, model_size(H, W, SHORT))
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        with torch.no_grad():
            fused = p3m_native((rgb_lo - mean) / std).fused
        if upsampler == "guided":
            a = guided_upsample(fused, rgb_lo, rgb)
        else:
            a = F.interpolate(fused, size=(H, W), mode="bilinear", align_corners=False)
        ref_comp = a * rgb + (1 - a) * torch.from_numpy(bg).permute(0, 3, 1, 2).float() / 255.0
        ref_alpha = (a[0, 0] * 255).round().numpy()
        assert np.abs(alpha[0].numpy().astype(float) - ref_alpha).max() <= 1
        ref = (ref_comp[0].permute(1, 2, 0) * 255).round().numpy()
        assert np.abs(comp[0].numpy().astype(float) - ref).max() <= 1
        assert 0.05 < (alpha.numpy() > 127).mean() < 0.95  # a real matte, not a constant


def test_model_size_policy():
    assert model_size(1080, 1920) == (512, 896)
    assert model_size(720, 1280) == (512, 896)
    assert model_size(1920, 1080) == (896, 512)
    assert model_size(64, 64) == (64, 64)  # never resized beyond the frame
    for h, w in ((480, 640), (1080, 1920), (2160, 3840), (100, 37)):
        mh, mw = model_size(h, w)
        assert mh % 32 == 0 and mw % 32 == 0
        assert abs(mw / mh - w / h) / (w / h) < 0.12 or min(mh, mw) == 32


# ---------------------------------------------------------------- pixel formats


def _i420(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)


def _nv12(i420: np.ndarray, h: int, w: int) -> np.ndarray:
    n = h * w
    flat = i420.reshape(-1)
    u, v = flat[n : n + n // 4], flat[n + n // 4 :]
    return np.concatenate([flat[:n], np.stack([u, v], -1).reshape(-1)]).reshape(h * 3 // 2, w)


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
def test_yuv_decode_matches_opencv(portraits, fmt):
    img = portraits[0]
    i420 = _i420(img)
    yuv = i420 if fmt == "i420" else _nv12(i420, H, W)
    ours = decode_frame(torch.from_numpy(yuv)[None], fmt)[0].permute(1, 2, 0).numpy() * 255
    code = cv2.COLOR_YUV2RGB_I420 if fmt == "i420" else cv2.COLOR_YUV2RGB_NV12
    ref = cv2.cvtColor(yuv, code).astype(float)
    assert np.abs(np.clip(ours, 0, 255).round() - ref).max() <= 2


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
@pytest.mark.parametrize("size", [(H, W), (6, 10)])  # 6 rows: chroma planes do not fill whole rows
def test_yuv_round_trip(portraits, fmt, size):
    h, w = size
    img = np.ascontiguousarray(portraits[1][:h, :w])
    i420 = _i420(img)
    yuv = i420 if fmt == "i420" else _nv12(i420, h, w)
    t = torch.from_numpy(yuv)[None]
    back = encode_frame(decode_frame(t, fmt), fmt)
    assert back.shape == t.shape and back.dtype == torch.uint8
    assert (back.int() - t.int()).abs().max() <= 1


def test_packed_formats(portraits):
    img = torch.from_numpy(portraits[0])[None]
    rgb = decode_frame(img, "rgb")
    assert torch.equal(encode_frame(rgb, "rgb"), img)
    assert torch.equal(encode_frame(rgb, "bgr"), img.flip(-1))
    assert torch.equal(decode_frame(img.flip(-1).contiguous(), "bgr"), rgb)
    alpha = torch.full((1, 1, H, W), 0.5)
    rgba = encode_frame(rgb, "rgba", alpha)
    assert torch.equal(rgba[..., :3], img) and (rgba[..., 3] == 128).all()


def _yuv(img: np.ndarray, fmt: str) -> torch.Tensor:
    i420 = _i420(img)
    return torch.from_numpy(i420 if fmt == "i420" else _nv12(i420, *img.shape[:2]))[None]


def _real_matte(portrait_paths) -> torch.Tensor:
    """The first shared portrait's official matte at H x W, as (1, 1, H, W) in [0, 1]."""
    alpha = cv2.resize(
        cv2.imread(str(portrait_paths[0][1]), cv2.IMREAD_GRAYSCALE), (W, H), interpolation=cv2.INTER_AREA
    )
    return torch.from_numpy(alpha).float()[None, None] / 255.0


@pytest.mark.parametrize("fmt", ["i420", "nv12"])
def test_compositing_on_planes_equals_compositing_in_rgb(portraits, portrait_paths, fmt):
    """Over a colour the plane path is the RGB path's arithmetic rearranged: equal to the
    rounding. Over an image, the chroma weight (alpha's 2x2 mean) is an approximation where
    the image's chroma changes inside a 2x2 block: off by a level or two at a few edge pixels."""
    frame = _yuv(portraits[0], fmt)
    alpha = _real_matte(portrait_paths)
    luma, chroma = yuv_planes(frame, fmt)
    colour = torch.tensor([0.1, 0.8, 0.3]).view(1, 3, 1, 1)
    image = torch.from_numpy(portraits[1]).permute(2, 0, 1)[None].float() / 255.0
    for bg, bg_luma, bg_chroma, worst, mean in [
        (colour, *rgb_to_yuv(colour), 1, 0.01),
        (image, rgb_to_yuv(image)[0], rgb_to_yuv(F.avg_pool2d(image, 2))[1], 12, 0.05),
    ]:
        ours = encode_planes(*composite_planes(alpha, luma, chroma, bg_luma, bg_chroma), fmt)
        ref = encode_frame(alpha * decode_frame(frame, fmt) + (1 - alpha) * bg, fmt)
        diff = (ours.int() - ref.int()).abs().float()
        assert diff.max() <= worst and diff.mean() <= mean, (diff.max(), diff.mean())


@pytest.mark.parametrize("matrix,full_range", [("bt601", False), ("bt709", True)])
def test_guided_upsampling_on_planes_is_as_good_as_in_rgb(portrait_paths, matrix, full_range):
    """The same fit applied to the planes' code values instead of full-resolution RGB, the
    chroma terms at half resolution: against the official mattes it does as well as the RGB
    path, and still far better than bilinear (4x upsampling, three shared portraits), in
    either matrix and range (their offsets and scales are folded into the coefficients)."""
    errors = {"rgb": 0.0, "planes": 0.0, "bilinear": 0.0}
    lo = model_size(H, W, 64)
    for img_path, alpha_path in portrait_paths[:3]:
        img = cv2.resize(
            cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB), (W, H), interpolation=cv2.INTER_AREA
        )
        truth = cv2.resize(cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE), (W, H), interpolation=cv2.INTER_AREA)
        truth = torch.from_numpy(truth).float()[None, None] / 255.0
        frame = torch.from_numpy(rgb_to_planes(img[None], matrix, full_range))
        luma, chroma = plane_codes(frame, "i420")
        rgb = decode_frame(frame, "i420", matrix, full_range)
        rgb_lo, alpha_lo = downscale(rgb, lo), downscale(truth, lo)
        for name, a in [
            ("rgb", guided_upsample(alpha_lo, rgb_lo, rgb)),
            ("planes", guided_upsample_planes(alpha_lo, rgb_lo, luma, chroma, matrix, full_range)),
            ("bilinear", F.interpolate(alpha_lo, size=(H, W), mode="bilinear", align_corners=False)),
        ]:
            errors[name] += float(((a - truth) ** 2).mean())
    assert errors["planes"] <= 1.05 * errors["rgb"] and errors["planes"] < 0.85 * errors["bilinear"], errors


@pytest.mark.parametrize("background", ["image", "mix"])
def test_plane_composite_stays_between_frame_and_background(p3m_native, background):
    """The plane path rounds its composite without clamping it (a blend cannot leave 0-255).
    Frames and backgrounds of extreme codes (0 and 255 in every plane, at random): every
    output code lies between the frame's and the background's at that pixel, so none has
    wrapped round, and the alpha is whole. (For "mix", the background is its image at full
    weight: the weight plane is 255.)"""
    rng = np.random.default_rng(5)
    spec = GraphSpec(H, W, "i420", "i420", model_short_side=SHORT, foreground="frame", background=background)
    g = FrameGraph(p3m_native, spec).eval()
    assert g.planar
    frame = rng.choice(np.array([0, 255], np.uint8), (1, H * 3 // 2, W))
    image = rng.choice(np.array([0, 255], np.uint8), (1, H * 3 // 2, W))
    bg = image if background == "image" else np.concatenate([image, np.full((1, H, W), 255, np.uint8)], 1)
    comp, alpha, _ = _run(g, frame, bg)
    out = comp.numpy().astype(int)
    lo, hi = np.minimum(frame, image).astype(int), np.maximum(frame, image).astype(int)
    assert ((out >= lo) & (out <= hi)).all()
    assert (out != lo).any() and (out != hi).any()  # (a blend, not one side or the other)
    a = alpha.numpy()
    assert a.min() >= 0 and a.max() <= 255 and len(np.unique(a)) > 2


class TrueMatte(torch.nn.Module):
    """A test double for the network: the true matte, at the model size, so that a
    composite's error comes from its colours alone."""

    def __init__(self, alpha: torch.Tensor) -> None:
        super().__init__()
        self.alpha = alpha

    def matte(self, rgb: torch.Tensor) -> torch.Tensor:
        return downscale(self.alpha, tuple(rgb.shape[-2:]))


@pytest.mark.parametrize("h,w,factor", [(H, W, 2), (720, 1280, 4)])
def test_quick_estimate_takes_the_old_room_out_of_the_edges(portrait_paths, h, w, factor):
    """Three portraits (smooth colours, their real mattes) filmed in front of one gradient
    and put in front of another through the whole planes graph, with the true matte: the
    quick estimate (made 2 times smaller, or 4 from 720p) lowers the composite's error in
    the edge band well below the frame's own colours, near the full estimate on RGB."""
    from p3m_live.graph import plane_estimate_factor
    from p3m_live.video.frames import planes_to_rgb

    assert plane_estimate_factor(h, w) == factor
    yy, xx = np.mgrid[0:h, 0:w]
    old = np.stack([0.2 + 0.6 * xx / w, 0.8 - 0.6 * yy / h, 0.3 + 0 * xx], -1)
    new = np.stack([0.9 + 0 * xx, 0.85 - 0.5 * xx / w, 0.2 + 0.6 * yy / h], -1)
    new8 = (new * 255 + 0.5).astype(np.uint8)
    errors: dict[str, float] = {"frame": 0.0, "quick": 0.0, "estimate": 0.0}
    for img_path, alpha_path in portrait_paths[:3]:
        rgb = cv2.resize(cv2.imread(str(img_path))[..., ::-1], (w, h), interpolation=cv2.INTER_AREA) / 255.0
        rgb = cv2.GaussianBlur(rgb, (0, 0), h / 48)  # the person's colours: smooth, with no old room in the hair
        alpha = cv2.resize(cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE), (w, h), interpolation=cv2.INTER_AREA)
        a = alpha[..., None] / 255.0
        shot = ((a * rgb + (1 - a) * old) * 255 + 0.5).astype(np.uint8)
        truth = a * rgb + (1 - a) * new
        band = (alpha > 5) & (alpha < 250)
        net = TrueMatte(torch.from_numpy(alpha).float()[None, None] / 255.0)
        for way in errors:
            spec = GraphSpec(h, w, "i420", "i420", model_short_side=SHORT, background="image", temporal="off",
                             foreground=way)  # fmt: skip
            g = FrameGraph(net, spec).eval()
            assert g.planar == (way != "estimate")
            comp, _, _ = _run(g, rgb_to_planes(shot[None]), rgb_to_planes(new8[None]) if g.planar else new8[None])
            out = planes_to_rgb(comp[0].numpy(), "i420", "bt601", False) / 255.0
            errors[way] += float(np.abs(out - truth)[band].mean())
    assert errors["quick"] < 0.85 * errors["frame"] and errors["quick"] < 1.2 * errors["estimate"], errors


def test_which_graphs_work_on_planes(p3m_native):
    def planar(**kw) -> bool:
        spec = GraphSpec(64, 96, **{"model_short_side": 32, "foreground": "frame", **kw})
        return FrameGraph(p3m_native, spec).planar

    assert planar(in_format="i420", out_format="i420") and planar(in_format="nv12", out_format="i420")
    assert not planar(in_format="i420", out_format="i420", foreground="estimate")  # needs RGB at full size
    assert planar(in_format="i420", out_format="i420", foreground="quick")
    assert not planar(in_format="rgb", out_format="i420", foreground="quick")  # (there: the full estimate)
    assert not planar(in_format="i420", out_format="i420", light_wrap=0.5)
    assert not planar(in_format="rgb", out_format="i420") and not planar(in_format="i420", out_format="rgba")


@pytest.mark.parametrize("background", ["blur", "color", "image"])
def test_plane_graph_composites_what_it_mattes(p3m_native, portraits, background):
    """End to end on the plane path: where alpha is 1 the frame's own luma comes out, where it
    is 0 the background's."""
    spec = GraphSpec(H, W, "i420", "i420", model_short_side=SHORT, foreground="frame", background=background)
    g = FrameGraph(p3m_native, spec).eval()
    assert g.planar
    image = rgb_to_planes(portraits[1][None])  # a planar graph takes its image as I420
    bg = {"color": np.array([[0, 177, 64]], np.uint8), "image": image, "blur": None}[background]
    comp, alpha, _ = _run(g, _i420(portraits[0])[None], bg)
    a = alpha[0].numpy()
    y_in, y_out = _i420(portraits[0])[:H].astype(int), comp[0].numpy()[:H].astype(int)
    assert (a == 255).any() and (a == 0).any()
    assert np.abs(y_out - y_in)[a == 255].max() <= 1
    if background == "color":
        assert np.abs(y_out[a == 0] - _i420(np.full((2, 2, 3), (0, 177, 64), np.uint8))[0, 0]).max() <= 1
    if background == "image":
        assert np.abs(y_out - _i420(portraits[1])[:H].astype(int))[a == 0].max() <= 1


def test_image_background_as_planes_is_the_graph_arithmetic():
    """rgb_to_planes, which converts a planar graph's image background once, is the graph's
    own luma and 2x2-mean chroma, and agrees with OpenCV where colour is flat over each 2x2
    block (OpenCV subsamples differently elsewhere)."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    for matrix in ("bt601", "bt709"):
        for full in (False, True):
            rgb = torch.from_numpy(image).float().permute(0, 3, 1, 2) / 255.0
            chroma = rgb_to_yuv(F.avg_pool2d(rgb, 2), matrix)[1]
            want = encode_planes(yuv_luma(rgb, matrix), chroma, "i420", matrix, full).numpy()
            got = rgb_to_planes(image, matrix, full)
            assert got.shape == want.shape and np.abs(got.astype(int) - want).max() <= 1
    blocks = np.repeat(np.repeat(image[0, :32, :48], 2, axis=0), 2, axis=1)
    got = rgb_to_planes(blocks[None])[0].astype(int)
    assert np.abs(got - cv2.cvtColor(blocks, cv2.COLOR_RGB2YUV_I420)).max() <= 1  # BT.601, limited


@pytest.mark.parametrize("in_fmt,out_fmt", [("i420", "nv12"), ("nv12", "rgba"), ("bgr", "i420")])
def test_graph_shapes_for_formats(p3m_native, in_fmt, out_fmt):
    spec = GraphSpec(64, 96, in_fmt, out_fmt, model_short_side=32, background="blur", batch=2)
    g = FrameGraph(p3m_native, spec)
    ins = g.example_inputs()
    assert list(ins) == ["frame", "state_alpha"]
    with torch.no_grad():
        comp, alpha, state = g(*ins.values())
    assert tuple(comp.shape) == frame_shape(out_fmt, 2, 64, 96) and comp.dtype == torch.uint8
    assert tuple(alpha.shape) == (2, 64, 96) and tuple(state.shape) == spec.state_shape == (1, 2, *spec.model_hw)


def test_bad_specs():
    with pytest.raises(ValueError, match="even"):
        GraphSpec(63, 96, "i420")
    with pytest.raises(ValueError, match="input format"):
        GraphSpec(64, 96, "rgba")


# ---------------------------------------------------------------- backgrounds and state


def test_color_and_blur_backgrounds(p3m_native, portraits):
    img = portraits[0][None]
    g = _graph(p3m_native, background="color", temporal="off")
    comp, alpha, _ = _run(g, img, np.array([[0, 255, 0]], dtype=np.uint8))
    bg_only = alpha[0].numpy() == 0
    assert bg_only.any()
    assert (comp[0].numpy()[bg_only] == [0, 255, 0]).all()
    g = _graph(p3m_native, background="blur", temporal="off")
    comp, alpha, _ = _run(g, img)
    # Where alpha is 0 the output is the blurred frame: smooth, and close to the frame's local mean.
    blurred = comp[0].numpy().astype(float)
    assert (
        np.abs(np.diff(blurred, axis=1))[bg_only[:, 1:]].mean()
        < np.abs(np.diff(img[0].astype(float), axis=1))[bg_only[:, 1:]].mean()
    )


class BrightIsPerson(torch.nn.Module):
    """A test double for the network: alpha 1 where the model-size frame is bright (a lit
    person), else 0, so the matte is known exactly."""

    def matte(self, rgb: torch.Tensor) -> torch.Tensor:
        return (rgb.mean(1, keepdim=True) > 0.5).float()


@pytest.mark.parametrize("in_format", ["rgb", "i420"])  # the RGB path, and the planes path
@pytest.mark.parametrize("strength", [16, 2])  # from the model's input, and (finer than it) the full frame
def test_the_blur_leaves_no_halo_of_the_person_around_them(in_format, strength):
    """A bright person on a dark room: next to them, the blurred room stays as dark as the
    room, where a blur of the whole frame would spread their light into a halo."""
    h, w = 128, 256  # (the model's input a quarter of it: the double's matte has exact edges)
    rgb = np.full((h, w, 3), 40, np.uint8)
    rgb[16:112, 64:192] = 235  # the person, wider than the blur's windows
    ring = np.zeros((h, w), bool)
    ring[6:122, 54:202] = True
    ring[12:116, 60:196] = False  # a band 4 to 10 pixels outside them
    frame = rgb if in_format == "rgb" else rgb_to_planes(rgb[None], "bt601", True)[0]
    spec = GraphSpec(h, w, in_format, in_format, model_short_side=32, background="blur", blur_strength=strength,
                     temporal="off", foreground="frame", upsampler="bilinear", full_range=True)  # fmt: skip
    graph = FrameGraph(BrightIsPerson(), spec).eval()
    assert graph.planar == (in_format == "i420") and graph._blurs_small(blur_size(h, w, strength)) == (strength == 16)
    comp, alpha, _ = _run(graph, frame[None])
    comp, alpha = comp[0].numpy().astype(int), alpha[0].numpy()
    assert (alpha[ring] == 0).all() and (alpha[24:104, 72:184] == 255).all()
    assert np.abs(comp[:h][ring] - 40).max() <= 3  # (RGB, or the luma plane: a grey's luma is its level)
    if strength == 16:  # (a light blur has no reach to make a halo of)
        whole = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255  # a blur of the whole frame, there
        plain = resize(blur_background(whole, torch.zeros_like(whole[:, :1]), blur_size(h, w, strength)), (h, w))
        assert (plain[0].permute(1, 2, 0).numpy()[ring] * 255).mean() > 40 + 20


def test_a_frame_that_is_all_person_blurs_as_a_whole():
    """No background anywhere (a face filling the camera): no division by nothing, a blur of
    it all; half of it: the background's colour everywhere, behind the person too."""
    x = torch.rand(1, 3, 64, 96)
    all_person = blur_background(x, torch.ones(1, 1, 64, 96), (8, 12))
    assert torch.isfinite(all_person).all() and (all_person - x.mean()).abs().max() < 0.05
    x[..., :48], x[..., 48:] = 0.9, 0.1
    alpha = torch.zeros(1, 1, 64, 96)
    alpha[..., :48] = 1  # the left half is the person: the room is 0.1 behind them too
    assert (blur_background(x, alpha, (8, 12)) - 0.1).abs().max() < 0.01


def test_ema_state(p3m_native, portraits):
    frames = np.stack([portraits[0], portraits[1]])
    off = _graph(p3m_native, temporal="off", upsampler="bilinear", background="color")
    ema = _graph(p3m_native, temporal="ema", upsampler="bilinear", background="color", ema_weight=0.6)
    black = np.zeros((1, 3), np.uint8)
    _, a0, s0 = _run(off, frames[:1], black)
    _, a1, s1 = _run(off, frames[1:], black)
    # First frame: no history, so the filter passes the alpha through.
    _, e0, es0 = _run(ema, frames[:1], black)
    assert torch.equal(e0, a0) and torch.equal(es0, s0)
    # Second frame: 0.6 * new + 0.4 * previous, carried by the explicit state.
    _, e1, es1 = _run(ema, frames[1:], black, state=es0)
    assert torch.allclose(es1, 0.6 * s1 + 0.4 * s0, atol=1e-6)
    # A batch of two frames gives the same as two calls of one.
    batched = FrameGraph(ema.network, ema.spec.with_(batch=2)).eval()
    _, eb, esb = _run(batched, frames, black)
    # (batched convolutions may round differently in the last bits)
    assert (eb.int() - torch.cat([e0, e1]).int()).abs().max() <= 1
    assert torch.allclose(esb, es1, atol=1e-4)


def test_fp16_graph_close_to_fp32(seed32_ckpt, portraits):
    """FP16 network, FP32 around it; measured on the CPU here (torch float16 kernels)."""
    from p3m_live.model import load_p3mnet

    img = portraits[0][None]
    bg = np.zeros((1, 3), np.uint8)
    fp32 = _graph(load_p3mnet(seed32_ckpt), background="color", temporal="off", upsampler="bilinear")
    fp16 = _graph(load_p3mnet(seed32_ckpt), background="color", temporal="off", upsampler="bilinear",
                  precision="fp16")  # fmt: skip
    _, a32, _ = _run(fp32, img, bg)
    _, a16, _ = _run(fp16, img, bg)
    diff = np.abs(a32.numpy().astype(int) - a16.numpy().astype(int))
    # Random weights put many logits near argmax ties, so a few pixels may flip class;
    # the bulk must agree to within a few levels.
    # Measured here (torch 2.13 CPU, seed 32, portrait 0 at 256x192): mean 0.6 levels,
    # 95th percentile 0 levels, 99th 12 (class flips), 0.4% of model pixels change class.
    assert np.percentile(diff, 95) <= 2
    assert diff.mean() < 1.5


def test_foreground_estimation_removes_the_old_background():
    """A soft edge of a red foreground over a blue background, re-composited over green."""
    from p3m_live.graph import estimate_foreground

    h, w = 64, 128
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w).expand(1, 1, h, w).contiguous()
    alpha = torch.clamp((ramp - 0.3) * 3, 0, 1)  # 0 on the left, 1 on the right, soft between
    fg = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1).expand(1, 3, h, w)
    bg = torch.tensor([0.1, 0.2, 0.9]).view(1, 3, 1, 1).expand(1, 3, h, w)
    image = alpha * fg + (1 - alpha) * bg
    est = estimate_foreground(image, alpha, (90, 6))
    soft = ((alpha > 0.05) & (alpha < 0.95)).expand(1, 3, h, w)
    assert (est - fg).abs()[soft].mean() < 0.25 * (image - fg).abs()[soft].mean()
    green = torch.tensor([0.1, 0.8, 0.1]).view(1, 3, 1, 1)
    truth = alpha * fg + (1 - alpha) * green
    naive = alpha * image + (1 - alpha) * green
    better = alpha * est + (1 - alpha) * green
    assert (better - truth).abs()[soft].mean() < 0.5 * (naive - truth).abs()[soft].mean()


def test_light_wrap_tints_only_the_edge(p3m_native):
    """With light wrap, pixels just inside the person's edge take some of the background's
    colour; deep inside and outside nothing changes; strength 0 is the plain composite."""
    from p3m_live.graph import light_wrap

    h, w = 64, 96
    alpha = torch.zeros(1, 1, h, w)
    alpha[..., :, 48:] = 1.0  # the person fills the right half
    fg = torch.full((1, 3, h, w), 0.2)
    bg = torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1)
    comp = alpha * fg + (1 - alpha) * bg
    wrapped = light_wrap(comp, alpha, bg, 0.8, 4)
    assert torch.equal(light_wrap(comp, alpha, bg, 0.0, 4), comp)
    assert (wrapped[..., 49] - comp[..., 49]).mean() > 0.05  # just inside the edge: lighter
    assert torch.allclose(wrapped[..., 90], comp[..., 90])  # deep inside: untouched
    assert torch.allclose(wrapped[..., 10], comp[..., 10])  # background: untouched
    with pytest.raises(ValueError, match="light wrap"):
        GraphSpec(64, 96, light_wrap=2.0)


def test_guided_upsampling_beats_bilinear_on_real_mattes(portrait_paths):
    """A real portrait and its matte shrunk 4x: the colour-guided filter brings the matte back
    closer to the truth than bilinear does (BENCHMARKS.md has the full measurement)."""
    errors = {"bilinear": [], "guided": []}
    for img_path, alpha_path in portrait_paths[:3]:
        rgb = cv2.resize(cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB), (480, 320), cv2.INTER_AREA)
        truth = cv2.resize(cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE), (480, 320), cv2.INTER_AREA) / 255.0
        img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        a = torch.from_numpy(truth)[None, None].float()
        img_lo, a_lo = downscale(img, (80, 120)), downscale(a, (80, 120))
        up = {
            "bilinear": F.interpolate(a_lo, size=(320, 480), mode="bilinear", align_corners=False),
            "guided": guided_upsample(a_lo, img_lo, img),
        }
        for k, v in up.items():
            errors[k].append(float(((v[0, 0].numpy() - truth) ** 2).mean()))
    assert np.mean(errors["guided"]) < 0.85 * np.mean(errors["bilinear"])


class _HostTraffic(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the ops that a CUDA graph capture cannot hold: a tensor made from host data
    (``lift_fresh``: a copy from host memory) and a value read back to the host (``item``,
    ``nonzero``, boolean masks), which would wait for the device."""

    BANNED = ("aten.lift_fresh", "aten._local_scalar_dense", "aten.nonzero", "aten.masked_select")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func).startswith(self.BANNED):
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("model", ["p3m", "fast"])
def test_every_graph_can_be_captured_as_a_cuda_graph(p3m_native, fast_models, model):
    """The torch backend captures the graph on CUDA after a warm-up call. So from the second
    call on, nothing in it may make a tensor from host data or read one back: checked here,
    on the CPU, for every temporal filter, background, path (planes or RGB) and option."""
    from p3m_live.model.fast import load_fast_model

    net = p3m_native if model == "p3m" else load_fast_model(fast_models["selfie_segmentation_landscape"])
    specs = [dict(temporal=t) for t in ("off", "ema", "adaptive", "motion")]
    specs += [dict(background=b, foreground="estimate") for b in ("image", "color", "blur", "mix")]
    specs += [dict(in_format="i420", out_format="i420", background=b) for b in ("image", "blur", "mix")]
    specs += [dict(in_format="i420", out_format="i420", background="image", foreground="quick")]
    specs += [dict(in_format="i420", out_format="i420", foreground_track=True), dict(foreground_track=True)]
    specs += [dict(light_wrap=0.5, batch=2, upsampler="bilinear", erode=2), dict(precision="fp16", temporal="motion")]
    for kw in specs:
        spec = GraphSpec(H, W, **{"in_format": "rgb", "out_format": "rgb", "model_short_side": SHORT, "model": model,
                                  "foreground": "frame", "background": "color", **kw})  # fmt: skip
        graph = FrameGraph(
            copy.deepcopy(net) if spec.precision == "fp16" else net, spec
        ).eval()  # (.half() is in place)
        inputs = list(graph.example_inputs().values())
        with torch.inference_mode():
            graph(*inputs)  # the warm-up call
            with _HostTraffic() as traffic:
                graph(*inputs)
        assert traffic.seen == [], (kw, traffic.seen)


@pytest.mark.parametrize("path", ["rgb", "planes"])
def test_erode_pulls_the_matte_in_as_opencv_erodes_it(p3m_native, portraits, path):
    """--erode 2: the graph's alpha is OpenCV's erosion of its alpha without it, with a 5x5
    square, exactly (erosion commutes with rounding to levels); the frame's border is not
    background; and where the eroded matte is 0 the composite is the background."""
    from p3m_live.graph import erode
    from p3m_live.video.frames import planes_to_rgb

    fmt = "i420" if path == "planes" else "rgb"
    frame = portraits[0] if fmt == "rgb" else rgb_to_planes(portraits[0][None], "bt601", False)[0]
    green = np.array([[0, 177, 64]], np.uint8)
    outs = {}
    for r in (0, 2):
        g = _graph(p3m_native, in_format=fmt, out_format=fmt, background="color", temporal="off", erode=r)
        assert g.planar == (path == "planes")
        comp, alpha, _ = _run(g, frame[None], green)
        rgb = comp[0].numpy() if fmt == "rgb" else planes_to_rgb(comp[0].numpy(), "i420", "bt601", False)
        outs[r] = rgb, alpha[0].numpy()
    want = cv2.erode(outs[0][1], np.ones((5, 5), np.uint8))
    assert np.array_equal(outs[2][1], want) and not np.array_equal(want, outs[0][1])
    gone = (want == 0) & (outs[0][1] > 0)
    gone = gone & (cv2.erode(gone.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)  # (clear of 4:2:0 chroma's reach)
    assert gone.any() and np.abs(outs[2][0][gone].astype(int) - (0, 177, 64)).max() <= 3
    full = torch.ones(1, 1, 8, 8)
    assert torch.equal(erode(full, 3), full)  # (nothing outside the frame pulls it in)
