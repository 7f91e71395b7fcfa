"""p3m-live eval (official RESIZE/HYBRID strategies and metrics) and p3m-live matte (still images)."""

from __future__ import annotations

import contextlib
import json
import logging

import cv2
import numpy as np
import pytest

from p3m_live.cli import main
from p3m_live.eval_cli import METRICS, find_samples, score, trimap_from_alpha
from p3m_live.metrics import sad
from p3m_live.strategies import official_size, predict
from tests.conftest import torch_args

W, H = 352, 264  # small copies of the shared portraits keep the suite quick


def test_official_sizes():
    assert official_size(1080, 1920, 0.5) == (512, 960)
    assert official_size(1081, 1921, 0.5) == (512, 960)  # int(540.5) = 540, floored to 512
    assert official_size(4000, 3000, 1.0) == (1600, 1600)  # capped
    assert official_size(1080, 1920, 1.0) == (1056, 1600)


@pytest.fixture(scope="module")
def small_portraits(portrait_paths):
    out = []
    for img, alpha in portrait_paths[:3]:
        rgb = cv2.resize(cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB), (W, H), interpolation=cv2.INTER_AREA)
        a = cv2.resize(cv2.imread(str(alpha), cv2.IMREAD_GRAYSCALE), (W, H), interpolation=cv2.INTER_AREA)
        out.append((img.stem, rgb, a))
    return out


def _spy_sizes(net, monkeypatch):
    sizes = []
    run = net.run

    def spy(x, sides=True):
        sizes.append(tuple(x.shape[-2:]))
        return run(x, sides)

    monkeypatch.setattr(net, "run", spy)
    return sizes


def test_resize_is_one_half_scale_pass(p3m_native, small_portraits, monkeypatch):
    sizes = _spy_sizes(p3m_native, monkeypatch)
    _, rgb, _ = small_portraits[0]
    alpha = predict(p3m_native, rgb, "resize")
    assert sizes == [official_size(H, W, 0.5)] and alpha.shape == (H, W)
    assert 0 <= alpha.min() and alpha.max() <= 1


def test_hybrid_fuses_half_scale_trimap_with_full_scale_detail(p3m_native, small_portraits, monkeypatch):
    import torch
    from skimage.transform import resize

    _, rgb, _ = small_portraits[1]
    sizes = _spy_sizes(p3m_native, monkeypatch)
    alpha = predict(p3m_native, rgb, "hybrid")
    assert sizes == [official_size(H, W, 0.5), official_size(H, W, 1.0)]
    # Recompute the full-scale detail alpha on its own and check the fusion rule pixel by pixel.
    full = resize(rgb, official_size(H, W, 1.0)) * 255.0
    x = torch.from_numpy(full.astype(np.float32)).permute(2, 0, 1)[None] / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        detail = p3m_native.run((x - mean) / std, sides=False).detail[0, 0].numpy()
    detail = resize(detail, (H, W))
    certain = (alpha == 0) | (alpha == 1)
    assert certain.any() and (~certain).any()
    assert np.allclose(alpha[~certain], detail[~certain])


def test_perfect_prediction_scores_zero(small_portraits):
    _, _, a = small_portraits[0]
    s = score(a / 255.0, a / 255.0, trimap_from_alpha(a))
    assert set(s) == set(METRICS) and all(v == 0 for v in s.values())


def _layouts(tmp_path, small_portraits):
    """The same three portraits as a P3M-500 folder and as original/ + alpha/ pairs."""
    p3m, plain = tmp_path / "P3M-500-P", tmp_path / "pairs"
    for d in ("blurred_image", "mask", "trimap"):
        (p3m / d).mkdir(parents=True)
    for d in ("original", "alpha"):
        (plain / d).mkdir(parents=True)
    for name, rgb, a in small_portraits:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(p3m / "blurred_image" / f"{name}.png"), bgr)
        cv2.imwrite(str(p3m / "mask" / f"{name}.png"), a)
        cv2.imwrite(str(p3m / "trimap" / f"{name}.png"), trimap_from_alpha(a))
        cv2.imwrite(str(plain / "original" / f"{name}.png"), bgr)
        cv2.imwrite(str(plain / "alpha" / f"{name}.png"), a)
    return p3m, plain


def test_eval_table_in_both_layouts(tmp_path, small_portraits, seed32_ckpt, p3m_native, capsys):
    p3m, plain = _layouts(tmp_path, small_portraits)
    results = {}
    for data in (p3m, plain):
        out = tmp_path / f"{data.name}.json"
        assert (
            main(
                ["eval", "--data", str(data), "--strategy", "resize", "--weights", str(seed32_ckpt), "--out", str(out)]
            )
            == 0
        )
        printed = capsys.readouterr().out
        assert "| SAD | MSE | MAD | SAD-T |" in printed and "RESIZE, 3 images" in printed
        results[data.name] = json.loads(out.read_text())
    a, b = results["P3M-500-P"], results["pairs"]
    assert a["layout"].startswith("P3M-500") and b["layout"] == "original/ + alpha/"
    assert [r["image"] for r in a["images"]] == [n for n, _, _ in small_portraits]
    assert a["overall"] == pytest.approx(b["overall"])  # the trimap file is the one the pairs derive
    assert a["overall"]["SAD"] == pytest.approx(np.mean([r["SAD"] for r in a["images"]]))
    name, rgb, alpha = small_portraits[0]
    assert a["images"][0]["SAD"] == pytest.approx(sad(predict(p3m_native, rgb, "resize"), alpha / 255.0))


def test_eval_csv(tmp_path, small_portraits, seed32_ckpt):
    _, plain = _layouts(tmp_path, small_portraits[:1])
    out = tmp_path / "r.csv"
    assert (
        main(["eval", "--data", str(plain), "--strategy", "hybrid", "--weights", str(seed32_ckpt), "--out", str(out)])
        == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "image," + ",".join(METRICS) and lines[-1].startswith("overall,") and len(lines) == 3


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda d: (d / "mask").mkdir(parents=True), "has mask/ but not"),
        (lambda d: d.mkdir(), "neither a P3M-500 layout"),
        (lambda d: None, "dataset folder not found"),
    ],
)
def test_broken_layouts(tmp_path, build, message, seed32_ckpt, capsys):
    data = tmp_path / "data"
    build(data)
    assert main(["eval", "--data", str(data), "--weights", str(seed32_ckpt)]) == 2
    assert message in capsys.readouterr().err


def test_image_without_its_trimap(tmp_path, small_portraits):
    p3m, _ = _layouts(tmp_path, small_portraits[:2])
    (p3m / "trimap" / f"{small_portraits[1][0]}.png").unlink()
    with pytest.raises(Exception, match="has no trimap/"):
        find_samples(p3m)


def test_matte_still_images(tmp_path, small_portraits, seed32_ckpt, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, rgb, _ in small_portraits[:2]:
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    args = [
        "matte",
        str(folder),
        "-o",
        str(out),
        "--fg",
        "--composite",
        "#ff0000",
        *torch_args(seed32_ckpt, 128),
    ]
    assert main(args) == 0
    names = sorted(p.name for p in out.iterdir())
    stems = [n for n, _, _ in small_portraits[:2]]
    assert names == sorted(f"{s}{k}.png" for s in stems for k in ("", "_fg", "_composite"))
    alpha = cv2.imread(str(out / f"{stems[0]}.png"), cv2.IMREAD_UNCHANGED)
    fg = cv2.imread(str(out / f"{stems[0]}_fg.png"), cv2.IMREAD_UNCHANGED)
    comp = cv2.cvtColor(cv2.imread(str(out / f"{stems[0]}_composite.png")), cv2.COLOR_BGR2RGB)
    assert alpha.shape == (H, W) and 0.02 < (alpha > 127).mean() < 0.98
    assert np.array_equal(fg[..., 3], alpha)
    photo = cv2.imread(str(folder / f"{stems[0]}.jpg"))  # (BGR, as the cut-out on disk)
    opaque, soft = alpha == 255, (alpha > 0) & (alpha < 255)
    assert np.array_equal(fg[..., :3][opaque], photo[opaque])  # the photo's own colours
    assert np.abs(fg[..., :3][soft].astype(int) - photo[soft]).mean() > 1  # estimated at soft edges
    clear = alpha == 0
    assert clear.any() and (comp[clear] == (255, 0, 0)).all()  # composited over the colour where alpha is 0
    assert main(args) == 2  # exists: refused without --overwrite
    assert main([*args, "--overwrite"]) == 0
    single = tmp_path / "one.png"
    assert main(["matte", str(folder / f"{stems[0]}.jpg"), "-o", str(single), *torch_args(seed32_ckpt, 128)]) == 0
    assert np.array_equal(cv2.imread(str(single), cv2.IMREAD_UNCHANGED), alpha)
    photo_out = tmp_path / "photo.jpg"  # a folder's mattes into a file: one line, the file kept
    photo_out.write_bytes(b"keep me")
    capsys.readouterr()
    assert main(["matte", str(folder), "-o", str(photo_out), *torch_args(seed32_ckpt, 128)]) == 2
    assert photo_out.read_bytes() == b"keep me" and "is a file, not a folder" in capsys.readouterr().err


def test_matte_over_a_video_plays_it_image_by_image_and_leaves_no_reader_behind(tmp_path, small_portraits, seed32_ckpt):
    """``--composite clip.mp4`` for a folder of frames: one background reader for all of
    them, the clip's next frame behind each image, and closed at the end (one per image
    once stayed alive, each with its frames read ahead)."""
    import threading

    import av

    from tests.media import encode_all

    folder = tmp_path / "in"
    folder.mkdir()
    name, rgb, _ = small_portraits[0]
    for k in range(3):
        cv2.imwrite(str(folder / f"{k}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    clip = tmp_path / "bg.mp4"
    with av.open(str(clip), "w") as out:  # (a grey a frame, 0, 40, 80, ...)
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        greys = [np.full((H, W, 3), 40 * k, np.uint8) for k in range(6)]
        encode_all(out, stream, [av.VideoFrame.from_ndarray(g, format="rgb24") for g in greys])
    args = ["matte", str(folder), "-o", str(tmp_path / "out"), "--composite", str(clip), *torch_args(seed32_ckpt, 128)]
    assert main(args) == 0
    assert not [t for t in threading.enumerate() if t.name == "p3m-background"]
    alpha = cv2.imread(str(tmp_path / "out" / "0.png"), cv2.IMREAD_UNCHANGED)
    clear = alpha == 0
    shown = [np.median(cv2.imread(str(tmp_path / "out" / f"{k}_composite.png"))[clear]) for k in range(3)]
    assert clear.any() and shown == pytest.approx([0, 40, 80], abs=3)


def test_matte_onto_a_full_disk_is_one_line(tmp_path, small_portraits, seed32_ckpt, small_disk, capsys):
    """`p3m-live matte` checks every write: a disk too small for the matte is one line and
    exit 2, not a run that says it wrote what it did not."""
    image = tmp_path / "p.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(small_portraits[0][1], cv2.COLOR_RGB2BGR))
    disk = small_disk("8k")
    with contextlib.suppress(OSError):  # filled to the last byte
        (disk / "filler").write_bytes(b"x" * (64 << 10))
    assert main(["matte", str(image), "-o", str(disk / "a.png"), *torch_args(seed32_ckpt, 128)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"p3m-live: error: the disk is full: a.png could not be written; free some space in {disk} "
        "or write to another disk"
    )
    assert not (disk / "a.png").exists()


def test_commands_that_log_take_quiet(tmp_path, small_portraits, seed32_ckpt, capsys):
    """-q works for matte as for a conversion run: the backend line goes, the result stays."""
    image = tmp_path / "p.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(small_portraits[0][1], cv2.COLOR_RGB2BGR))
    argv = ["matte", str(image), "-o", str(tmp_path / "a.png"), "--overwrite", "--weights", str(seed32_ckpt)]
    argv += ["--model-size", "128"]  # --backend auto: one line saying which
    assert main(argv) == 0
    assert "backend:" in capsys.readouterr().err
    assert main([*argv, "-q"]) == 0
    assert capsys.readouterr().err == "" and (tmp_path / "a.png").is_file()


def test_matte_folder_skips_what_it_cannot_read_and_says_so(tmp_path, small_portraits, seed32_ckpt, caplog, capsys):
    """A folder with a damaged file, a 1x1 image and two sizes: the good images are written,
    the bad ones are named, and the run ends with exit 2. ``auto`` runs PyTorch (no export per size)."""
    caplog.set_level(logging.INFO, logger="p3m_live")
    folder = tmp_path / "in"
    folder.mkdir()
    (name, rgb, _) = small_portraits[0]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "a.jpg"), bgr)
    cv2.imwrite(str(folder / "b.png"), bgr[: H // 2 + 1, : W // 2 + 1])  # another size, odd sides
    (folder / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    cv2.imwrite(str(folder / "d.png"), bgr[:1, :1])
    out = tmp_path / "out"
    args = ["matte", str(folder), "-o", str(out), "--weights", str(seed32_ckpt), "--model-size", "64"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "2 of 4 images could not be matted (c.jpg, d.png)" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED).shape == (H // 2 + 1, W // 2 + 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("backend: torch on cpu") for m in messages)
    assert sum(m.startswith("skipped ") for m in messages) == 2
    # Existing outputs are refused before any work: nothing is rewritten.
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    (folder / "c.jpg").unlink()
    (folder / "d.png").unlink()
    cv2.imwrite(str(folder / "e.jpg"), bgr)
    assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before
    # A missing model is not a bad file: it stops the folder at once.
    missing = ["matte", str(folder), "-o", str(tmp_path / "none"), "--weights", str(tmp_path / "nope.pth")]
    assert main(missing) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert not list((tmp_path / "none").glob("*.png"))
