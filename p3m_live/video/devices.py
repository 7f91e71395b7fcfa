"""Cameras and microphones: which device ``--webcam`` and ``--audio`` name on each system,
and how FFmpeg opens it (v4l2 and ALSA on Linux, AVFoundation on macOS, DirectShow on
Windows). Cameras are read as :class:`~p3m_live.video.sources.AVSource`; a microphone is
a :class:`SoundSource`, whose packets go to a live run's file and stream outputs.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import av

from ..errors import P3MError, reason
from .sources import STALL, AVSource, require_input_format

log = logging.getLogger("p3m_live")

ALSA_CONFIG = "/usr/share/alsa/alsa.conf"  # the system's ALSA configuration (where the cards are named)


def parse_dshow_devices(lines: Sequence[str]) -> list[str]:
    """The video devices in FFmpeg's DirectShow device list, by name, in its order.

    FFmpeg 4.4 and later print one line per device, ``"Integrated Camera" (video)``;
    older ones print a "DirectShow video devices" heading, then one quoted name per
    line (each followed by an "Alternative name" line), then the audio heading."""
    names: list[str] = []
    section = None
    for line in lines:
        text = line.strip()
        if "DirectShow video devices" in text:
            section = "video"
        elif "DirectShow audio devices" in text:
            section = "audio"
        elif "Alternative name" not in text and text.count('"') >= 2:
            name = text[text.index('"') + 1 : text.rindex('"')]
            kind = text[text.rindex('"') + 1 :].strip()
            if kind.startswith("(video") or (kind == "" and section == "video"):
                names.append(name)
    return names


@contextmanager
def ffmpeg_log() -> Iterator[list[str]]:
    """FFmpeg's log lines (INFO and up) while the block runs, in the list it gives, filled
    when the block ends: where device lists and a camera's modes are written."""
    import av.logging

    lines: list[str] = []
    level = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        with av.logging.Capture(local=False) as logs:
            try:
                yield lines
            finally:
                lines.extend(entry[2] if isinstance(entry, tuple) else entry.message for entry in logs)
    finally:
        av.logging.set_level(level)


def list_dshow_cameras() -> list[str]:
    """The cameras DirectShow has, by name (Windows; empty elsewhere): FFmpeg prints its list
    to the log when asked to open the device list, which is captured here."""
    with ffmpeg_log() as lines:
        try:
            av.open("dummy", format="dshow", options={"list_devices": "true"}).close()
        except (av.error.FFmpegError, ValueError, OSError):
            pass  # the listing always ends in an error: "dummy" is no device
    return parse_dshow_devices(lines)


def v4l2_devices(sys_root: Path = Path("/sys")) -> list[tuple[str, str]]:
    """(device, name) of every V4L2 device the kernel lists (Linux)."""
    base = sys_root / "class" / "video4linux"
    if not base.is_dir():
        return []
    out = []
    for d in sorted(base.iterdir()):
        name = (d / "name").read_text().strip() if (d / "name").is_file() else "?"
        out.append((f"/dev/{d.name}", name))
    return out


def loopback_devices(sys_root: Path = Path("/sys")) -> set[str]:
    """Devices made by v4l2loopback (virtual cameras): their sysfs driver link names the module."""
    found = set()
    base = sys_root / "class" / "video4linux"
    for dev, _ in v4l2_devices(sys_root):
        driver = base / Path(dev).name / "device" / "driver"
        module = driver / "module"
        target = module.resolve().name if module.exists() else (driver.resolve().name if driver.exists() else "")
        if "v4l2loopback" in target or "v4l2 loopback" in target:
            found.add(dev)
    return found


def v4l2_cameras(sys_root: Path = Path("/sys")) -> list[tuple[str, str]]:
    """(device, name) of the V4L2 devices that are not virtual cameras."""
    loopback = loopback_devices(sys_root)
    return [(dev, name) for dev, name in v4l2_devices(sys_root) if dev not in loopback]


def webcam_url(device: str, system: str = sys.platform, cameras=list_dshow_cameras) -> tuple[str, str]:
    """(url, demuxer) for ``--webcam DEVICE``: an index or a device name/path. DirectShow
    opens cameras by name only, so on Windows an index N picks the Nth camera it lists."""
    if system.startswith("linux"):
        return (f"/dev/video{device}" if device.isdigit() else device), "v4l2"
    if system == "darwin":
        return (f"{device}:none" if device.isdigit() else device), "avfoundation"
    if system.startswith("win"):
        if device.isdigit():
            names = cameras()
            device = names[int(device)] if int(device) < len(names) else device
        return (device if device.startswith("video=") else f"video={device}"), "dshow"
    raise P3MError(f"webcams are not supported on {system}; give a video file or a stream URL")


def webcam_options(size: tuple[int, int] | None, fps: float | None, system: str = sys.platform) -> dict[str, str]:
    """Capture options: size, rate, and MJPEG at 720p and up (raw YUYV over USB 2 caps
    most cameras at 5-10 fps there). On macOS the rate is 30 unless asked: AVFoundation
    takes only a mode's highest rate, within 0.01, and FFmpeg's default, 29.97, is none
    of a built-in camera's ("Selected framerate (29.970030) is not supported"). Its pixel
    format is NV12, which Mac cameras have and the frame graph takes as it is (FFmpeg's
    default, yuv420p, they lack: FFmpeg then picks packed 4:2:2, to be converted)."""
    opts: dict[str, str] = {}
    if size:
        opts["video_size"] = f"{size[0]}x{size[1]}"
    if fps or system == "darwin":
        opts["framerate"] = f"{fps or 30:g}"
    if system == "darwin":
        opts["pixel_format"] = "nv12"  # (one it lacks is not an error: FFmpeg picks another)
    elif size and size[0] * size[1] >= 1280 * 720:
        opts["input_format" if system.startswith("linux") else "vcodec"] = "mjpeg"
    return opts


class Mode(NamedTuple):
    """One way a camera can send: a size, the frame rates it takes, and (DirectShow's) its
    codec: "mjpeg", or a raw pixel format."""

    width: int
    height: int
    low: float
    high: float
    codec: str | None = None


class NoSuchMode(P3MError):
    """The camera is there, but has no mode of the size asked for."""


AVFOUNDATION_MODE = re.compile(r"(\d+)x(\d+)@\[([\d.]+) ([\d.]+)\]fps")
DSHOW_MODE = re.compile(r"(?:vcodec|pixel_format)=(\S+)\s+min s=\d+x\d+ fps=([\d.]+) max s=(\d+)x(\d+) fps=([\d.]+)")


def parse_avfoundation_modes(lines: Sequence[str]) -> list[Mode]:
    """A Mac camera's modes from the list AVFoundation writes to FFmpeg's log when a size or
    rate is refused: ``1280x720@[1.000000 30.000000]fps``, one line a mode. AVFoundation
    takes only a mode's highest rate (within 0.01), so that is the mode's one rate."""
    found = (AVFOUNDATION_MODE.search(line) for line in lines)
    return [Mode(int(m[1]), int(m[2]), float(m[4]), float(m[4])) for m in found if m]


def parse_dshow_modes(lines: Sequence[str]) -> list[Mode]:
    """A Windows camera's modes from DirectShow's ``list_options`` output in FFmpeg's log:
    ``vcodec=mjpeg  min s=1280x720 fps=5 max s=1280x720 fps=30`` (FFmpeg logs the codec
    and the sizes in two calls, so the messages are joined first)."""
    text = "".join(lines)
    return [Mode(int(m[3]), int(m[4]), float(m[2]), float(m[5]), m[1]) for m in DSHOW_MODE.finditer(text)]


def list_dshow_modes(url: str) -> list[Mode]:
    """The modes of a DirectShow camera (Windows; empty elsewhere or for no such camera)."""
    with ffmpeg_log() as lines:
        try:
            av.open(url, format="dshow", options={"list_options": "true"}).close()
        except (av.error.FFmpegError, ValueError, OSError):
            pass  # the listing always ends in an error
    return parse_dshow_modes(lines)


def mode_options(modes: Sequence[Mode], options: dict[str, str]) -> dict[str, str] | None:
    """``options`` moved to the nearest of ``modes``: the size asked for (else the size
    nearest 720p among modes that reach 25 fps), the rate asked for where the mode takes it
    (else its nearest), MJPEG before raw; None when no mode has the size asked for."""
    want = options.get("video_size")
    fps = float(options.get("framerate", 30))
    modes = [m for m in modes if not want or f"{m.width}x{m.height}" == want]
    if not modes:
        return None

    def off(m: Mode) -> float:
        return max(m.low - fps, fps - m.high, 0.0)

    best = min(modes, key=lambda m: (m.high < 25, abs(m.width * m.height - 1280 * 720), off(m), m.codec != "mjpeg"))
    out = {k: v for k, v in options.items() if best.codec is None or k not in ("vcodec", "pixel_format")}
    out.update(video_size=f"{best.width}x{best.height}", framerate=f"{min(max(fps, best.low), best.high):.6f}")
    if best.codec:
        out["vcodec" if best.codec == "mjpeg" else "pixel_format"] = best.codec
    return out


def _in_a_mode(url: str, fmt: str, options: dict[str, str], modes: list[Mode], error: P3MError, **kwargs) -> AVSource:
    """After ``error``: the camera opened again in the mode of ``modes`` nearest ``options``,
    with one line saying so; a size it lacks is one line naming the sizes it has."""
    retry = mode_options(modes, options)
    if retry is None and modes and "video_size" in options:
        sizes = ", ".join(dict.fromkeys(f"{m.width}x{m.height}" for m in modes))
        raise NoSuchMode(
            f"camera {url} has no {options['video_size']} mode; its sizes are {sizes}: pass one with --camera-size"
        ) from None
    if retry is None or retry == options:
        raise error
    log.info("camera %s: %s at %s fps is not one of its modes; opening it at %s %g fps", url,
             options.get("video_size", "its size"), options.get("framerate"), retry["video_size"],
             float(retry["framerate"]))  # fmt: skip
    return AVSource(url, format=fmt, options=retry, **kwargs)


def _open_avfoundation(url: str, options: dict[str, str], **kwargs) -> AVSource:
    """A Mac camera, asked again in one of its own modes if it refuses the size or rate
    (the modes are read from FFmpeg's log, where AVFoundation lists them then)."""
    try:
        with ffmpeg_log() as lines:
            return AVSource(url, format="avfoundation", options=options, **kwargs)
    except P3MError as e:
        return _in_a_mode(url, "avfoundation", options, parse_avfoundation_modes(lines), e, **kwargs)


MJPEG_KEYS = ("input_format", "vcodec")  # v4l2's and DirectShow's names for it
CALL_SIZE = (1280, 720)  # what a camera is asked for when --camera-size is not given: a call's 16:9 720p
CALL_FPS = 30


def camera_attempts(size: tuple[int, int] | None, fps: float | None, system: str) -> list[dict[str, str]]:
    """The capture options to try, in order: what was asked (or, with no size, a call's 720p
    at 30 fps), with MJPEG at 720p and up; then without MJPEG (an HDMI capture card sends
    raw YUYV or NV12 only); then, where no size was asked, the camera's own mode."""
    first = webcam_options(size or CALL_SIZE, fps or (None if size else CALL_FPS), system)
    raw = {k: v for k, v in first.items() if k not in MJPEG_KEYS}
    attempts = [first, raw] if raw != first else [first]
    if size is None:
        attempts.append(webcam_options(None, fps, system))
    return attempts


def _open_first(
    url: str, fmt: str, attempts: list[dict[str, str]], modes: Callable[[], list[Mode]] | None = None, **kwargs
) -> AVSource:
    """The camera with the first of ``attempts`` it takes; if none, in the nearest of its
    ``modes`` where they can be listed, else the first attempt's error (a camera that is not
    there: its first words say why)."""
    first: P3MError | None = None
    for options in attempts:
        try:
            source = AVSource(url, format=fmt, options=options, **kwargs)
        except P3MError as e:
            first = first or e
            continue
        if options is not attempts[0]:
            asked = attempts[0]
            log.info("camera %s: no %s%s%s; reading it %s", url, "MJPEG at " if set(MJPEG_KEYS) & set(asked) else "",
                     asked.get("video_size", ""), f" {asked['framerate']} fps" if "framerate" in asked else "",
                     "raw" if options.get("video_size") else "in its own mode")  # fmt: skip
        return source
    assert first is not None
    if modes is not None:
        return _in_a_mode(url, fmt, attempts[0], modes(), first, **kwargs)
    raise first


def open_webcam(
    device: str = "0",
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    system: str = sys.platform,
    short_side: int | None = None,
    deinterlace: str = "auto",
    sys_root: Path = Path("/sys"),
) -> AVSource:
    """``--webcam DEVICE``, opened as :func:`camera_attempts` says; a camera that cannot be
    opened is one line naming the cameras there are (``sys_root``: Linux's sysfs, where
    they are listed)."""
    url, fmt = webcam_url(device, system)
    kwargs = {
        "live": True, "name": f"camera {url}", "short_side": short_side, "deinterlace": deinterlace,
        "stall": STALL, "camera": True,
    }  # fmt: skip
    try:
        if fmt == "avfoundation":  # (a Mac camera's own size, at a rate it has: see _open_avfoundation)
            return _open_avfoundation(url, webcam_options(size, fps, system), **kwargs)
        # (DirectShow lists its modes; without a size or rate asked, its own mode was tried)
        modes = (lambda: list_dshow_modes(url)) if fmt == "dshow" and (size or fps) else None
        return _open_first(url, fmt, camera_attempts(size, fps, system), modes, **kwargs)
    except NoSuchMode:
        raise  # (the camera is there)
    except P3MError as e:
        names = list_dshow_cameras() if fmt == "dshow" else []
        if names:
            raise P3MError(f"{e}; the cameras here are {', '.join(map(repr, names))}: pass --webcam N or a name") from e
        if fmt == "v4l2" and (cams := v4l2_cameras(sys_root)):
            virtual = f"; {url} is a virtual camera (v4l2loopback)" if url in loopback_devices(sys_root) else ""
            here = ", ".join(f"{dev} ({name})" for dev, name in cams)
            raise P3MError(f"{e}{virtual}; the cameras here are {here}: pass --webcam N or a device") from e
        hint = "v4l2-ctl --list-devices" if fmt == "v4l2" else f"ffmpeg -f {fmt} -list_devices true -i dummy"
        raise P3MError(f"{e}; list the cameras with `{hint}` and pass --webcam N or a device") from e


def microphone_url(device: str | None, system: str = sys.platform) -> tuple[str, str]:
    """(url, demuxer) for ``--audio [DEVICE]``: ALSA on Linux (its default device, which
    PulseAudio and PipeWire serve), AVFoundation on macOS (a number or a name), DirectShow
    on Windows (by name only)."""
    if system.startswith("linux"):
        return device or "default", "alsa"
    if system == "darwin":
        device = device or "0"
        return f":{device}", "avfoundation"
    if system.startswith("win"):
        if not device:
            raise P3MError(
                'name the microphone: --audio "Microphone (...)"; list them with '
                "`ffmpeg -f dshow -list_devices true -i dummy`"
            )
        return (device if device.startswith("audio=") else f"audio={device}"), "dshow"
    raise P3MError(f"microphones are not supported on {system}; give --audio-format and a device FFmpeg reads")


class SoundSource:
    """A microphone, or any sound FFmpeg reads, for a live run's file and stream outputs: a
    camera has no sound of its own. Its packets are read on a thread of their own."""

    def __init__(self, url: str, format: str, name: str) -> None:
        self.name = name
        try:
            self.container = av.open(url, format=format, timeout=(10.0, 10.0))
        except (av.error.FFmpegError, OSError) as e:
            if format == "alsa":  # PyAV's wheels bundle an ALSA without plugins (PulseAudio, PipeWire)
                hint = "name a card: --audio plughw:CARD,DEVICE from `arecord -l`"
            else:
                hint = "check --audio DEVICE"
            raise P3MError(f"{name} cannot be opened ({reason(e)}); {hint}") from e
        if not self.container.streams.audio:
            self.close()
            raise P3MError(f"{name} gives no sound; give --audio a microphone")
        self.audio_streams = [self.container.streams.audio[0]]

    def packets(self) -> Iterator[av.Packet]:
        for packet in self.container.demux(self.audio_streams[0]):
            if packet.dts is not None:  # (flush packets carry nothing)
                yield packet

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


def open_microphone(device: str | None, format: str | None = None, system: str = sys.platform) -> SoundSource:
    """``--audio [DEVICE]`` with ``--audio-format FORMAT`` (then DEVICE is what FFmpeg opens
    with it, as ffmpeg -f FORMAT -i DEVICE), or the platform's microphone."""
    url, fmt = (device or "default", format) if format else microphone_url(device, system)
    require_input_format(fmt, "--audio-format" if format else "--audio")
    if fmt == "alsa" and "ALSA_CONFIG_PATH" not in os.environ and Path(ALSA_CONFIG).is_file():
        os.environ["ALSA_CONFIG_PATH"] = ALSA_CONFIG  # PyAV's own ALSA looks where it was built
    return SoundSource(url, fmt, f"the microphone {url} ({fmt})")
