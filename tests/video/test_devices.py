"""Cameras and microphones: the device each system's FFmpeg opens for --webcam and --audio."""

from __future__ import annotations

import contextlib
import logging

import pytest

from p3m_live.errors import P3MError
from p3m_live.video import devices
from p3m_live.video.devices import (
    list_dshow_cameras,
    list_dshow_modes,
    microphone_url,
    mode_options,
    open_microphone,
    open_webcam,
    parse_avfoundation_modes,
    parse_dshow_devices,
    parse_dshow_modes,
    webcam_options,
    webcam_url,
)
from p3m_live.video.sources import require_input_format


def test_webcam_urls_and_options():
    assert webcam_url("0", "linux") == ("/dev/video0", "v4l2")
    assert webcam_url("/dev/video4", "linux") == ("/dev/video4", "v4l2")
    assert webcam_url("1", "darwin") == ("1:none", "avfoundation")
    assert webcam_url("Integrated Camera", "win32") == ("video=Integrated Camera", "dshow")
    # DirectShow opens by name only: an index picks the Nth camera it lists (a stand-in lister here)
    listed = lambda: ["Integrated Camera", "OBS Virtual Camera"]  # noqa: E731
    assert webcam_url("1", "win32", cameras=listed) == ("video=OBS Virtual Camera", "dshow")
    assert webcam_url("5", "win32", cameras=listed) == ("video=5", "dshow")  # fails later, naming the cameras
    hd = webcam_options((1280, 720), 30, "linux")
    assert hd == {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}
    assert "input_format" not in webcam_options((640, 480), None, "linux")
    assert "framerate" not in webcam_options(None, None, "linux")  # (v4l2: the camera's own)
    assert webcam_options(None, None, "darwin") == {"framerate": "30", "pixel_format": "nv12"}  # not 29.97
    assert webcam_options((1280, 720), 60, "darwin") == {
        "video_size": "1280x720",
        "framerate": "60",
        "pixel_format": "nv12",
    }


# AVFoundation's list, as FFmpeg logs it when a rate or size is refused (from users' reports:
# a built-in camera's ranges, and a USB device's single rates).
MAC_LOG = [
    "Selected framerate (29.970030) is not supported by the device.\n",
    "Supported modes:\n",
    "  640x480@[60.000240 60.000240]fps\n",
    "  640x480@[30.000030 30.000030]fps\n",
    "  1280x720@[30.000030 30.000030]fps\n",
    "[avfoundation @ 0x123456789]   1920x1080@[1.000000 30.000000]fps\n",
    "Input/output error\n",
]


def test_a_mac_cameras_modes_are_read_and_one_is_chosen():
    modes = parse_avfoundation_modes(MAC_LOG)
    assert [m[:4] for m in modes] == [(640, 480, 60.00024, 60.00024), (640, 480, 30.00003, 30.00003),
                                      (1280, 720, 30.00003, 30.00003), (1920, 1080, 30.0, 30.0)]  # fmt: skip
    # AVFoundation takes a mode's highest rate only: the one nearest what was asked, to 6 places.
    assert mode_options(modes, {"framerate": "30"}) == {"framerate": "30.000030", "video_size": "1280x720"}
    asked = {"framerate": "60", "video_size": "640x480"}
    assert mode_options(modes, asked) == {"framerate": "60.000240", "video_size": "640x480"}
    asked = {"framerate": "25", "video_size": "1920x1080"}
    assert mode_options(modes, asked) == {"framerate": "30.000000", "video_size": "1920x1080"}
    assert mode_options(modes, {"framerate": "30", "video_size": "800x600"}) is None


# DirectShow's list_options output as FFmpeg 7 logs it (the codec and the sizes in two calls,
# colour details after), from a capture card and a webcam.
DSHOW_LOG = [
    "DirectShow video device options (from video devices)\n",
    ' Pin "Capture" (alternative pin name "0")\n',
    "  pixel_format=yuyv422",
    "  min s=640x480 fps=5 max s=640x480 fps=30",
    "\n",
    "  vcodec=mjpeg",
    "  min s=1280x720 fps=5 max s=1280x720 fps=30",
    " (pc, bt470bg/bt709/unknown, center)",
    "\n",
    "  pixel_format=yuyv422",
    "  min s=1280x720 fps=5 max s=1280x720 fps=10",
    "\n",
    "  vcodec=mjpeg",
    "  min s=1920x1080 fps=5 max s=1920x1080 fps=30\n",
]


def test_a_windows_cameras_modes_are_read_and_one_is_chosen():
    modes = parse_dshow_modes(DSHOW_LOG)
    assert modes == [(640, 480, 5, 30, "yuyv422"), (1280, 720, 5, 30, "mjpeg"), (1280, 720, 5, 10, "yuyv422"),
                     (1920, 1080, 5, 30, "mjpeg")]  # fmt: skip
    # DirectShow takes any rate in a mode's range: 60 asked at 720p is its MJPEG mode's 30.
    asked = {"video_size": "1280x720", "framerate": "60"}
    assert mode_options(modes, asked) == {"video_size": "1280x720", "framerate": "30.000000", "vcodec": "mjpeg"}
    asked = {"video_size": "640x480", "framerate": "15", "vcodec": "mjpeg"}  # raw only at 480p
    assert mode_options(modes, asked) == {"video_size": "640x480", "framerate": "15.000000", "pixel_format": "yuyv422"}
    assert list_dshow_modes("video=Integrated Camera") == []  # (no DirectShow on this machine: no error)


class DshowCameraDouble:
    """Stands in for AVSource on a Windows camera: only DSHOW_LOG's modes open."""

    opened: list[dict] = []

    def __init__(self, url, *, format, options, **kwargs):
        DshowCameraDouble.opened.append(dict(options))
        if options.get("framerate") not in ("30.000000", "10.000000"):
            raise P3MError(f"camera {url} cannot be opened as video (I/O error)")


def test_a_windows_camera_that_refuses_a_rate_is_opened_in_its_own_mode(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="p3m_live")
    monkeypatch.setattr(devices, "AVSource", DshowCameraDouble)
    monkeypatch.setattr(devices, "list_dshow_modes", lambda url: parse_dshow_modes(DSHOW_LOG))
    monkeypatch.setattr(devices, "list_dshow_cameras", lambda: ["Integrated Camera"])
    DshowCameraDouble.opened.clear()
    assert isinstance(open_webcam("0", (1280, 720), 60, system="win32"), DshowCameraDouble)
    assert DshowCameraDouble.opened[-1] == {"video_size": "1280x720", "framerate": "30.000000", "vcodec": "mjpeg"}
    assert any("opening it at 1280x720 30 fps" in r.getMessage() for r in caplog.records)
    with pytest.raises(P3MError, match="has no 800x600 mode; its sizes are 640x480, 1280x720, 1920x1080: pass one"):
        open_webcam("0", (800, 600), system="win32")


class MacCameraDouble:
    """Stands in for AVSource on a Mac camera (no AVFoundation here): refuses all but its modes."""

    opened: list[dict] = []

    def __init__(self, url, *, format, options, **kwargs):
        MacCameraDouble.opened.append(dict(options))
        if options.get("framerate") not in ("30.000030", "60.000240", "30.000000"):
            raise P3MError(f"camera {url} cannot be opened as video (Input/output error)")


class LogDouble:
    """Stands in for ffmpeg_log: the block 'logs' AVFoundation's list of modes."""

    def __call__(self):
        return contextlib.nullcontext(list(MAC_LOG))


def test_a_mac_camera_that_refuses_a_rate_is_opened_in_its_own_mode(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="p3m_live")
    monkeypatch.setattr(devices, "AVSource", MacCameraDouble)
    monkeypatch.setattr(devices, "ffmpeg_log", LogDouble())
    MacCameraDouble.opened.clear()
    assert isinstance(open_webcam("0", system="darwin"), MacCameraDouble)
    nv12 = {"pixel_format": "nv12"}
    assert MacCameraDouble.opened == [
        {"framerate": "30", **nv12},
        {"framerate": "30.000030", "video_size": "1280x720", **nv12},
    ]
    assert any("is not one of its modes; opening it at 1280x720 30 fps" in r.getMessage() for r in caplog.records)
    with pytest.raises(P3MError, match="has no 800x600 mode; its sizes are 640x480, 1280x720, 1920x1080: pass one"):
        open_webcam("0", (800, 600), system="darwin")


def test_a_mac_camera_here_is_one_line_saying_ffmpeg_has_no_avfoundation():
    """The real path on this Linux machine, whose FFmpeg has no AVFoundation (nor a user's
    mistyped --format): one line, not PyAV's ValueError."""
    with pytest.raises(P3MError, match="this FFmpeg has no 'avfoundation' input format; check --format"):
        open_webcam("0", system="darwin")


def test_directshow_device_lists_of_both_ffmpeg_styles():
    """FFmpeg 4.4+ writes one line per device with its kind; older ones write headings. Audio
    devices and the alternative names are not cameras. (On this Linux machine the real listing
    finds no dshow demuxer and gives an empty list, without an error.)"""
    new = [
        '"Integrated Camera" (video)\n',
        '  Alternative name "@device_pnp_\\\\?\\usb#vid_04f2"\n',
        '"Microphone (Realtek(R) Audio)" (audio)\n',
        '"OBS Virtual Camera" (video)\n',
    ]
    old = [
        "DirectShow video devices (some may be both video and audio devices)\n",
        '  "Integrated Camera"\n',
        '     Alternative name "@device_pnp_\\\\?\\usb#vid_04f2"\n',
        "DirectShow audio devices\n",
        '  "Microphone (Realtek(R) Audio)"\n',
    ]
    assert parse_dshow_devices(new) == ["Integrated Camera", "OBS Virtual Camera"]
    assert parse_dshow_devices(old) == ["Integrated Camera"]
    assert list_dshow_cameras() == []


def test_no_camera_says_how_to_list_them():
    with pytest.raises(P3MError, match="list the cameras"):
        open_webcam("/dev/video-p3m-missing")


def test_microphone_urls():
    assert microphone_url(None, "linux") == ("default", "alsa")
    assert microphone_url("plughw:1,0", "linux") == ("plughw:1,0", "alsa")
    assert microphone_url(None, "darwin") == (":0", "avfoundation")
    assert microphone_url("2", "darwin") == (":2", "avfoundation")
    assert microphone_url("Microphone (USB)", "win32") == ("audio=Microphone (USB)", "dshow")
    with pytest.raises(P3MError, match="name the microphone"):
        microphone_url(None, "win32")


def test_an_input_format_ffmpeg_lacks_is_one_line():
    with pytest.raises(P3MError, match="no 'nosuchfmt' input format; check --audio-format"):
        open_microphone("x", "nosuchfmt")
    for name in ("v4l2", "video4linux2", "alsa", "lavfi", "mp4"):  # (an alias, as FFmpeg lists "video4linux2,v4l2")
        require_input_format(name, "--format")


class CaptureCardDouble:
    """Stands in for AVSource on an HDMI capture card (no such device here): raw frames only."""

    opened: list[dict] = []
    refuses = "input_format"  # the option it cannot open with (MJPEG)

    def __init__(self, url, *, format, options, **kwargs):
        CaptureCardDouble.opened.append(dict(options))
        if self.refuses in options:
            raise P3MError(f"camera {url} cannot be opened as video (Invalid argument)")


def test_a_camera_without_mjpeg_is_read_raw(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="p3m_live")
    monkeypatch.setattr(devices, "AVSource", CaptureCardDouble)
    CaptureCardDouble.opened.clear()
    assert isinstance(open_webcam("2", (1920, 1080), 60, system="linux"), CaptureCardDouble)
    assert CaptureCardDouble.opened == [
        {"video_size": "1920x1080", "framerate": "60", "input_format": "mjpeg"},
        {"video_size": "1920x1080", "framerate": "60"},
    ]
    assert any("no MJPEG at 1920x1080 60 fps; reading it raw" in r.getMessage() for r in caplog.records)


class SmallCameraDouble(CaptureCardDouble):
    """A DirectShow camera that refuses any size it lacks (it has only its own 640x480)."""

    refuses = "video_size"


def test_a_camera_is_asked_for_a_calls_720p_and_else_opened_in_its_own_mode(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="p3m_live")
    CaptureCardDouble.opened.clear()
    monkeypatch.setattr(devices, "AVSource", CaptureCardDouble)
    open_webcam("0", system="linux")  # no --camera-size: 720p, 30 fps, MJPEG first
    assert CaptureCardDouble.opened[0] == {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}
    CaptureCardDouble.opened.clear()
    monkeypatch.setattr(devices, "AVSource", SmallCameraDouble)
    listed = lambda: ["Integrated Camera"]  # noqa: E731
    monkeypatch.setattr(devices, "list_dshow_cameras", listed)
    open_webcam("Integrated Camera", system="win32")
    hd = {"video_size": "1280x720", "framerate": "30"}
    assert CaptureCardDouble.opened == [{**hd, "vcodec": "mjpeg"}, hd, {}]
    assert any("no MJPEG at 1280x720 30 fps; reading it in its own mode" in r.getMessage() for r in caplog.records)
    CaptureCardDouble.opened.clear()
    with pytest.raises(P3MError, match="cannot be opened"):  # asked for a size: no quiet other size
        open_webcam("Integrated Camera", (1920, 1080), system="win32")
    assert [o.get("video_size") for o in CaptureCardDouble.opened] == ["1920x1080", "1920x1080"]


def test_a_missing_hd_camera_says_why_once_with_the_hint():
    """The real path: no /dev/video-p3m-missing, with MJPEG asked and then without."""
    with pytest.raises(P3MError, match="no such file or device.*v4l2-ctl --list-devices") as e:
        open_webcam("/dev/video-p3m-missing", (1280, 720))
    assert "\n" not in str(e.value)


def test_a_virtual_camera_given_as_the_webcam_is_named_and_the_cameras_listed(tmp_path):
    """Where v4l2loopback was loaded before the camera was plugged in, /dev/video0 is the
    virtual camera itself: the error says so and names the cameras (sysfs built for the test;
    no /dev/video0 here, so the open fails for real)."""
    from tests.test_doctor import sysfs_tree

    sysfs = sysfs_tree(tmp_path, {"video0": ("p3m-live", "v4l2loopback"), "video2": ("HD Webcam", "uvcvideo")})
    virtual = r"/dev/video0 is a virtual camera \(v4l2loopback\); the cameras here are /dev/video2 \(HD Webcam\)"
    with pytest.raises(P3MError, match=virtual + ": pass --webcam N or a device"):
        open_webcam("0", system="linux", sys_root=sysfs)
    with pytest.raises(P3MError, match=r"; the cameras here are /dev/video2 \(HD Webcam\)") as e:
        open_webcam("5", system="linux", sys_root=sysfs)
    assert "virtual camera" not in str(e.value)
