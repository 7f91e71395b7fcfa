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


@pytest.mark.parametrize(
    "args,needle",
    [
        (["export", "--size", "96x64", "-o", "x.onnx", "--weights", "/nonexistent.pth"], "weights file not found"),
        (["export", "--size", "97x64", "-o", "x.onnx"], "even"),
        (["export", "--size", "96x64", "--model-size", "33", "-o", "x.onnx"], "multiple of 32"),
        (["export", "--size", "big", "-o", "x.onnx"], "size must look like 1920x1080"),
        (["export", "--size", "96x64", "--size", "64x64", "-o", "x.onnx"], "need -o to be a folder"),
        (["in.mp4", "-o", "out.mp4", "--device", "gpu"], "device must be cpu, cuda or cuda:N, not 'gpu'"),
        pytest.param(
            ["build-engine", "--size", "96x64"],
            "build-engine needs TensorRT and pycuda",
            marks=pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is here"),
        ),
        (["matte", "in.jpg", "-o", "out", "--device", "cuda:one"], "device must be cpu, cuda or cuda:N"),
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


def test_weights_path_honours_cache_env(tmp_path):
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    r = _cli("weights", "path", env=env)
    assert r.returncode == 0
    assert r.stdout.strip() == str(tmp_path / "p3m-live" / "p3mnet_pretrained_on_p3m10k.pth")
