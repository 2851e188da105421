"""Every number the camera app takes is finite and within its range, checked in one place
(`AppConfig.validate`) before the source opens or the model loads: a one-line error naming the
option and the accepted range."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from camera_app.app import AppConfig, run_app
from camera_app.cli import camera_parser, config_from_args
from deploy.errors import EdgevisionError

REPO = Path(__file__).resolve().parents[2]
NAN, INF = math.nan, math.inf

BAD = [
    ("fps", INF, "--fps must be a number with 0 < fps <= 1000, got inf"),
    ("fps", NAN, "--fps must be a number with 0 < fps <= 1000, got nan"),
    ("fps", 0.0, "0 < fps <= 1000"),
    ("fps", 1001.0, "0 < fps <= 1000"),
    ("duration", NAN, "--duration must be a number with 0 < duration <= 2592000 (30 days), got nan"),
    ("duration", INF, "0 < duration <= 2592000 (30 days)"),
    ("duration", 31 * 86400.0, "0 < duration <= 2592000 (30 days)"),
    ("open_timeout", NAN, "--open-timeout must be a number with 0 < open-timeout <= 3600, got nan"),
    ("open_timeout", 0.0, "0 < open-timeout <= 3600"),
    ("read_timeout", 1e300, "--read-timeout must be a number with 0 < read-timeout <= 3600, got 1e+300"),
    ("read_timeout", -1.0, "0 < read-timeout <= 3600"),
    ("threshold", NAN, "--threshold must be a number with 0 <= threshold <= 1, got nan"),
    ("threshold", 1.5, "0 <= threshold <= 1"),
    ("top_k", 0, "--top-k must be a whole number with 1 <= top-k <= 1000, got 0"),
    ("smooth", 0, "1 <= smooth <= 1000"),
    ("smooth", 10**9, "1 <= smooth <= 1000"),
    ("width", 0, "1 <= width <= 16384"),
    ("height", 10**6, "1 <= height <= 16384"),
    ("loop", -2, "--loop must be a whole number with -1 <= loop, got -2"),
    ("buffer_frames", 0, "1 <= buffer-frames"),
    ("max_reconnects", -5, "-1 <= max-reconnects"),
    ("max_frames", 0, "1 <= max-frames"),
    ("top_k", 2.5, "--top-k must be a whole number"),
    ("display", "tv", "--display must be one of auto, window, none, got 'tv'"),
    ("rtsp_transport", "sctp", "--rtsp-transport must be one of tcp, udp"),
    ("threads", 0, "--threads must be between 1 and"),
]


@pytest.mark.parametrize("name, value, message", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_out_of_range_options_fail_before_anything_opens(tiny_model, tmp_path, name, value, message):
    missing_source = str(tmp_path / "not-there.mp4")  # would fail later, when the source opens
    with pytest.raises(EdgevisionError) as caught:
        run_app(AppConfig(str(tiny_model), missing_source, **{name: value}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_limits_themselves_are_accepted(tiny_model, mjpg_video):
    summary = run_app(AppConfig(str(tiny_model), str(mjpg_video), fps=1000.0, duration=30 * 86400.0, threshold=1.0,
                                open_timeout=3600.0, read_timeout=3600.0, max_frames=2, top_k=1000, smooth=1000))
    assert summary["frames"]["classified"] == 2


@pytest.mark.parametrize("args, option", [
    (["--fps", "inf"], "--fps"), (["--duration", "nan"], "--duration"), (["--open-timeout", "nan"], "--open-timeout"),
    (["--read-timeout", "1e300"], "--read-timeout"), (["--threshold", "nan"], "--threshold"),
])
def test_command_line_says_it_in_one_line(tiny_model, mjpg_video, args, option):
    done = subprocess.run(
        [sys.executable, "-m", "camera_app", "--model", str(tiny_model), "--source", str(mjpg_video), *args],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"edgevision camera: error: {option} must be a number with ")


def test_command_line_and_api_share_their_defaults_but_display():
    from_cli = config_from_args(camera_parser().parse_args(["--model", "m.onnx", "--source", "0"]))
    from_api = AppConfig("m.onnx", "0")
    assert (from_cli.display, from_api.display) == ("auto", "none")  # a script opens no window unasked
    assert dataclasses.replace(from_cli, display="none") == from_api
