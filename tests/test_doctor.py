"""p3m-live doctor: each check looks at the real machine, or at a sysfs tree built for the test."""

from __future__ import annotations

import os
from pathlib import Path

from p3m_live.cli import main
from p3m_live.doctor import check_animated_webp, check_cameras, check_cpu, check_engines, check_virtual_camera


def sysfs_tree(root: Path, devices: dict[str, tuple[str, str]], loaded: bool = True, exclusive: str = "Y") -> Path:
    """A sysfs tree: /sys/class/video4linux/<dev>/{name, device/driver -> drivers/<drv>/module}."""
    sysfs = root / "sys"
    for module in {drv for _, drv in devices.values()} | ({"v4l2loopback"} if loaded else set()):
        (sysfs / "module" / module / "parameters").mkdir(parents=True, exist_ok=True)
        drv = sysfs / "bus" / "platform" / "drivers" / module
        drv.mkdir(parents=True, exist_ok=True)
        if not (drv / "module").exists():
            os.symlink(sysfs / "module" / module, drv / "module")
    if loaded:
        (sysfs / "module" / "v4l2loopback" / "parameters" / "exclusive_caps").write_text(exclusive + "\n")
    for dev, (name, driver) in devices.items():
        d = sysfs / "class" / "video4linux" / dev
        (d / "device").mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        os.symlink(sysfs / "bus" / "platform" / "drivers" / driver, d / "device" / "driver")
    if not loaded:
        import shutil

        shutil.rmtree(sysfs / "module" / "v4l2loopback", ignore_errors=True)
    return sysfs


def test_camera_and_loopback_found(tmp_path):
    sysfs = sysfs_tree(tmp_path, {"video0": ("HD Webcam", "uvcvideo"), "video4": ("p3m-live", "v4l2loopback")})
    cams = check_cameras("linux", sysfs)
    assert cams[0].ok and cams[0].detail == "/dev/video0 (HD Webcam)"  # the loopback is not a camera
    vc = check_virtual_camera("linux", sysfs)
    assert vc.ok and "/dev/video4" in vc.detail


def test_loopback_without_exclusive_caps_is_flagged(tmp_path):
    sysfs = sysfs_tree(tmp_path, {"video4": ("p3m-live", "v4l2loopback")}, exclusive="N")
    vc = check_virtual_camera("linux", sysfs)
    assert not vc.ok and "exclusive_caps=1" in vc.detail and "modprobe -r v4l2loopback" in vc.fix


def test_nothing_there(tmp_path):
    sysfs = sysfs_tree(tmp_path, {}, loaded=False)
    assert not check_cameras("linux", sysfs)[0].ok
    vc = check_virtual_camera("linux", sysfs)
    assert not vc.ok and "modprobe v4l2loopback devices=1 exclusive_caps=1" in vc.fix
    assert check_virtual_camera("darwin", sysfs).ok  # OBS's camera: nothing to check from here
    cams = check_cameras("win32", sysfs, dshow=lambda: ["Integrated Camera"])  # DirectShow's list, a stand-in
    assert cams[0].ok and cams[0].detail == "0: Integrated Camera"
    assert "list_devices" in check_cameras("win32", sysfs, dshow=lambda: [])[0].detail


def test_engines_counted(tmp_path):
    assert not check_engines([tmp_path]).ok
    (tmp_path / "a.plan").write_bytes(b"x")
    assert check_engines([tmp_path]).detail.startswith("1 cached")


def test_doctor_on_this_machine(capsys):
    import importlib.util

    code = main(["doctor"])
    out = capsys.readouterr().out
    lines = {ln[4:22].strip(): ln for ln in out.splitlines() if ln[:3] in ("OK ", "-- ")}
    assert code == 0 and lines["torch"].startswith("OK ") and lines["encoder libx264"].startswith("OK ")
    has_trt = importlib.util.find_spec("tensorrt") is not None
    assert lines["tensorrt"].startswith("OK " if has_trt else "-- ")
    if not has_trt:
        assert "fix: pip install 'p3m-live[trt]'" in lines["tensorrt"]
    for name in (
        "GPU",
        "ORT providers",
        "cameras",
        "virtual camera",
        "preview window",
        "P3M-Net weights",
        "fast model",
    ):
        assert any(k.startswith(name) for k in lines), name
    assert f"{os.cpu_count()} logical cores" in lines["CPU"]
    from p3m_live.backends import choose_backend

    backend, device, why = choose_backend()
    assert f"--backend auto runs {backend} on {device} ({why})" in out.splitlines()


def test_one_core_is_not_enough_for_a_live_run():
    one, two = check_cpu(cores=1), check_cpu(cores=2)
    assert not one.ok and "--model fast" in one.line() and two.ok and "--threads N" in two.line()


def test_animated_webp_needs_an_opencv_with_imreadanimation():
    import types

    import cv2

    assert check_animated_webp().ok == hasattr(cv2, "imreadanimation")
    old = check_animated_webp(types.SimpleNamespace(__version__="4.8.0"))  # (a double: OpenCV before 4.11)
    assert not old.ok and "OpenCV 4.8.0 cannot read them" in old.detail and "opencv-python>=4.11" in old.fix


def test_microphones_listed_from_the_kernels_sound_cards(tmp_path):
    """/proc/asound as the kernel writes it (a built-in card with playback only, a USB one
    that records): the recording one is named as --audio opens it."""
    from p3m_live.doctor import check_microphones

    asound = tmp_path / "asound"
    asound.mkdir()
    (asound / "cards").write_text(
        " 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n"
        "                      HDA Intel PCH at 0xf7f10000 irq 32\n"
        " 1 [Device         ]: USB-Audio - USB Audio Device\n"
        "                      C-Media USB Audio Device at usb-0000:00:14.0-2, full speed\n"
    )
    (asound / "card0" / "pcm0p").mkdir(parents=True)
    (asound / "card1" / "pcm0c").mkdir(parents=True)
    mics = check_microphones("linux", tmp_path)
    assert mics.ok and mics.detail == "plughw:1,0 (USB Audio Device) (--audio DEVICE)"
    (asound / "card1" / "pcm0c").rmdir()
    assert not check_microphones("linux", tmp_path).ok
    assert "list_devices" in check_microphones("win32", tmp_path).detail
