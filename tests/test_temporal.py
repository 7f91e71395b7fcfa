"""The temporal filters' state handling: first frame, still and moving regions, scene cuts, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from p3m_live.graph import (
    ADAPTIVE_MOVING,
    ADAPTIVE_NOISE,
    ADAPTIVE_STILL,
    MOTION_SEARCH,
    FrameGraph,
    GraphSpec,
    follow_motion,
)


class NoNetwork(torch.nn.Module):
    """Only ``smooth`` is exercised here; the network is never called."""

    def matte(self, rgb):  # pragma: no cover
        raise AssertionError


def _graph(temporal: str) -> FrameGraph:
    return FrameGraph(NoNetwork(), GraphSpec(64, 64, model_short_side=32, temporal=temporal))


def _fresh(g: FrameGraph) -> torch.Tensor:
    return torch.full(g.spec.state_shape, -1.0)


@pytest.mark.parametrize("temporal", ["adaptive", "motion"])
def test_first_frame_takes_the_new_alpha_and_keeps_luma(temporal):
    g = _graph(temporal)
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


@pytest.mark.parametrize("temporal", ["ema", "adaptive", "motion"])
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


@pytest.mark.parametrize("temporal", ["adaptive", "motion"])
def test_the_state_survives_export_and_reset(seed32_ckpt, portrait_paths, temporal):
    """Both backends run the filters that keep luma alike; reset() forgets the history."""
    import cv2

    from p3m_live.backends import open_backend

    spec = GraphSpec(96, 128, "rgb", "rgb", model_short_side=64, background="color", temporal=temporal)
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


# ---------------------------------------------------------------- the motion filter


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A room with detail everywhere (block matching needs something to match)."""
    rng = np.random.default_rng(seed)
    import cv2

    return cv2.GaussianBlur(rng.random((h, w)), (0, 0), 1.0)


def _t(x: np.ndarray) -> torch.Tensor:
    """An (h, w) plane as a (1, 1, h, w) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]


def _reference_follow(prev_a: np.ndarray, prev_l: np.ndarray, luma: np.ndarray, r: int) -> tuple:
    """follow_motion written out per pixel: every shift in row order, its 5x5 cost over
    the zero-padded window (divided by 25) plus the tie-break; the first least cost wins."""
    h, w = luma.shape
    shifts = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]

    def moved(x, dy, dx):  # x moved by (dy, dx), its edges repeated
        return x[np.clip(ys - dy, 0, h - 1), np.clip(xs - dx, 0, w - 1)]

    out_a, out_l = np.empty_like(prev_a), np.empty_like(prev_l)
    diffs = {m: np.pad(np.abs(luma - moved(prev_l, *m)), 2) for m in shifts}
    for y in range(h):
        for x in range(w):
            costs = [
                diffs[m][y : y + 5, x : x + 5].sum() / 25 + 0.1 * ADAPTIVE_NOISE * (abs(m[0]) + abs(m[1]))
                for m in shifts
            ]
            dy, dx = shifts[int(np.argmin(costs))]
            inside = 0 <= y - dy < h and 0 <= x - dx < w
            out_a[y, x], out_l[y, x] = (prev_a[y - dy, x - dx] if inside else -1.0), moved(prev_l, dy, dx)[y, x]
    return out_a, out_l


def test_follow_motion_equals_block_matching_written_out():
    """Against the per-pixel definition, on a picture where parts move different ways
    (left half down, right half up and left) and a border where shifts tie."""
    base = _texture(40, 40, seed=1)
    prev_l = base[4:28, 4:28].copy()
    luma = np.concatenate([base[3:27, 4:16], base[6:30, 17:29]], 1)
    luma[:, :3] = 0.5  # a flat strip: every shift matches there, the tie-break decides
    prev_a = np.random.default_rng(2).random(prev_l.shape)
    want_a, want_l = _reference_follow(prev_a, prev_l, luma, MOTION_SEARCH)
    got_a, got_l = follow_motion(_t(prev_a), _t(prev_l), _t(luma))
    assert np.allclose(got_a[0, 0].numpy(), want_a, atol=1e-6) and np.allclose(got_l[0, 0].numpy(), want_l, atol=1e-6)


def test_a_moving_picture_is_followed_exactly():
    base = _texture(48, 48)
    prev, now = base[8:40, 8:40], base[7:39, 10:42]  # the picture moved 1 down and 2 left
    a, lum = follow_motion(_t(prev), _t(prev), _t(now))
    inner = (slice(4, -4), slice(4, -4))
    assert torch.equal(lum[0, 0][inner], _t(now)[0, 0][inner]) and torch.equal(a[0, 0][inner], _t(now)[0, 0][inner])


def _moving_shot(speed: int, frames: int = 10, size: int = 32, noise: float = 0.1, seed: int = 0):
    """A textured room and a brighter person's straight edge moving ``speed`` pixels a
    frame to the right together (a camera pan), the matte with independent noise each
    frame."""
    rng = np.random.default_rng(seed)
    base = _texture(size, size + speed * frames + 8, seed)
    edge = speed + size // 2  # (in the middle of the last frame)
    truth = (np.arange(base.shape[1]) < edge).astype(np.float64)[None].repeat(size, 0)
    luma, shots = base + 0.3 * truth, []
    for i in range(frames):
        x0 = speed * (frames - i)  # (the window slides left: the picture moves right)
        w = (slice(None), slice(x0, x0 + size))
        shots.append((luma[w], truth[w], np.clip(truth[w] + noise * rng.standard_normal((size, size)), 0, 1)))
    return shots


def _errors(temporal: str, shots) -> float:
    """Mean squared error of the smoothed matte over the last half of the frames."""
    g = FrameGraph(NoNetwork(), GraphSpec(64, 64, model_short_side=32, temporal=temporal))
    state, errs = _fresh(g), []
    for i, (luma, truth, noisy) in enumerate(shots):
        out, state = g.smooth(_t(noisy), state, _t(luma))
        if i >= len(shots) // 2:
            errs.append(np.mean((out[0, 0].numpy()[4:-4, 4:-4] - truth[4:-4, 4:-4]) ** 2))
    return float(np.mean(errs))


def test_motion_smooths_a_moving_person_that_adaptive_takes_as_new():
    """At 1 and 2 pixels a frame, the adaptive filter sees the room's texture change and
    takes each noisy matte as it is; the motion filter finds the move and smooths."""
    for speed in (1, 2):
        shots = _moving_shot(speed)
        off, adaptive, motion = (_errors(f, shots) for f in ("off", "adaptive", "motion"))
        assert adaptive > 0.8 * off  # (nearly no smoothing)
        assert motion < 0.6 * adaptive


def test_motion_beyond_the_search_leaves_no_trail():
    """At 5 pixels a frame, beyond the search, the new matte is taken nearly as it is
    instead of being blended with a history that is somewhere else: a trail as the fixed
    blend (ema) leaves is off by a third or more behind the edge."""
    shots = _moving_shot(5, noise=0.0)
    worst = {}
    for temporal in ("ema", "motion"):
        g = _graph(temporal)
        state = _fresh(g)
        for luma, _, noisy in shots:
            out, state = g.smooth(_t(noisy), state, _t(luma))
        worst[temporal] = np.abs(out[0, 0].numpy() - shots[-1][1]).max()
    assert worst["ema"] > 0.3 and worst["motion"] < 0.1


def test_motion_on_a_still_picture_is_the_adaptive_filter():
    """Nothing moved: the tie-break keeps every pixel's history where it is."""
    rng = np.random.default_rng(3)
    luma = torch.from_numpy(_texture(32, 32).astype(np.float32))[None, None]
    alphas = torch.from_numpy(rng.random((3, 1, 32, 32)).astype(np.float32))
    outs = {}
    for temporal in ("adaptive", "motion"):
        g = _graph(temporal)
        outs[temporal] = g.smooth(alphas, _fresh(g), luma.expand(3, -1, -1, -1))
    assert torch.equal(outs["adaptive"][0], outs["motion"][0]) and torch.equal(outs["adaptive"][1], outs["motion"][1])


def test_a_run_with_the_motion_filter_flickers_less_on_a_moving_person(tmp_path, portrait_paths, fast_models):
    """End to end with the fast model: a real portrait crossing a striped room 1.5 pixels
    a frame (one pixel at the model's size), new webcam noise in every frame. The matte
    of ``--temporal motion`` changes from frame to frame more as the true matte does
    (dtSSD) than the adaptive filter's, which takes a moving picture's mattes as new."""
    import av
    import cv2

    from p3m_live.cli import main
    from p3m_live.metrics import dtssd

    image, matte = next((i, a) for i, a in portrait_paths if i.stem == "p_22fc0130")
    w, h, side, frames = 384, 216, 200, 20
    fg = cv2.resize(cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB), (side, side)).astype(np.float32)
    fa = cv2.resize(cv2.imread(str(matte), cv2.IMREAD_GRAYSCALE), (side, side)).astype(np.float32) / 255
    xx = np.arange(w)[None, :, None]
    room = np.broadcast_to(120 + 60 * np.sin(xx / 7.0) * np.array([1.0, 0.8, 0.6]), (h, w, 3))
    rng, truth = np.random.default_rng(0), []
    clip = tmp_path / "walk.mkv"
    with av.open(str(clip), "w") as out:
        v = out.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv444p"
        for i in range(frames):
            m = np.float32([[1, 0, 60 + 1.5 * i], [0, 1, h - side]])
            f_i = cv2.warpAffine(fg, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            a_i = cv2.warpAffine(fa, m, (w, h))
            shot = a_i[..., None] * f_i + (1 - a_i[..., None]) * room + rng.normal(0, 3, (h, w, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(shot.round(), 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            for p in v.encode(frame.reformat(format="yuv444p")):
                out.mux(p)
            truth.append(a_i)
        for p in v.encode(None):
            out.mux(p)
    flicker = {}
    for temporal in ("adaptive", "motion"):
        matte_out = tmp_path / f"{temporal}.mkv"
        argv = [str(clip), "--alpha-out", str(matte_out), "--background", "none", "--model", "fast", "-q"]
        assert main([*argv, "--backend", "torch", "--temporal", temporal]) == 0
        with av.open(str(matte_out)) as c:
            got = np.stack([f.to_ndarray(format="gray").astype(np.float64) / 255 for f in c.decode(video=0)])
        assert got.shape == (frames, h, w)
        flicker[temporal] = dtssd(got[frames // 2 :], np.stack(truth)[frames // 2 :])
    assert flicker["motion"] < 0.9 * flicker["adaptive"], flicker
