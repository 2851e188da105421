"""The camera app's sources under hostile input: streams that never give a frame, FIFOs, all-bad
folders, oversized frames, paths that look like globs, a queue bounded in bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import camera_app.sources as sources
from camera_app.capture import Capture
from camera_app.sources import ImageFilesSource, SourceOptions, UnreadableFrame, open_source, parse_source
from deploy.errors import EdgevisionError
from tests.bad_inputs.camera_helpers import REPO, HostileMjpeg, camera, error_lines

pytest.importorskip("onnx", reason="the tiny test model is built with onnx (the export extra)")

from tests.camera.mjpeg_server import MjpegCamera
from tests.helpers import wait_for, write_video

FRAME_BYTES = 160 * 120 * 3


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tests.runtime.onnx_models import make_onnx, tiny_card

    return make_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx", card=tiny_card(classes=3))


def image_folder(folder, count: int = 3, size: tuple[int, int] = (50, 40)):
    folder.mkdir(exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((size[1], size[0], 3), 40 * i, np.uint8))
    return folder


@pytest.mark.parametrize("mode", ["garbage", "huge", "liar"])
def test_a_stream_that_never_yields_a_frame_gives_up_after_max_reconnects(model, mode):
    server = HostileMjpeg(mode)
    try:
        done = camera("--model", model, "--source", server.url, "--display", "none", "--max-reconnects", "2",
                      "--open-timeout", "2", "--read-timeout", "1")
    finally:
        server.stop()
    assert done.returncode == 1, done.stderr
    errors = error_lines(done.stderr)
    assert len(errors) == 1 and "gave up" in errors[0] and "after 2 reconnect attempts" in errors[0], done.stderr
    assert server.connections == 3  # the first open and two reconnects, then no more


def test_duration_ends_a_run_that_never_got_a_frame(model):
    server = HostileMjpeg("garbage")
    try:
        done = camera("--model", model, "--source", server.url, "--display", "none", "--max-reconnects", "-1",
                      "--open-timeout", "1", "--read-timeout", "1", "--duration", "3")
    finally:
        server.stop()
    assert done.returncode == 1
    errors = error_lines(done.stderr)
    assert len(errors) == 1 and "no frame from" in errors[0] and "--duration" in errors[0], done.stderr


def test_a_frame_over_the_pixel_limit_is_unreadable_and_a_video_declaring_one_is_refused(tmp_path, monkeypatch):
    video = write_video(tmp_path / "clip.avi", 3)
    monkeypatch.setattr(sources, "MAX_IMAGE_PIXELS", 160 * 120 - 1)
    with pytest.raises(EdgevisionError, match="160x120 frames, over 19,199 pixels"):
        open_source(parse_source(str(video)), SourceOptions())
    image_folder(tmp_path / "frames", 1, (160, 120))
    with pytest.raises(UnreadableFrame, match="exceeds 19,199"):
        open_source(parse_source(str(tmp_path / "frames")), SourceOptions()).read()


def fifo(path):
    os.mkfifo(path)
    return path


def test_a_fifo_in_an_image_folder_is_left_out(model, tmp_path):
    folder = image_folder(tmp_path / "frames")
    fifo(folder / "x.jpg")
    done = camera("--model", model, "--source", folder, "--display", "none", "--report", tmp_path / "r.json",
                  timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"classified": 3' in (tmp_path / "r.json").read_text()
    # A file swapped for a FIFO after the listing is an unreadable frame, not a blocked read.
    with pytest.raises(UnreadableFrame, match="not a regular file"):
        ImageFilesSource([str(folder / "x.jpg")], "x", None).read()


def test_predict_refuses_a_fifo_instead_of_blocking(model, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "deploy", "predict", "--model", str(model), str(fifo(tmp_path / "x.jpg"))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("is not a regular file (a FIFO, socket or device)")


def test_a_folder_of_unreadable_files_looped_forever_ends_with_one_error(model, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(50):
        (folder / f"{i}.jpg").write_bytes(b"not a jpeg")
    done = camera("--model", model, "--source", folder, "--display", "none", "--loop", "-1", timeout=60)
    assert done.returncode == 1
    errors = error_lines(done.stderr)
    assert len(errors) == 1 and "no readable frame in a whole pass" in errors[0] and "50 unreadable" in errors[0]
    assert len([line for line in done.stderr.splitlines() if "unreadable frame" in line]) <= 2  # summarised


def test_a_video_with_no_frame_under_loop_forever_ends(model, tmp_path):
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120)).release()
    done = camera("--model", model, "--source", empty, "--display", "none", "--loop", "-1", timeout=60)
    assert done.returncode in (1, 2) and len(error_lines(done.stderr)) == 1, done.stderr


def test_buffer_is_bounded_in_bytes_a_file_waits(tmp_path):
    video = write_video(tmp_path / "clip.avi", 20)
    capture = Capture(lambda: open_source(parse_source(str(video)), SourceOptions()), live=False, buffer=True,
                      buffer_mb=3 * FRAME_BYTES / (1 << 20))
    capture.open()
    capture.start()
    try:
        # The thread reads a 4th frame and then waits for room: the queue never holds more than 3.
        assert wait_for(lambda: capture.counters.read >= 4, 60)  # 60 s: only turns a hang into a failure
        with capture.cond:
            assert len(capture.queue) == 3 and capture.queued_bytes == 3 * FRAME_BYTES
        frames = [capture.get(timeout=10) for _ in range(20)]
        assert [f.index for f in frames] == list(range(20)) and capture.counters.dropped == 0
    finally:
        capture.stop()


def test_buffer_is_bounded_in_bytes_a_live_source_drops_the_oldest():
    server = MjpegCamera(fps=60)
    capture = Capture(lambda: open_source(parse_source(server.url), SourceOptions()), live=True, buffer=True,
                      buffer_mb=3 * FRAME_BYTES / (1 << 20))
    try:
        capture.open()
        capture.start()
        assert wait_for(lambda: capture.counters.dropped >= 5, 60)
        with capture.cond:
            assert len(capture.queue) <= 3 and capture.queued_bytes <= 3 * FRAME_BYTES
            indexes = [f.index for f in capture.queue]
        assert indexes == sorted(indexes) and indexes[0] >= 5  # the oldest went
    finally:
        capture.stop()
        server.stop()


def test_buffer_mb_must_be_positive(model, mjpeg_free_video):
    done = camera("--model", model, "--source", mjpeg_free_video, "--buffer", "--buffer-mb", "0", timeout=60)
    assert done.returncode == 2
    assert "--buffer-mb must be a number with 0 < buffer-mb" in done.stderr.strip().splitlines()[-1]


@pytest.fixture
def mjpeg_free_video(tmp_path):
    return write_video(tmp_path / "clip.avi", 5)


@pytest.mark.parametrize("name", ["clip[1].avi", "what?.avi", "star*.avi"])
def test_a_video_whose_name_looks_like_a_glob_is_read_literally(model, tmp_path, name):
    video = write_video(tmp_path / name, 6)
    spec = parse_source(str(video))
    assert spec.kind == "file"
    assert parse_source(f"file://{video}") == spec
    done = camera("--model", model, "--source", video, "--display", "none", "--report", tmp_path / "r.json",
                  timeout=60)
    assert done.returncode == 0 and '"classified": 6' in (tmp_path / "r.json").read_text(), done.stderr


def test_a_folder_whose_name_looks_like_a_glob_and_a_percent_encoded_url(tmp_path):
    folder = image_folder(tmp_path / "frames [a]")
    assert parse_source(str(folder)).kind == "images"
    assert parse_source(f"file://{str(folder).replace(' ', '%20')}").target == str(folder)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("99999", "cannot open camera 99999"),
        ("empty.avi", "cannot read video file"),
        ("pipe.avi", "is not a regular file or folder"),
        ("dir.avi", "no images"),
    ],
)
def test_sources_that_cannot_be_read_fail_in_one_line(model, tmp_path, source, message):
    (tmp_path / "empty.avi").write_bytes(b"")
    fifo(tmp_path / "pipe.avi")
    (tmp_path / "dir.avi").mkdir()
    done = camera("--model", model, "--source", source if source == "99999" else tmp_path / source,
                  "--display", "none", timeout=60)
    assert done.returncode == 2 and message in done.stderr and len(error_lines(done.stderr)) == 1, done.stderr


def test_a_huge_stream_timeout_is_refused():
    with pytest.raises(EdgevisionError, match="--read-timeout must be between 0 and 3600"):
        open_source(parse_source("http://127.0.0.1:9/x.mjpg"), SourceOptions(read_timeout_s=1e12))


def test_a_truncated_avi_gives_the_frames_before_the_cut(model, tmp_path):
    video = write_video(tmp_path / "clip.avi", 40)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    done = camera("--model", model, "--source", video, "--display", "none", "--report", tmp_path / "r.json",
                  timeout=60)
    assert done.returncode == 0, done.stderr
    classified = json.loads((tmp_path / "r.json").read_text())["frames"]["classified"]
    assert 10 < classified < 40
