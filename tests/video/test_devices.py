"""Cameras and microphones: the device each system's FFmpeg opens for --webcam and --audio."""

from __future__ import annotations

import pytest

from p3m_live.errors import P3MError
from p3m_live.video.devices import (
    list_dshow_cameras,
    microphone_url,
    open_webcam,
    parse_dshow_devices,
    webcam_options,
    webcam_url,
)


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
