"""The command line: help, export, and one-line errors with exit code 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import onnx
import pytest

from p3m_live.cli import main


def _cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "p3m_live.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_help():
    r = _cli("--help")
    assert r.returncode == 0 and "export" in r.stdout and "weights" in r.stdout


def test_export_two_sizes(seed32_ckpt, tmp_path, capsys):
    rc = main(["export", "--size", "96x64", "--size", "64x96", "--model-size", "32", "--precision", "fp32",
               "--weights", str(seed32_ckpt), "-o", str(tmp_path)])  # fmt: skip
    assert rc == 0
    files = sorted(p.name for p in tmp_path.glob("*.onnx"))
    assert files == ["frame-graph-64x96-fp32.onnx", "frame-graph-96x64-fp32.onnx"]
    model = onnx.load(str(tmp_path / "frame-graph-96x64-fp32.onnx"))
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert shapes["frame"] == [1, 96, 96]  # I420: H * 3/2 rows
    assert "op check OK" in capsys.readouterr().out


def test_export_options_make_the_graph_a_run_would_make(seed32_ckpt, tmp_path):
    """An integrator exporting for HD video gets BT.709 without asking (players' rule), and every
    option a run takes from its source or flags can be given; the file records the spec."""
    import argparse
    import json

    from p3m_live.export_cli import add_export_arguments, graph_specs

    p = argparse.ArgumentParser()
    add_export_arguments(p)
    hd, sd = graph_specs(p.parse_args(["--size", "1280x720", "--size", "640x360", "-o", "x"]), "fp16")
    assert (hd.matrix, sd.matrix, hd.full_range, hd.foreground) == ("bt709", "bt601", False, "estimate")
    out = tmp_path / "g.onnx"
    argv = ["export", "--size", "96x64", "--model-size", "32", "--precision", "fp32", "--weights", str(seed32_ckpt)]
    argv += ["--matrix", "bt709", "--full-range", "--temporal", "off", "--upsampler", "bilinear"]
    argv += ["--background", "blur", "--blur-strength", "8", "--foreground", "frame", "--erode", "2", "--fg-track"]
    argv += ["-o", str(out)]
    assert main(argv) == 0
    meta = {m.key: m.value for m in onnx.load(str(out)).metadata_props}
    spec = json.loads(meta["p3m_live.spec"])
    assert spec["matrix"] == "bt709" and spec["full_range"] and spec["temporal"] == "off"
    assert (spec["upsampler"], spec["blur_strength"], spec["foreground"], spec["erode"]) == ("bilinear", 8, "frame", 2)
    assert spec["graph_version"] >= 6
    model = onnx.load(str(out))
    assert [i.name for i in model.graph.input] == ["frame"]  # blur: no background; temporal off: no state used
    assert spec["foreground_track"] and "foreground" in [o.name for o in model.graph.output]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["export", "--size", "96x64", "-o", "x.onnx", "--weights", "/nonexistent.pth"], "weights file not found"),
        (["export", "--size", "97x64", "-o", "x.onnx"], "even"),
        (["export", "--size", "96x64", "--model-size", "33", "-o", "x.onnx"], "multiple of 32"),
        (["export", "--size", "big", "-o", "x.onnx"], "size must look like 1920x1080"),
        (["export", "--size", "96x64", "--size", "64x64", "-o", "x.onnx"], "need -o to be a folder"),
        (["export", "--size", "96x64", "--blur-strength", "0", "-o", "x.onnx"], "--blur-strength must be"),
        (["export", "--size", "96x64", "--light-wrap", "2", "-o", "x.onnx"], "light wrap must be from 0 to 1"),
        (
            ["export", "--size", "96x64", "--erode", "17", "-o", "x.onnx"],
            "erode must be a whole number of pixels from 0 to 16",
        ),
        (["in.mp4", "-o", "out.mp4", "--device", "gpu"], "device must be cpu, cuda or cuda:N, not 'gpu'"),
        pytest.param(
            ["build-engine", "--size", "96x64"],
            "build-engine needs TensorRT and pycuda",
            marks=pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is here"),
        ),
        (["matte", "in.jpg", "-o", "out", "--device", "cuda:one"], "device must be cpu, cuda or cuda:N"),
        (["in.mp4", "-o", "out.mp4", "--threads", "0"], "--threads: must be a whole number, 1 or more, not '0'"),
        (["matte", "in.jpg", "-o", "out", "--threads", "two"], "--threads: must be a whole number, 1 or more"),
        (["in.mp4", "-o", "out.mp4", "--batch", "-1"], "--batch: must be a whole number, 1 or more, not '-1'"),
        (["export", "--size", "96x64", "--batch", "0", "-o", "x.onnx"], "--batch: must be a whole number"),
        (["in.mp4", "-o", "out.mp4", "--duration", "nan"], "--duration: must be seconds, 0 or more"),  # (a traceback)
        (["in.mp4", "-o", "out.mp4", "--start", "-3"], "--start: must be seconds, 0 or more"),
        (["in.mp4", "-o", "out.mp4", "--fps", "inf"], "--fps: must be frames a second, more than 0"),  # (a traceback)
        (["in.mp4", "-o", "out.mp4", "--fps", "0"], "--fps: must be frames a second"),  # (ran, frames at 0 fps)
        (["--webcam", "--camera-fps", "-30"], "--camera-fps: must be frames a second"),
        (["in.mp4", "-o", "out.mp4", "--max-frames", "0"], "--max-frames: must be a whole number, 1 or more"),
        (["eval", "--data", ".", "--limit", "-2"], "--limit: must be a whole number, 1 or more"),  # (all but two)
    ],
)
def test_errors_are_one_line_exit_2(args, needle, seed32_ckpt, tmp_path):
    if "--weights" not in args:
        args = [*args, "--weights", str(seed32_ckpt)]
    r = _cli(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if "error" in line]) == 1


@pytest.mark.parametrize(
    "argv, cut",
    [
        (["in.mp4", "-o", "out.mp4", "--alpha", "a.mov"], "--alpha"),  # (--alpha-out)
        (["in.mp4", "-o", "out.mp4", "--backg", "red"], "--backg"),  # (--background)
        (["in.mp4", "-o", "out.mp4", "--conf", "c.toml"], "--conf"),  # (--config, read before the rest)
        (["matte", "in.jpg", "-o", "out", "--compos", "bg.jpg"], "--compos"),  # (--composite)
        (["export", "--size", "96x64", "-o", "x.onnx", "--prec", "fp16"], "--prec"),  # (--precision)
    ],
)
def test_options_are_never_taken_by_an_abbreviation(argv, cut, capsys):
    """No parser completes a cut option: one that did would change meaning, or fail, once
    another option starting the same way came."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"unrecognized arguments: {cut}" in capsys.readouterr().err


def test_weights_path_honours_cache_env(tmp_path):
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    r = _cli("weights", "path", env=env)
    assert r.returncode == 0
    assert r.stdout.strip() == str(tmp_path / "p3m-live" / "p3mnet_pretrained_on_p3m10k.pth")


def test_export_onto_a_full_disk_is_one_line_and_leaves_no_cut_graph(seed32_ckpt, small_disk, capsys):
    disk = small_disk("64k")  # (a P3M-Net graph is tens of MB)
    out = disk / "g.onnx"
    argv = ["export", "--size", "96x64", "--model-size", "32", "--weights", str(seed32_ckpt), "-o", str(out)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"p3m-live: error: the disk is full: g.onnx could not be written; free some space in {disk} "
        "or write to another disk"
    )
    assert not out.exists()
