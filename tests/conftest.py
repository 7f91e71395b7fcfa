"""Shared fixtures: the shared reference data and one session-scoped random checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# Downloads worth keeping between test sessions (the mediapipe wheel, 35 MB): the real user cache.
TEST_DOWNLOADS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "p3m-live-tests"
P3M_REF = SHARED / "p3m_reference"
PORTRAITS = SHARED / "data" / "portraits"


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Exports cached once per session under a temporary cache; no user config read."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    monkeypatch.delenv("P3M_LIVE_CONFIG", raising=False)
    monkeypatch.delenv("P3M_LIVE_WEIGHTS", raising=False)


@pytest.fixture
def terminal():
    """A pseudo-terminal (``Terminal``), POSIX only."""
    if os.name != "posix":
        pytest.skip("pseudo-terminals are POSIX")
    from tests.terminal import Terminal

    t = Terminal()
    yield t
    t.close()


@pytest.fixture
def hung_up_terminal(terminal):
    """A terminal that hung up: its stream fails every write (EIO)."""
    terminal.hang_up()
    return terminal.stream


def torch_args(ckpt: Path, model_size: int = 64) -> list[str]:
    """Command-line options for a quick P3M-Net run: the test checkpoint, a small model, torch."""
    return ["--weights", str(ckpt), "--model-size", str(model_size), "--backend", "torch"]


def make_checkpoint(seed: int, out: Path) -> Path:
    """Run the shared reference script that writes an official-format random checkpoint."""
    subprocess.run([sys.executable, str(P3M_REF / "make_checkpoint.py"), "--seed", str(seed), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def seed32_ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(32, tmp_path_factory.mktemp("ckpt") / "seed32.pth")


@pytest.fixture
def run(seed32_ckpt):
    """``p3m-live`` in this process with the test checkpoint and a small model; later flags win."""
    from p3m_live.cli import main

    def go(*argv: str) -> int:
        return main(["--weights", str(seed32_ckpt), "--model-size", "64", "-q", *map(str, argv)])

    return go


@pytest.fixture(scope="session")
def seed32_ref() -> dict[str, np.ndarray]:
    with np.load(P3M_REF / "seed32_outputs.npz") as z:
        return dict(z)


@pytest.fixture(scope="session")
def seed32_state(seed32_ckpt):
    import torch

    return torch.load(seed32_ckpt, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="session")
def p3m_native(seed32_ckpt):
    from p3m_live.model import load_p3mnet

    return load_p3mnet(seed32_ckpt, unpool="native")


@pytest.fixture(scope="session")
def p3m_portable(seed32_ckpt):
    from p3m_live.model import load_p3mnet

    return load_p3mnet(seed32_ckpt, unpool="portable")


@pytest.fixture(scope="session")
def portrait_paths() -> list[tuple[Path, Path]]:
    """(image, alpha) pairs of the shared portraits, sorted by name."""
    pairs = []
    for img in sorted((PORTRAITS / "original").glob("*.jpg")):
        alpha = PORTRAITS / "alpha" / (img.stem + ".png")
        if alpha.is_file():
            pairs.append((img, alpha))
    assert pairs, f"no shared portraits under {PORTRAITS}"
    return pairs


@pytest.fixture(scope="session")
def mediapipe_wheel() -> Path:
    """The mediapipe 0.10.14 wheel, fetched once with pip by our own download code and kept."""
    from p3m_live.model.fast_weights import download_wheel

    TEST_DOWNLOADS.mkdir(parents=True, exist_ok=True)
    found = sorted(TEST_DOWNLOADS.glob("mediapipe-0.10.14-*.whl"))
    return found[0] if found else download_wheel(TEST_DOWNLOADS)


@pytest.fixture(scope="session")
def fast_models(mediapipe_wheel, tmp_path_factory) -> dict[str, Path]:
    """Both fast models converted into this session's cache (where every test looks)."""
    from p3m_live.model.fast_weights import convert_wheel

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
        paths = convert_wheel(mediapipe_wheel)
    return {p.stem: p for p in paths}


@pytest.fixture
def small_disk(tmp_path):
    """Mount a real file system of a given size (tmpfs), to fill up; where this user cannot
    mount one (not root), the test is skipped."""
    mounted = []

    def mount(size: str):
        disk = tmp_path / f"disk{len(mounted)}"
        disk.mkdir()
        mounting = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)]
        if subprocess.run(mounting, capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", str(disk)], check=True)
