"""Found by probing the merged camera app: secrets on the command line reach the viewers and the
report; a `--log` or `--labels` named pipe with no peer hangs the app beyond SIGTERM."""

from __future__ import annotations

import json
import os

import pytest

from camera_app.sources import redact
from deploy.errors import EdgevisionError
from deploy.labels import MAX_LABELS_BYTES, read_labels
from tests.bad_inputs.camera_helpers import camera, error_lines

pytest.importorskip("onnx", reason="the tiny test model is built with onnx (the export extra)")

from tests.camera.mjpeg_server import MjpegCamera
from tests.helpers import write_video

PASSWORD = "S3cretPw"
TOKEN = "secrettoken123"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tests.runtime.onnx_models import make_onnx, tiny_card

    return make_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx", card=tiny_card(classes=3))


@pytest.mark.parametrize("text, shown", [
    ("rtsp://alice:pw@10.0.0.2:554/live", "rtsp://alice:***@10.0.0.2:554/live"),
    ("http://u:p%40ss@cam/stream.mjpg", "http://u:***@cam/stream.mjpg"),
    ("gst:rtspsrc location=rtsp://a:b@h/x ! appsink", "gst:rtspsrc location=rtsp://a:***@h/x ! appsink"),
    ("rtsp://10.0.0.2/live", "rtsp://10.0.0.2/live"),
    ("clip.avi", "clip.avi"),
])
def test_a_url_password_is_redacted(text, shown):
    assert redact(text) == shown


def test_a_stream_password_and_the_serve_token_reach_no_output(model, tmp_path):
    source = MjpegCamera(fps=30)
    try:
        url = source.url.replace("http://", f"http://alice:{PASSWORD}@")
        report, log = tmp_path / "r.json", tmp_path / "l.jsonl"
        result = camera("--model", model, "--source", url, "--max-frames", "5", "--report", report, "--log", log,
                        "--serve", "127.0.0.1:0", "--serve-token", TOKEN)
    finally:
        source.stop()
    assert result.returncode == 0, result.stderr
    summary = json.loads(report.read_text())
    assert summary["source"].startswith("http://alice:***@") and summary["config"]["serve_token"] == "***"
    for text in (result.stdout, result.stderr, report.read_text(), log.read_text()):
        assert PASSWORD not in text and TOKEN not in text


def test_a_refused_stream_names_it_without_its_password(model):
    result = camera("--model", model, "--source", f"rtsp://bob:{PASSWORD}@127.0.0.1:1/x", "--open-timeout", "2")
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1
    assert "bob:***@" in result.stderr and PASSWORD not in result.stderr + result.stdout


def test_a_log_named_pipe_with_no_reader_is_one_line_not_a_hang(model, tmp_path):
    video, fifo = write_video(tmp_path / "clip.avi", 10), tmp_path / "log.fifo"
    os.mkfifo(fifo)
    result = camera("--model", model, "--source", video, "--log", fifo, "--quiet", timeout=120)
    assert result.returncode == 2 and "named pipe with no reader" in result.stderr
    assert len(error_lines(result.stderr)) == 1


def test_a_report_named_pipe_with_no_reader_is_one_line_not_a_hang(model, tmp_path):
    """The report is written at the end: the run's summary still prints, the error names the pipe."""
    video, fifo = write_video(tmp_path / "clip.avi", 10), tmp_path / "report.fifo"
    os.mkfifo(fifo)
    result = camera("--model", model, "--source", video, "--report", fifo, timeout=120)
    assert result.returncode == 1 and "frames   read 10" in result.stdout
    assert error_lines(result.stderr)[-1].endswith("is a named pipe with no reader: start its reader first")


def test_a_log_named_pipe_with_a_reader_gets_every_frame(model, tmp_path):
    video, fifo = write_video(tmp_path / "clip.avi", 10), tmp_path / "log.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the reader is there first, as `tail -f` would be
    try:
        result = camera("--model", model, "--source", video, "--log", fifo, "--quiet", timeout=120)
        data = os.read(reader, 1 << 16)  # 10 lines fit in the pipe's buffer
    finally:
        os.close(reader)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in data.splitlines()]
    assert len([r for r in records if "frame" in r]) >= 10


def test_a_labels_file_that_is_a_pipe_a_device_or_huge_is_refused_in_one_line(model, tmp_path):
    fifo, huge, binary = tmp_path / "labels.fifo", tmp_path / "huge.txt", tmp_path / "labels.bin"
    os.mkfifo(fifo)  # no writer: a plain open would wait for good
    huge.write_text("x\n" * (MAX_LABELS_BYTES // 2 + 1))
    binary.write_bytes(b"cat\n\xff\xfe\n")
    for path, message in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"), (tmp_path, "a folder"),
                          (huge, "over the"), (binary, "not UTF-8"), (tmp_path / "none.txt", "not found")):
        with pytest.raises(EdgevisionError, match=message):
            read_labels(path)
    video = write_video(tmp_path / "clip.avi", 5)
    result = camera("--model", model, "--source", video, "--labels", fifo, "--quiet", timeout=120)
    assert result.returncode == 2 and "not a regular file" in result.stderr and len(error_lines(result.stderr)) == 1
