"""The preview window (OpenCV): the output as the call sees it, with a few keys.

Keys: q or Esc quit, b next background, m show the matte, space pause. Closing the
window quits a run whose only output it is; with a virtual camera, the call goes
on. OpenCV's window functions are called from the thread that runs the live loop,
which is the main thread, as macOS requires.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from ..errors import P3MError
from .frames import Layout, planes_to_rgb

KEYS = {ord("q"): "quit", 27: "quit", ord("b"): "background", ord("m"): "matte", ord(" "): "pause"}


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
        if action == "matte":
            self.show_matte = not self.show_matte
        elif action == "pause":
            self.paused = not self.paused
        return action

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
