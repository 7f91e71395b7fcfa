"""Helpers shared by the scripts in tools/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKE_CKPT = ROOT.parent / "shared" / "p3m_reference" / "make_checkpoint.py"


def random_weights(folder: Path, seed: int = 32) -> Path:
    """A random checkpoint in the official format (timings do not depend on the values).

    Uses ../shared/p3m_reference/make_checkpoint.py where it exists; a GPU machine
    may not have ../shared, so then a seeded randomly initialised network is saved.
    """
    path = folder / "random.pth"
    if MAKE_CKPT.is_file():
        subprocess.run([sys.executable, str(MAKE_CKPT), "--seed", str(seed), str(path)], check=True)
        return path
    import torch

    from p3m_live.model import P3MNet

    torch.manual_seed(seed)
    torch.save({"state_dict": P3MNet().state_dict()}, path)
    return path
