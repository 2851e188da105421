"""Window or headless is decided from OpenCV's build and the environment, before any imshow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from camera_app.display import NO_GUI, gui_backend, want_window, window_unavailable
from deploy.errors import EdgevisionError

REPO = Path(__file__).resolve().parents[2]
QT = "  GUI:                           QT5\n    QT:                          YES (ver 5.15.19 )\n"
GTK = "  GUI:                           GTK3\n"
HEADLESS = "  GUI:                           NONE\n"


def test_gui_backend_from_build_information():
    assert gui_backend(QT) == "QT5"
    assert gui_backend(GTK) == "GTK3"
    assert gui_backend(HEADLESS) is None


def test_window_needs_a_gui_build_and_a_display():
    assert "headless" in window_unavailable(HEADLESS, {"DISPLAY": ":0"}, "linux")
    assert window_unavailable(QT, {}, "linux").startswith("no X11 display")
    assert window_unavailable(QT, {"DISPLAY": ":1"}, "linux") is None
    assert "QT_QPA_PLATFORM=wayland" in window_unavailable(QT, {"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert window_unavailable(QT, {"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "wayland"}, "linux") is None
    assert window_unavailable(GTK, {"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert window_unavailable(GTK, {}, "linux").startswith("no display")
    assert window_unavailable("  GUI:  WIN32UI\n", {}, "win32") is None


def test_display_modes():
    assert want_window("none", QT, {"DISPLAY": ":0"}, "linux") == (False, None)
    assert want_window("auto", QT, {"DISPLAY": ":0"}, "linux") == (True, None)
    assert want_window("auto", QT, {}, "linux") == (False, None)  # a board over SSH: headless, nothing to say
    assert want_window("auto", HEADLESS, {}, "linux") == (False, None)
    with pytest.raises(EdgevisionError, match="--display window: no X11 display"):
        want_window("window", QT, {}, "linux")


def test_a_desktop_without_a_gui_build_is_told_how_to_get_a_window():
    # a display, but the headless wheel: headless, with the reason and the install that gives a window
    for env, platform in (({"DISPLAY": ":0"}, "linux"), ({"WAYLAND_DISPLAY": "wayland-0"}, "linux"), ({}, "darwin")):
        show, reason = want_window("auto", HEADLESS, env, platform)
        assert (show, reason) == (False, NO_GUI)
    assert "pip install '.[gui]'" in NO_GUI and "environment of its own" in NO_GUI and "\n" not in NO_GUI
    # Qt on Wayland only: the reason names the variable to set
    assert "QT_QPA_PLATFORM=wayland" in want_window("auto", QT, {"WAYLAND_DISPLAY": "wayland-0"}, "linux").reason
    with pytest.raises(EdgevisionError) as refused:
        want_window("window", HEADLESS, {"DISPLAY": ":0"}, "linux")
    assert str(refused.value) == f"--display window: {NO_GUI}"


def run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "camera_app", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_no_display_runs_headless_and_never_aborts(tiny_model, mjpg_video, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    done = run_cli(["--model", str(tiny_model), "--source", str(mjpg_video), "--display", "auto",
                    "--report", str(tmp_path / "r.json")], env)
    assert done.returncode == 0, done.stderr
    assert "classified 40" in done.stdout and "(newest, headless;" in done.stdout
    refused = run_cli(["--model", str(tiny_model), "--source", str(mjpg_video), "--display", "window"], env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
    assert refused.stderr.startswith("edgevision camera: error: --display window: ")


def test_headless_opencv_on_a_desktop_says_so_once(tiny_model, mjpg_video, tmp_path):
    if gui_backend() is not None:
        pytest.skip(f"this OpenCV has a GUI ({gui_backend()}): the headless wheel's message cannot show")
    env = {**os.environ, "DISPLAY": ":99", "PYTHONPATH": str(REPO)}
    done = run_cli(["--model", str(tiny_model), "--source", str(mjpg_video), "--display", "auto"], env)
    assert done.returncode == 0, done.stderr
    assert "(newest, headless;" in done.stdout
    told = [line for line in done.stderr.splitlines() if "no window" in line]
    assert len(told) == 1 and told[0].endswith(f"no window: {NO_GUI}"), done.stderr
    refused = run_cli(["--model", str(tiny_model), "--source", str(mjpg_video), "--display", "window"], env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"edgevision camera: error: --display window: {NO_GUI}"


def test_window_under_xvfb(tiny_model, mjpg_video, tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (Debian: apt-get install xvfb xauth)")
    if gui_backend() is None:
        pytest.skip("this OpenCV has no GUI (opencv-python-headless)")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-m", "camera_app", "--model", str(tiny_model), "--source", str(mjpg_video),
         "--display", "auto", "--max-frames", "10"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "(newest, window;" in done.stdout and "classified 10" in done.stdout
