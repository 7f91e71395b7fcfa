"""``p3m-live doctor``: what this machine has for p3m-live, line by line, with the fix.

GPU and virtual-camera set-up are the most common support problems of peer
tools, so each check says OK or what is missing and the exact command that
fixes it. The checks only look: nothing is installed, loaded or downloaded.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .video.devices import loopback_devices, v4l2_cameras
from .video.sinks import V4L2_HINT


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "OK " if self.ok else "-- "
        fix = f"  fix: {self.fix}" if self.fix and not self.ok else ""
        return f"{mark} {self.name:<18} {self.detail}{fix}"


PACKAGES = [
    # (import name, distribution, what for, fix)
    ("numpy", "numpy", "arrays", "pip install numpy"),
    ("torch", "torch", "the frame graph", "pip install torch (https://pytorch.org for the CUDA build)"),
    ("av", "av", "video decoding and encoding", "pip install av"),
    ("cv2", "opencv-python", "images and the preview", "pip install opencv-python"),
    ("tflite", "tflite", "importing the fast model", "pip install tflite"),
    ("onnxruntime", "onnxruntime", "the onnxruntime backend", "pip install 'p3m-live[onnx]'"),
    ("pyvirtualcam", "pyvirtualcam", "the virtual camera", "pip install 'p3m-live[cam]'"),
    ("pillow_heif", "pillow-heif", "iPhone HEIC photos", "pip install 'p3m-live[heic]'"),
    ("tensorrt", "tensorrt", "the tensorrt backend", "pip install 'p3m-live[trt]' (NVIDIA GPU, CUDA toolkit)"),
    ("pycuda", "pycuda", "the tensorrt backend's streams", "pip install pycuda (needs the CUDA toolkit)"),
]
CODECS = [("libx264", "H.264 output (-o .mp4)"), ("prores_ks", "ProRes 4444 (--alpha-out/--fg-out .mov)"),
          ("libvpx-vp9", "VP9 with alpha (.webm)"), ("ffv1", "lossless .mkv mattes")]  # fmt: skip


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, f"{platform.python_version()} ({sys.executable})", "use Python 3.10 or newer")


def check_cpu(cores: int | None = None) -> Check:
    """The CPU a run without a GPU computes on, and how to share it with a call app."""
    cores = cores or os.cpu_count() or 1
    detail = f"{cores} logical cores ({platform.machine()}); the matting takes one thread per physical core"
    fix = "a live run on one core: --model fast --camera-size 640x360"
    return Check("CPU", cores >= 2, detail + " (--threads N for fewer)", fix)


def check_packages() -> list[Check]:
    out = []
    for module, dist, what, fix in PACKAGES:
        version = _version(dist) or (_version("opencv-python-headless") if module == "cv2" else None)
        try:
            importlib.import_module(module)
            ok = True
        except Exception:  # noqa: BLE001 (a broken install is "missing" too)
            ok = False
        detail = f"{version or '?'} ({what})" if ok else f"not installed ({what})"
        out.append(Check(dist, ok, detail, fix))
    return out


def check_codecs() -> list[Check]:
    import av

    out = []
    for name, what in CODECS:
        try:
            av.codec.Codec(name, "w")
            out.append(Check(f"encoder {name}", True, what))
        except Exception:  # noqa: BLE001
            out.append(
                Check(
                    f"encoder {name}",
                    False,
                    f"missing from PyAV's FFmpeg ({what})",
                    "pip install --force-reinstall av (the PyPI wheels include it)",
                )
            )
    return out


def check_animated_webp(cv2=None) -> Check:
    """Animated WebP backgrounds are read by OpenCV's ``imreadanimation`` (4.11 on), as
    FFmpeg cannot decode them."""
    if cv2 is None:
        import cv2
    ok = hasattr(cv2, "imreadanimation")
    detail = f"OpenCV {cv2.__version__} reads them" if ok else f"OpenCV {cv2.__version__} cannot read them"
    return Check("animated WebP", ok, detail + " (--background sticker.webp)", "pip install 'opencv-python>=4.11'")


def check_torch_cuda() -> list[Check]:
    try:
        import torch
    except ImportError:
        return [Check("torch CUDA", False, "torch not installed", "pip install torch")]
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}, CUDA build {torch.version.cuda or 'none (CPU build)'}"
        return [
            Check(
                "GPU",
                False,
                f"no CUDA GPU visible ({build})",
                "on an NVIDIA machine: install the driver and a CUDA build of torch; or use --model fast",
            )
        ]
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append(
            Check(
                f"GPU {i}",
                True,
                f"{p.name}, compute capability {p.major}.{p.minor}, "
                f"{p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}",
            )
        )
    driver = _nvidia_smi_driver()
    found = driver is not None
    out.append(Check("NVIDIA driver", found, driver or "nvidia-smi not found", "install the NVIDIA driver"))
    return out


def _nvidia_smi_driver() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        r = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None


def check_onnxruntime() -> Check:
    try:
        import onnxruntime as ort
    except ImportError:
        return Check("ORT providers", False, "onnxruntime not installed", "pip install 'p3m-live[onnx]'")
    providers = ort.get_available_providers()
    return Check("ORT providers", True, ", ".join(providers))


def check_cameras(system: str = sys.platform, sys_root: Path = Path("/sys"), dshow=None) -> list[Check]:
    """``dshow``: what lists DirectShow's cameras (Windows; a stand-in in tests)."""
    if system.startswith("win"):
        from .video.devices import list_dshow_cameras

        names = (dshow or list_dshow_cameras)()
        if names:
            return [Check("cameras", True, ", ".join(f"{i}: {n}" for i, n in enumerate(names)))]
    if not system.startswith("linux"):
        fmt = "avfoundation" if system == "darwin" else "dshow"
        listing = f"ffmpeg -f {fmt} -list_devices true -i dummy"
        return [Check("cameras", True, f"not listed here; FFmpeg lists them: {listing}")]
    cams = v4l2_cameras(sys_root)
    if not cams:
        return [Check("cameras", False, "no camera found (/dev/video*)", "plug a camera in; or give a file or URL")]
    return [Check("cameras", True, ", ".join(f"{dev} ({name})" for dev, name in cams))]


def _capture_cards(proc_root: Path) -> list[tuple[str, str]]:
    """(ALSA device, card name) of every capture device the kernel lists (/proc/asound)."""
    cards = proc_root / "asound" / "cards"
    if not cards.is_file():
        return []
    out = []
    for line in cards.read_text().splitlines():
        number, _, rest = line.strip().partition(" ")
        if number.isdigit() and "]: " in rest:
            name = rest.split("]: ", 1)[1].split(" - ", 1)[-1].strip()
            for pcm in sorted((proc_root / "asound" / f"card{number}").glob("pcm*c")):
                out.append((f"plughw:{number},{pcm.name[3:-1]}", name))
    return out


def check_microphones(system: str = sys.platform, proc_root: Path = Path("/proc")) -> Check:
    """What ``--audio`` can record (Linux: the ALSA cards, named as PyAV's ALSA opens them)."""
    if not system.startswith("linux"):
        fmt, dummy = ("avfoundation", '""') if system == "darwin" else ("dshow", "dummy")
        return Check(
            "microphones", True, f"not listed here; FFmpeg lists them: ffmpeg -f {fmt} -list_devices true -i {dummy}"
        )
    cards = _capture_cards(proc_root)
    if not cards:
        return Check("microphones", False, "no sound card records here (/proc/asound)", "live runs go without --audio")
    return Check("microphones", True, ", ".join(f"{dev} ({name})" for dev, name in cards) + " (--audio DEVICE)")


def check_virtual_camera(system: str = sys.platform, sys_root: Path = Path("/sys")) -> Check:
    if not system.startswith("linux"):
        return Check("virtual camera", True, "pyvirtualcam uses the OBS Virtual Camera (OBS Studio 26 or newer)")
    module = sys_root / "module" / "v4l2loopback"
    if not module.is_dir():
        return Check("virtual camera", False, "v4l2loopback is not loaded", V4L2_HINT)
    devices = sorted(loopback_devices(sys_root))
    caps = module / "parameters" / "exclusive_caps"
    exclusive = caps.is_file() and set(caps.read_text().strip().replace("Y", "1").split(",")) & {"1"}
    if not devices:
        return Check("virtual camera", False, "v4l2loopback is loaded but made no device", V4L2_HINT)
    if not exclusive:
        return Check(
            "virtual camera",
            False,
            f"{', '.join(devices)} without exclusive_caps=1 (Chrome, Zoom, Teams will not list it)",
            "sudo modprobe -r v4l2loopback; " + V4L2_HINT,
        )
    return Check("virtual camera", True, f"v4l2loopback: {', '.join(devices)}")


def check_preview_window() -> Check:
    from .video.preview import NO_DISPLAY_FIX, display_problem

    problem = display_problem()
    if problem:
        return Check("preview window", False, problem, f"{NO_DISPLAY_FIX}; the virtual camera works without one")
    return Check("preview window", True, "a display is there (--preview)")


def check_weights() -> list[Check]:
    from .model.fast import GENERAL, LANDSCAPE
    from .model.fast_weights import fast_model_path
    from .model.weights import cached_weights_path, resolve_weights

    out = []
    try:
        p3m = resolve_weights(None, download=False)
        out.append(Check("P3M-Net weights", True, str(p3m)))
    except Exception:  # noqa: BLE001 (P3MError: missing)
        out.append(Check("P3M-Net weights", False, f"not at {cached_weights_path()}", "p3m-live weights fetch"))
    fast = [fast_model_path(v) for v in (GENERAL, LANDSCAPE)]
    ok = all(p.is_file() for p in fast)
    out.append(
        Check("fast model", ok, str(fast[0].parent) if ok else "not converted yet", "p3m-live weights fetch fast")
    )
    return out


def check_engines(roots: list[Path] | None = None) -> Check:
    """Plans where the engine store keeps them (and the user cache, where a checkout's
    store is engines/)."""
    from .model.weights import cache_dir
    from .trt.store import default_engine_dir

    roots = roots or list(dict.fromkeys([default_engine_dir(), cache_dir() / "engines"]))
    plans = [p for r in roots if r.is_dir() for p in r.glob("*.plan")]
    where = ", ".join(str(r) for r in roots)
    return Check(
        "TensorRT engines",
        bool(plans),
        f"{len(plans)} cached ({where})" if plans else f"none in {where}",
        "built on first use with --backend tensorrt, or ahead: the run's command line plus --prepare",
    )


def run_checks() -> list[Check]:
    return [
        check_python(),
        check_cpu(),
        *check_packages(),
        *check_codecs(),
        check_animated_webp(),
        *check_torch_cuda(),
        check_onnxruntime(),
        *check_cameras(),
        check_virtual_camera(),
        check_microphones(),
        check_preview_window(),
        *check_weights(),
        check_engines(),
    ]


def auto_choice() -> str:
    """What ``--backend auto`` runs on this machine, and why (seen here before a call, not during)."""
    from .backends import choose_backend

    try:
        backend, device, why = choose_backend()
    except ImportError as e:
        return f"nothing ({e.name} is missing)"
    return f"{backend} on {device} ({why})"


ESSENTIAL = {"python", "numpy", "torch", "av", "opencv-python", "encoder libx264"}


def doctor() -> int:
    """Print every check; exit 1 if something p3m-live cannot run without is missing."""
    checks = run_checks()
    for c in checks:
        print(c.line())
    missing = [c.name for c in checks if not c.ok and c.name in ESSENTIAL]
    print(f"\n--backend auto runs {auto_choice()}")
    print(
        f"{'missing essentials: ' + ', '.join(missing) if missing else 'p3m-live can run here'}; "
        f"{sum(c.ok for c in checks)} of {len(checks)} checks OK"
    )
    return 1 if missing else 0
