"""HDR to SDR: the transfer functions and matrix against their standards, the roll-off's
shape, and real 10-bit HLG and PQ clips decoded into the SDR values they should give."""

from __future__ import annotations

import logging

import av
import cv2
import numpy as np
import pytest

from p3m_live.video import hdr
from p3m_live.video.frames import planes_to_rgb
from p3m_live.video.sources import AVSource
from tests.media import make_hdr_clip


def test_hlg_in_bt709_colours_keeps_its_gamut(tmp_path):
    """Some cameras record HLG with BT.709 primaries: taking those colours through the
    BT.2020 matrix would oversaturate them, so the primaries tag decides."""
    picture = _patch_picture()
    clip = make_hdr_clip(tmp_path / "hlg709.mkv", _hlg_signal(picture, wide=False), primaries=1)
    with AVSource(str(clip)) as src:
        frame = next(item for item in src.items() if hasattr(item, "fmt"))
    rgb = planes_to_rgb(frame.data, "i420", "bt709", False).astype(float)
    for i, light in enumerate(PATCHES.values()):
        got = rgb[8:24, 32 * i + 8 : 32 * i + 24].reshape(-1, 3).mean(axis=0)
        lit = np.asarray(light) > 0.01
        assert np.abs(got - _expected_sdr(light))[lit].max(initial=0) < 3.0, (i, got)
        assert np.all((got[~lit] / 255) ** 2.4 < 0.002), (i, got)


def test_pq_and_hlg_match_their_standards():
    # ST 2084 code values quoted everywhere: 100 nits 0.5081, 1000 nits 0.7518, 10000 nits 1.0
    assert hdr.nits_to_pq(np.array([100.0, 1000.0, 10000.0])) == pytest.approx([0.5081, 0.7518, 1.0], abs=1e-4)
    nits = np.array([0.0, 0.01, 1.0, 203.0, 4000.0])
    assert hdr.pq_to_nits(hdr.nits_to_pq(nits)) == pytest.approx(nits, rel=1e-6, abs=1e-9)
    # BT.2100 HLG: 1/12 of scene light is signal 0.5, all of it is 1.0
    assert hdr.scene_to_hlg(np.array([1 / 12, 1.0])) == pytest.approx([0.5, 1.0], abs=1e-6)
    e = np.linspace(0, 1, 101)
    assert hdr.hlg_to_scene(hdr.scene_to_hlg(e)) == pytest.approx(e, abs=1e-9)
    # BT.2408: HLG 75% grey is reference white, 203 nits, on a 1000-nit display (system gamma 1.2)
    assert hdr.HLG_DISPLAY_PEAK * hdr.hlg_to_scene(0.75) ** 1.2 == pytest.approx(203, abs=1)


def test_bt2020_to_bt709_matrix_is_bt2087s():
    published = [[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]]
    assert np.abs(hdr.BT2020_TO_BT709 - published).max() < 1e-4
    assert hdr.BT2020_TO_BT709.sum(axis=1) == pytest.approx([1, 1, 1], abs=1e-9)  # white stays white


def test_rolloff_keeps_the_midtones_and_lands_the_peak_on_white():
    peak = 1000 / 203
    m = np.linspace(0, 2 * peak, 20001, dtype=np.float32)
    out = hdr.rolloff(m, peak)
    below = m <= hdr.KNEE
    assert np.array_equal(out[below], m[below])
    assert np.all(np.diff(out[m <= peak]) > 0)  # strictly rising up to the peak
    assert hdr.rolloff(np.array([peak]), peak)[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(out[m >= peak] == 1.0) and out.max() == 1.0
    k, d = hdr.KNEE, 1e-3  # the slope stays 1 through the knee: no visible crease
    slope = (hdr.rolloff(np.array([k + d]), peak)[0] - k) / d
    assert slope == pytest.approx(1.0, abs=0.01)


def _hlg_signal(bt709_light: np.ndarray, wide: bool = True) -> np.ndarray:
    """Linear BT.709 light (reference white 1.0) -> 16-bit HLG RGB codes, by BT.2100's inverse
    path: nits, BT.2020 primaries (unless not ``wide``), inverse OOTF (scene light), OETF."""
    to_wide = np.linalg.inv(hdr.BT2020_TO_BT709) if wide else np.eye(3)
    nits = bt709_light @ to_wide.T * hdr.REFERENCE_WHITE
    yd = nits @ (hdr.BT2020_LUMA if wide else hdr.BT709_LUMA).astype(np.float64)
    ys = (yd / hdr.HLG_DISPLAY_PEAK) ** (1 / 1.2)
    scene = nits / (hdr.HLG_DISPLAY_PEAK * np.maximum(ys, 1e-12) ** 0.2)[..., None]
    return np.round(hdr.scene_to_hlg(scene) * 65535).astype(np.uint16)


# Patches of linear BT.709 light below the knee (so they must come back exactly, on a BT.1886
# display), and reference white, which the roll-off puts at 89.4% of SDR white.
PATCHES = {
    "black": (0.0, 0.0, 0.0),
    "grey": (0.25, 0.25, 0.25),
    "skin": (0.45, 0.25, 0.17),
    "red": (0.4, 0.0, 0.0),
    "green": (0.0, 0.3, 0.0),
    "white": (1.0, 1.0, 1.0),
}


def _patch_picture() -> np.ndarray:
    picture = np.zeros((32, 32 * len(PATCHES), 3))
    for i, light in enumerate(PATCHES.values()):
        picture[:, 32 * i : 32 * (i + 1)] = light
    return picture


def _expected_sdr(light, peak_nits: float = 1000.0) -> np.ndarray:
    light = np.asarray(light, np.float64)
    m = light.max()
    if m > hdr.KNEE:
        light = light * hdr.rolloff(np.array([m]), peak_nits / hdr.REFERENCE_WHITE)[0] / m
    return 255 * light ** (1 / 2.4)


@pytest.mark.parametrize("codec, suffix", [("ffv1", ".mkv"), ("libx265", ".mp4")])
def test_hlg_clip_decodes_to_the_sdr_colours_it_was_made_from(tmp_path, caplog, codec, suffix):
    """A phone-style 10-bit HLG clip of known colours: each patch comes back as its SDR colour,
    hue kept (red stays red, no green or blue added), as BT.709 I420 for the frame graph."""
    clip = make_hdr_clip(tmp_path / f"hlg{suffix}", _hlg_signal(_patch_picture()), codec=codec)
    with caplog.at_level(logging.INFO, logger="p3m_live"), AVSource(str(clip)) as src:
        frames = [item for item in src.items() if hasattr(item, "fmt")]
    assert (src.layout.fmt, src.layout.matrix, src.layout.full_range) == ("i420", "bt709", False)
    assert len(frames) == 3
    rgb = planes_to_rgb(frames[1].data, "i420", "bt709", False).astype(float)
    for i, (name, light) in enumerate(PATCHES.items()):
        got = rgb[8:24, 32 * i + 8 : 32 * i + 24].reshape(-1, 3).mean(axis=0)
        want = _expected_sdr(light)
        # 3 codes where there is light; near black, gamma 2.4 turns a 10-bit rounding of the
        # HDR signal into several codes, so there the check is on light (0.002 of white)
        lit = np.asarray(light) > 0.01
        assert np.abs(got - want)[lit].max(initial=0) < 3.0, (name, got, want)
        assert np.all((got[~lit] / 255) ** 2.4 < 0.002), (name, got, want)
    said = [r.getMessage() for r in caplog.records if "HDR" in r.getMessage()]
    assert len(said) == 1 and "HLG" in said[0] and "tone-mapping" in said[0]


@pytest.mark.parametrize("max_cll", [None, 4000])
def test_pq_clip_puts_reference_white_and_its_peak_where_they_belong(tmp_path, max_cll):
    """PQ carries nits directly: 50.75 nits is a quarter of reference white, and the peak (the
    stream's MaxCLL where it has one, else 1000 nits) is SDR white."""
    nits = np.array([0.0, 50.75, 203.0, 1000.0, 4000.0])
    picture = np.repeat(np.repeat(nits[None, :, None], 32, axis=0), 32, axis=1)
    signal = np.round(hdr.nits_to_pq(np.repeat(picture, 3, axis=2)) * 65535).astype(np.uint16)
    clip = make_hdr_clip(tmp_path / "pq.mkv", signal, transfer=hdr.PQ, codec="libx265", max_cll=max_cll)
    with AVSource(str(clip)) as src:
        frame = next(item for item in src.items() if hasattr(item, "fmt"))
    peak = max_cll or 1000.0
    assert src.tone_mapper.peak * hdr.REFERENCE_WHITE == pytest.approx(peak)
    grey = planes_to_rgb(frame.data, "i420", "bt709", False).astype(float)[16, 16::32, 1]
    want = [_expected_sdr([n / 203.0] * 3, peak)[0] for n in nits]
    assert np.abs(grey - want).max() < 3.0, (grey, want)
    assert grey[4] > 250  # the peak and beyond: white, not wrapped around


def test_rotated_hdr_clip_stays_upright(tmp_path):
    picture = _patch_picture()[:, :64]  # black, then grey
    clip = make_hdr_clip(tmp_path / "r.mp4", _hlg_signal(picture), codec="libx265", rotation=90)
    with AVSource(str(clip)) as src:
        frame = next(item for item in src.items() if hasattr(item, "fmt"))
    assert (src.layout.width, src.layout.height, src.layout.rotation) == (32, 64, 90)
    rgb = planes_to_rgb(frame.data, "i420", "bt709", False)
    # a quarter turn counter-clockwise puts the right-hand (grey) half on top
    assert rgb[8:24, 8:24].mean() > 100 and rgb[40:56, 8:24].mean() < 10


def test_hdr_clip_scaled_down_first_keeps_its_colours(tmp_path):
    """--downscale scales the 10-bit frame before tone mapping (fewer pixels to map): the
    colours are the same as at full size."""
    clip = make_hdr_clip(tmp_path / "hlg.mkv", _hlg_signal(_patch_picture()))
    with AVSource(str(clip), short_side=16) as src:
        frame = next(item for item in src.items() if hasattr(item, "fmt"))
    assert (src.layout.width, src.layout.height, src.layout.fmt) == (16 * len(PATCHES), 16, "i420")
    rgb = planes_to_rgb(frame.data, "i420", "bt709", False).astype(float)
    for i, light in enumerate(PATCHES.values()):
        got = rgb[4:12, 16 * i + 4 : 16 * i + 12].reshape(-1, 3).mean(axis=0)
        lit = np.asarray(light) > 0.01
        assert np.abs(got - _expected_sdr(light))[lit].max(initial=0) < 3.0, (i, got)


def test_sdr_clip_is_left_alone():
    assert hdr.tone_mapper_for(type("F", (), {"color_trc": 1})()) is None
    with pytest.raises(ValueError):
        hdr.ToneMapper(1)


def test_pq_peak_is_kept_within_sense():
    """A MaxCLL at or below reference white would leave the roll-off no room; PQ ends at 10000."""
    assert hdr.ToneMapper(hdr.PQ, 100).peak == pytest.approx(2.0)
    assert hdr.ToneMapper(hdr.PQ, 50000).peak * hdr.REFERENCE_WHITE == pytest.approx(10000)


def test_phone_hlg_clip_through_the_command_line(seed32_ckpt, tmp_path):
    """The main job on a phone-style clip (HEVC, HLG, rotated): the foreground track carries
    the SDR colours, upright, and the composite is an SDR BT.709 file, not tagged HLG."""
    from p3m_live.cli import main

    picture = _patch_picture()[:, : 32 * 4]  # black, grey, skin, red
    clip = make_hdr_clip(tmp_path / "phone.mp4", _hlg_signal(picture), codec="libx265", rotation=-90)
    out, fg = tmp_path / "out.mp4", tmp_path / "fg"
    argv = ["--weights", str(seed32_ckpt), "--model-size", "64", "-q", str(clip), "-o", str(out), "--fg-out", str(fg)]
    assert main(argv) == 0
    rgba = cv2.cvtColor(cv2.imread(str(fg / "000000.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    assert rgba.shape == (128, 32, 4)  # upright: -90 is a quarter turn clockwise
    for i, light in enumerate(list(PATCHES.values())[1:4], start=1):
        got = rgba[32 * i + 8 : 32 * i + 24, 8:24, :3].reshape(-1, 3).mean(axis=0)
        assert np.abs(got - _expected_sdr(light))[np.asarray(light) > 0.01].max() < 4.0, (i, got)
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert cc.colorspace == 1 and cc.color_trc != hdr.HLG and cc.pix_fmt == "yuv420p"
