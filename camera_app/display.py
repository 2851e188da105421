"""Window or headless, decided before any `imshow`.

opencv-python's Qt build aborts the whole process (uncatchably, in C++) when `imshow` runs with no
display, and opencv-python-headless has no GUI at all. So the choice is made from OpenCV's build
information and the environment, never by trying.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from deploy.errors import EdgevisionError

MODES = ("auto", "window", "none")
KEY_QUIT = (ord("q"), 27)
KEY_PAUSE = ord(" ")
KEY_SNAPSHOT = ord("s")
NO_GUI = (
    "this OpenCV has no GUI (opencv-python-headless); for a window, pip install '.[gui]' in an environment "
    "of its own (it cannot share one with opencv-python-headless), or watch in a browser with --serve PORT"
)


def gui_backend(build_info: str | None = None) -> str | None:
    """OpenCV's GUI backend ("QT5", "GTK3", "WIN32UI", "COCOA", ...) or None for a headless build."""
    info = cv2.getBuildInformation() if build_info is None else build_info
    match = re.search(r"^\s*GUI:\s*(\S+)", info, re.MULTILINE)
    if not match or match.group(1).upper() in ("NONE", "NO"):
        return None
    return match.group(1).upper()


def window_unavailable(
    build_info: str | None = None, env: Mapping[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why a window cannot open here, or None when it can."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    backend = gui_backend(build_info)
    if backend is None:
        return NO_GUI
    if not platform.startswith("linux"):
        return None
    x11, wayland = bool(env.get("DISPLAY")), bool(env.get("WAYLAND_DISPLAY"))
    # The Qt build in the wheels talks X11 (xcb) unless told to use Wayland.
    if backend.startswith("QT") and not x11 and not (wayland and env.get("QT_QPA_PLATFORM", "").startswith("wayland")):
        return "no X11 display (DISPLAY is not set)" + (
            "; Wayland only: set QT_QPA_PLATFORM=wayland" if wayland else ""
        )
    if not (x11 or wayland):
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return None


class WindowDecision(NamedTuple):
    show: bool
    reason: str | None  # why there is no window, where the user may well expect one; else None


def want_window(
    mode: str, build_info: str | None = None, env: Mapping[str, str] | None = None, platform: str | None = None
) -> WindowDecision:
    """`auto`: a window where one can open; `window`: one or a one-line error; `none`: headless.

    `auto` gives the reason for running headless when a display exists (a desktop, not a board over
    SSH), so that the app can say it once instead of silently showing nothing.
    """
    if mode not in MODES:
        raise EdgevisionError(f"--display must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "none":
        return WindowDecision(False, None)
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    reason = window_unavailable(build_info, env, platform)
    if reason and mode == "window":
        raise EdgevisionError(f"--display window: {reason}")
    desktop = not platform.startswith("linux") or bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return WindowDecision(reason is None, reason if desktop else None)


class Window:
    """An OpenCV window; `show` returns the key pressed (or -1)."""

    def __init__(self, title: str) -> None:
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, image: np.ndarray) -> int:
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1)
        if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return KEY_QUIT[0]  # the user closed the window
        return key & 0xFF if key >= 0 else -1

    def close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)


def save_snapshot(image: np.ndarray, folder: str | os.PathLike, index: int) -> Path:
    """Write the annotated frame as PNG (lossless), named by its frame index."""
    path = Path(folder) / f"snapshot_{index:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise EdgevisionError(f"cannot write snapshot {path}")
    return path
