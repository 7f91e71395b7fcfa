"""The preview window (OpenCV): the output as the call sees it, with a few keys.

Keys (p3m_live/keys.py): q or Esc quit, b next background, f auto framing, m show
the matte, space pause. Closing the
window quits a run whose only output it is; with a virtual camera, the call goes
on. OpenCV's window functions are called from the thread that runs the live loop,
which is the main thread, as macOS requires.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from types import ModuleType

import numpy as np

from ..errors import P3MError
from ..keys import KEYS as TERMINAL_KEYS
from .frames import Layout, planes_to_rgb

NO_DISPLAY_FIX = "drop --preview, or run p3m-live in a desktop session"


def display_problem(system: str = sys.platform, env: Mapping[str, str] = os.environ) -> str | None:
    """Why no preview window can open here, or None. Found before OpenCV is asked: on Linux
    without a display (SSH, a container), OpenCV's Qt plugin aborts the whole process
    (SIGABRT) instead of raising. A platform chosen with QT_QPA_PLATFORM is left to Qt."""
    if not system.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return "no display: DISPLAY and WAYLAND_DISPLAY are not set (an SSH session or a container)"


KEYS = {**TERMINAL_KEYS, 27: "quit"}  # (Esc)


class PreviewWindow:
    def __init__(self, layout: Layout, title: str = "p3m-live", gui: ModuleType | None = None) -> None:
        if gui is None:
            import cv2 as gui
        self.gui = gui
        self.layout = layout
        self.title = title
        self.show_matte = False
        self.paused = False
        try:
            gui.namedWindow(title, gui.WINDOW_NORMAL)
        except Exception as e:  # cv2.error: no display, or a headless OpenCV build
            raise P3MError(
                f"cannot open a preview window ({str(e).strip().splitlines()[-1]}); "
                "run without --preview, or install opencv-python (not -headless) with a display"
            ) from e

    def show(self, composite: np.ndarray, alpha: np.ndarray) -> str | None:
        """Draw one output frame; return the action of a key pressed, if any."""
        if not self.paused:
            if self.show_matte:
                image = alpha
            else:
                rgb = planes_to_rgb(composite, "i420", self.layout.matrix, self.layout.full_range)
                image = np.ascontiguousarray(rgb[..., ::-1])
            self.gui.imshow(self.title, image)
        action = KEYS.get(self.gui.waitKey(1) & 0xFF)
        if action is None and not self._visible():
            return "closed"  # the window's close button: imshow would only open it again
        self.handle(action)
        return action

    def handle(self, action: str | None) -> None:
        """Take the window's own actions (from its keys, or the terminal's)."""
        if action == "matte":
            self.show_matte = not self.show_matte
        elif action == "pause":
            self.paused = not self.paused

    def _visible(self) -> bool:
        try:  # 0 once closed; -1 where a GUI backend cannot tell, which must not end the run
            return self.gui.getWindowProperty(self.title, self.gui.WND_PROP_VISIBLE) != 0
        except Exception:  # noqa: BLE001 (cv2.error: the window is gone)
            return False

    def close(self) -> None:
        try:
            self.gui.destroyWindow(self.title)
        except Exception:  # noqa: BLE001 (cv2.error: the user closed it already)
            pass
