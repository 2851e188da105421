"""Live behaviour against a local MJPEG-over-HTTP camera: newest frame, reconnect, stall, bad sources.

Every wait is bounded, so a stuck stream fails a test instead of hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest

import deploy
from camera_app.app import AppConfig
from tests.camera.mjpeg_server import MjpegCamera, free_port, read_stamp
from tests.helpers import Background, SlowClassifier, records, wait_for

REPO = Path(__file__).resolve().parents[2]


class StampingClassifier(SlowClassifier):
    """Also notes the stamp (the server's frame number) of every frame it is given."""

    def __init__(self, classifier, delay_s: float) -> None:
        super().__init__(classifier, delay_s)
        self.stamps: list[int] = []

    def predict(self, image, top_k: int = 5):
        if image.shape[:2] == (120, 160):
            self.stamps.append(read_stamp(image))
        return super().predict(image, top_k)


@pytest.fixture
def camera():
    cam = MjpegCamera(fps=30)
    yield cam
    cam.stop()


@pytest.mark.slow
def test_newest_frame_policy_against_a_slow_model(tiny_model, camera, tmp_path):
    slow = StampingClassifier(deploy.load(tiny_model), 0.1)
    config = AppConfig(str(tiny_model), camera.url, log=str(tmp_path / "log.jsonl"), duration=1.5)
    summary = Background(config, slow).join(10)
    frames = [r for r in records(tmp_path / "log.jsonl") if "frame" in r]
    indexes = [r["frame"] for r in frames]
    assert indexes == sorted(set(indexes)), "a frame was handed out twice or out of order"
    assert slow.stamps == indexes  # the log's index is the source's frame number
    counts = summary["frames"]
    assert counts["dropped"] > 0  # 30 fps in, at most 10 fps out
    assert counts["read"] - counts["dropped"] - counts["classified"] in (0, 1)
    # newest frame: the gaps between classified frames are what the model had no time for
    assert max(b - a for a, b in pairwise(indexes)) >= 2


@pytest.mark.slow
def test_buffer_mode_on_a_live_source_keeps_every_frame_and_ages(tiny_model, camera, tmp_path):
    slow = SlowClassifier(deploy.load(tiny_model), 0.06)
    config = AppConfig(str(tiny_model), camera.url, buffer=True, log=str(tmp_path / "log.jsonl"), duration=1.5)
    summary = Background(config, slow).join(10)
    frames = [r for r in records(tmp_path / "log.jsonl") if "frame" in r]
    assert [r["frame"] for r in frames] == list(range(len(frames)))
    assert summary["frames"]["dropped"] == 0
    ages = [r["age_ms"] for r in frames]
    assert sum(ages[-5:]) > 2 * sum(ages[:5])  # the queue grows behind the model: the trade-off


@pytest.mark.slow
def test_server_killed_and_restarted(tiny_model, tmp_path):
    port = free_port()
    first = MjpegCamera(fps=30, port=port)
    log = tmp_path / "log.jsonl"
    config = AppConfig(str(tiny_model), first.url, log=str(log), read_timeout=1.0, open_timeout=1.0, max_reconnects=20)
    app = Background(config, deploy.load(tiny_model))
    second = None
    try:
        assert wait_for(lambda: len(records(log)) >= 5, 10)
        first.stop()
        assert wait_for(lambda: any(r.get("event") == "disconnected" for r in records(log)), 5)
        # at least one reopen fails (connection refused) before the camera is back
        assert wait_for(lambda: any(r.get("event") == "reconnect_failed" for r in records(log)), 15)
        second = MjpegCamera(fps=30, port=port)
        assert wait_for(lambda: any(r.get("event") == "reconnected" for r in records(log)), 15)
        reconnected_at = len(records(log))
        assert wait_for(lambda: len(records(log)) >= reconnected_at + 5, 10), "frames did not resume"
    finally:
        app.stop.set()
        summary = app.join(10)
        if second:
            second.stop()
    events = [r["event"] for r in records(log) if "event" in r]
    assert events.index("disconnected") < events.index("reconnect_failed") < events.index("reconnected")
    assert summary["frames"]["reconnects"] == 1 and summary["error"] is None


@pytest.mark.slow
def test_frozen_server_read_timeout_fires(tiny_model, camera, tmp_path):
    log = tmp_path / "log.jsonl"
    read_timeout = 1.0
    config = AppConfig(str(tiny_model), camera.url, log=str(log), read_timeout=read_timeout, max_reconnects=0)
    app = Background(config, deploy.load(tiny_model))
    assert wait_for(lambda: len(records(log)) >= 3, 10)
    frozen_at = time.time()
    camera.freeze()
    summary = app.join(read_timeout + 5)
    disconnected = [r for r in records(log) if r.get("event") == "disconnected"]
    assert disconnected, [r for r in records(log) if "event" in r]
    assert disconnected[0]["time"] - frozen_at <= read_timeout + 4.0  # generous: a loaded machine is slow
    assert summary["error"].startswith("gave up") and summary["end_reason"].startswith("source lost")


def run_cli(args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "camera_app", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)
    return done, time.monotonic() - start


def bad_source(source: str) -> str:
    return f"http://127.0.0.1:{free_port()}/stream.mjpg" if source == "refused" else "/dev/video63"


@pytest.mark.parametrize("source", ["refused", "missing camera"])
def test_bad_source_fails_in_one_line(tiny_model, source):
    done, _ = run_cli(["--model", str(tiny_model), "--source", bad_source(source), "--open-timeout", "2"])
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("edgevision camera: error: cannot open")


@pytest.mark.slow
@pytest.mark.parametrize("source", ["refused", "missing camera"])
def test_bad_source_fails_without_waiting_out_the_default_open_timeout(tiny_model, source):
    """A source that cannot open fails at once, not after retrying: well inside the 10 s default
    --open-timeout even with the interpreter's start on a loaded machine."""
    done, seconds = run_cli(["--model", str(tiny_model), "--source", bad_source(source)])
    assert done.returncode == 2, done.stderr
    assert seconds < 10.0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_run_cleanly(tiny_model, camera, tmp_path, signum):
    log = tmp_path / "log.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "camera_app", "--model", str(tiny_model), "--source", camera.url, "--display", "none",
         "--log", str(log)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert wait_for(lambda: len(records(log)) >= 5, 15), "no frames classified"
        sent = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
        seconds = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert f"ended: signal {signum.name}" in out
    assert seconds < 8.0  # generous: the run ends within a second, plus the interpreter's exit on a loaded machine
