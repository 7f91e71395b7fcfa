"""Bad input never crashes or hangs the process; runs touch no network and write only what was asked."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import torch_args
from tests.media import make_clip, make_hdr_clip, make_interlaced_clip, probe

DRIVER = Path(__file__).with_name("cli_driver.py")


def _drive(cases: list[list[str]], tmp_path: Path, *flags: str, timeout: float = 300) -> tuple[list[int], str]:
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    r = subprocess.run(
        [sys.executable, str(DRIVER), str(spec), *flags], capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )
    codes = [int(line.split("\t")[0]) for line in r.stdout.splitlines() if "\t" in line]
    died = f"the process died (code {r.returncode}):\n{r.stderr[-3000:]}"
    assert r.returncode == 0 and len(codes) == len(cases), died
    return codes, r.stderr


def test_fuzz_inputs_and_options(tmp_path, fast_models):
    rng = random.Random(7)
    clip = make_clip(tmp_path / "real.mp4", frames=10)
    data = clip.read_bytes()
    inputs = []
    for i, n in enumerate([0, 1, 100, 5000, 200_000]):
        p = tmp_path / f"noise{i}.mp4"
        p.write_bytes(np.random.default_rng(i).bytes(n))
        inputs.append(p)
    for frac in (0.05, 0.3, 0.6, 0.95):
        p = tmp_path / f"cut{int(frac * 100)}.mp4"
        p.write_bytes(data[: int(len(data) * frac)])
        inputs.append(p)
    flipped = bytearray(data)
    for k in rng.sample(range(200, len(data)), 50):
        flipped[k] ^= 0xFF
    (tmp_path / "flipped.mp4").write_bytes(bytes(flipped))
    inputs.append(tmp_path / "flipped.mp4")
    hdr = make_hdr_clip(tmp_path / "hlg.mp4", np.full((32, 48, 3), 40000, np.uint16), frames=4, codec="libx265")
    (tmp_path / "hlg_cut.mp4").write_bytes(hdr.read_bytes()[: hdr.stat().st_size * 2 // 3])
    inputs += [hdr, tmp_path / "hlg_cut.mp4"]
    ts = make_clip(tmp_path / "camcorder.ts", frames=10)  # MPEG-TS with ADTS audio, whole, joined and cut
    interlaced = make_interlaced_clip(tmp_path / "interlaced.mp4", frames=6)
    (tmp_path / "joined.ts").write_bytes(ts.read_bytes() * 2)
    for whole in (ts, interlaced, tmp_path / "joined.ts"):
        half = tmp_path / f"half_{whole.name}"
        half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        inputs += [whole, half]
    cases = [[str(p), "-o", str(tmp_path / f"out{i}.mp4"), "--model", "fast", "-q"] for i, p in enumerate(inputs)]
    vocab = [
        "-o",
        "--crf",
        "--preset",
        "--background",
        "--model-size",
        "--batch",
        "--backend",
        "--model",
        "--webcam",
        "--live",
        "--offline",
        "--fps",
        "--alpha-out",
        "--fg-out",
        "--config",
        "--max-frames",
        "--duration",
        "--start",
        "--downscale",
        "0.3",
        "-5",
        "0",
        "abc",
        "#zz",
        "blur:0",
        "none",
        "1e9",
        "",
        "nan",
        "x.mp4",
        str(clip),
        "--weights",
        "--camera-size",
        "0x0",
        "--temporal",
        "doctor",
        "--deinterlace",
        "field",
        "--background-fit",
        "contain",
        "--rotate",
        "90",
        "--mirror",
        "--auto-frame",
        "x.png",
        str(tmp_path / "interlaced.mp4"),
    ]
    for _ in range(30):
        argv = [rng.choice(vocab) for _ in range(rng.randint(1, 6))]
        if "--webcam" in argv or "--live" in argv:
            argv += ["--duration", "0.5"]
        cases.append(argv)
    codes, stderr = _drive(cases, tmp_path)
    assert set(codes) <= {0, 1, 2}, list(zip(codes, cases))
    assert "Traceback" not in stderr
    # Every broken file is refused in one line, or converted as far as it goes.
    for code, argv in zip(codes[: len(inputs)], cases):
        out = Path(argv[2])
        assert code == 2 or (code == 0 and len(probe(out)["times"]) > 0), argv
    assert not list(tmp_path.glob("*.partial*"))


@pytest.mark.parametrize(
    "size, codes, out_size",
    [((1, 1), 2, None), ((95, 63), 0, (94, 62)), ((4097, 64), 0, (4096, 64))],
)
def test_odd_sizes(tmp_path, fast_models, size, codes, out_size):
    clip = make_clip(tmp_path / "odd.mkv", frames=2, size=size, codec="ffv1", pix_fmt="yuv444p", audio_rate=None)
    out = tmp_path / "out.mp4"
    got, stderr = _drive([[str(clip), "-o", str(out), "--model", "fast", "-q"]], tmp_path)
    assert got == [codes], stderr
    if out_size:
        assert probe(out)["sizes"] == {out_size}
    else:
        assert "at least 2x2" in stderr


def test_no_network_and_nothing_written_but_the_output(tmp_path, fast_models, seed32_ckpt):
    """Both models run with every socket refused; only the asked-for files appear."""
    (tmp_path / "in").mkdir()
    clip = make_clip(tmp_path / "in" / "talk.mp4", frames=6)
    outdir = tmp_path / "out"
    outdir.mkdir()
    cache = Path(os.environ["XDG_CACHE_HOME"])
    before = {p for p in cache.rglob("*") if p.is_file()}
    cases = [
        [str(clip), "-o", str(outdir / "fast.mp4"), "--model", "fast", "-q"],
        [
            str(clip),
            "-o",
            str(outdir / "p3m.mp4"),
            "--alpha-out",
            str(outdir / "matte.mov"),
            *torch_args(seed32_ckpt),
            "-q",
        ],
    ]
    codes, stderr = _drive(cases, tmp_path, "--block-network")
    assert codes == [0, 0], stderr
    assert "NETWORK" not in stderr
    assert sorted(p.name for p in outdir.iterdir()) == ["fast.mp4", "matte.mov", "p3m.mp4"]
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["talk.mp4"]
    new = {p for p in cache.rglob("*") if p.is_file()} - before
    assert not [p for p in new if p.suffix.lower() in (".mp4", ".mov", ".png", ".jpg", ".mkv", ".webm", ".npy")]


def test_the_network_block_works(tmp_path):
    """The hook does refuse a socket, so the test above proves something."""
    code = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)"
    script = tmp_path / "try.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {str(DRIVER.parent)!r}); from cli_driver import block_network\n"
        f"sys.addaudithook(block_network)\n{code}\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "NETWORK socket" in r.stderr
