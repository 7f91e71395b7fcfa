"""Getting the fast model: MediaPipe's selfie segmenters, taken from the mediapipe wheel.

Installing mediapipe would pull opencv-contrib-python (which breaks opencv-python),
protobuf < 5 and jax, so pip downloads the one wheel without its dependencies into
a temporary folder; the two .tflite files are read out of it, checked against
their known SHA-256, converted to our own format in the user cache, and the rest
is deleted. The files are the same in every platform's wheel, so one specific
wheel is asked for, which works from any Python on any OS.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import P3MError
from ..spec import FAST_GENERAL as GENERAL
from ..spec import FAST_LANDSCAPE as LANDSCAPE
from .tflite_import import import_tflite
from .weights import cache_dir

MEDIAPIPE = "mediapipe==0.10.14"
WHEEL_FOLDER = "mediapipe/modules/selfie_segmentation"
SHA256 = {
    GENERAL: "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    LANDSCAPE: "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
}
PIP_ARGS = [
    "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.11",
    "--platform", "manylinux2014_x86_64", "--disable-pip-version-check", MEDIAPIPE,
]  # fmt: skip
FETCH_HINT = "run: p3m-live weights fetch fast (downloads the 35 MB mediapipe wheel from PyPI once)"


def fast_model_path(variant: str) -> Path:
    return cache_dir() / "fast" / f"{variant}.npz"


def resolve_fast_model(variant: str) -> Path:
    path = fast_model_path(variant)
    if not path.is_file():
        raise P3MError(f"the fast model is not installed; {FETCH_HINT}")
    return path


def download_wheel(folder: Path) -> Path:
    """The mediapipe wheel, downloaded by pip into ``folder``."""
    cmd = [sys.executable, "-m", "pip", *PIP_ARGS, "-d", str(folder)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(folder.glob("mediapipe-*.whl"))
    if result.returncode != 0 or not wheels:
        lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"pip exited with {result.returncode}"
        raise P3MError(
            f"cannot download {MEDIAPIPE} with pip ({why}); without network, download the wheel elsewhere "
            f"(pip download --no-deps {MEDIAPIPE}) and pass it: p3m-live weights fetch fast --wheel FILE"
        )
    return wheels[0]


def convert_wheel(wheel: Path) -> list[Path]:
    """Read both models out of ``wheel``, check and convert them into the cache."""
    from .fast import save_fast_model

    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as e:
        raise P3MError(f"{wheel} is not a wheel (zip) file ({e}); give the {MEDIAPIPE} wheel") from e
    out = []
    with archive:
        for variant in (GENERAL, LANDSCAPE):
            member = f"{WHEEL_FOLDER}/{variant}.tflite"
            try:
                data = archive.read(member)
            except KeyError as e:
                raise P3MError(f"{wheel.name} has no {member}: it is not the {MEDIAPIPE} wheel") from e
            if hashlib.sha256(data).hexdigest() != SHA256[variant]:
                raise P3MError(f"{member} in {wheel.name} is not the expected file (SHA-256 differs); use {MEDIAPIPE}")
            graph, arrays = import_tflite(data)
            graph["source"] = f"{MEDIAPIPE} {member} (Apache 2.0)"
            path = fast_model_path(variant)
            path.parent.mkdir(parents=True, exist_ok=True)
            out.append(save_fast_model(path, graph, arrays))
    return out


def fetch_fast_models(wheel: str | Path | None = None) -> list[Path]:
    """Both fast models in the cache: from ``wheel`` if given, else downloaded by pip."""
    if wheel is not None:
        if not Path(wheel).is_file():
            raise P3MError(f"wheel not found: {wheel}")
        return convert_wheel(Path(wheel))
    with tempfile.TemporaryDirectory(prefix="p3m-live-wheel-") as tmp:
        return convert_wheel(download_wheel(Path(tmp)))
