"""Option defaults from a TOML file."""

from __future__ import annotations

import pytest

from p3m_live.cli import _parse
from p3m_live.errors import P3MError


def _write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_readme_example_config(tmp_path, monkeypatch):
    cfg = _write(tmp_path, 'background = "~/office.jpg"\nvirtual-cam = true\ncamera-size = "1280x720"\ncrf = 20\n')
    monkeypatch.setenv("P3M_LIVE_CONFIG", str(cfg))
    args = _parse(["--webcam"])
    assert args.background == ["~/office.jpg"] and args.virtual_cam == "" and args.camera_size == (1280, 720)
    assert args.crf == 20 and args.webcam == "0"


def test_command_line_wins(tmp_path):
    cfg = _write(tmp_path, 'crf = 20\nbackend = "torch"\noverwrite = true\n')
    args = _parse(["in.mp4", "-o", "o.mp4", "--config", str(cfg), "--crf", "30"])
    assert args.crf == 30 and args.backend == "torch" and args.overwrite is True


def test_a_camera_mounted_upside_down_is_set_once(tmp_path):
    cfg = _write(tmp_path, "rotate = 180\nmirror = true\n")
    args = _parse(["--webcam", "--config", str(cfg)])
    assert (args.rotate, args.mirror) == (180, True)
    assert _parse(["--webcam"]).rotate == 0


def test_default_location_under_xdg(tmp_path, monkeypatch):
    (tmp_path / "p3m-live").mkdir()
    (tmp_path / "p3m-live" / "config.toml").write_text('temporal = "off"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert _parse(["in.mp4", "-o", "o.mp4"]).temporal == "off"


@pytest.mark.parametrize(
    "text, message",
    [
        ("colour = 'red'", "unknown option 'colour'"),
        ("backend = 'cuda'", "must be one of"),
        ("camera-size = 'big'", "bad value for 'camera-size'"),
        ("overwrite = 'yes'", "must be true or false"),
        ("crf = ", "not valid TOML"),
        ("rotate = 45", "'rotate' must be one of 0, 90, 180, 270"),
        ("background = true", "'background' takes a string or a number .or a list of them., not true or false"),
        ("crf = true", "'crf' takes a string or a number, not true or false"),  # (was a traceback, as the next)
        ("[background]\nimage = 'a.jpg'", "'background' takes a string or a number .*, not a table"),
        ("background = [['a.jpg']]", "'background' takes a string or a number, not a list"),
        ("codec = 2024-01-01", "'codec' takes a string or a number, not a date or time"),
        ("fps = 0", "bad value for 'fps' .must be frames a second"),
    ],
)
def test_bad_config_is_one_line(tmp_path, text, message):
    with pytest.raises(P3MError, match=message) as e:
        _parse(["in.mp4", "-o", "o.mp4", "--config", str(_write(tmp_path, text))])
    assert "\n" not in str(e.value)


def test_numbers_are_taken_as_the_command_line_takes_their_text(tmp_path):
    """``webcam = 1`` is ``--webcam 1``; ``background = 5`` is a background named 5 (which
    the run then refuses in one line: it was a traceback, an int has no strip)."""
    cfg = _write(tmp_path, "webcam = 1\nbackground = [5, 'blur']\nfps = 29.97\n")
    args = _parse(["--config", str(cfg)])
    assert args.webcam == "1" and args.background == ["5", "blur"] and args.fps == 29.97


def test_missing_explicit_config(tmp_path):
    with pytest.raises(P3MError, match="not found"):
        _parse(["in.mp4", "--config", str(tmp_path / "nope.toml")])


def test_foreground_auto_is_the_default():
    assert _parse(["in.mp4", "-o", "o.mp4"]).foreground == "auto"
