"""Video files and image folders through the whole app: every frame in order, the log, record, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import camera_app
import deploy
from camera_app.app import AppConfig, run_app
from camera_app.video import write_video_from_images
from tests.camera.mjpeg_server import read_stamp
from tests.helpers import SlowClassifier, write_video

REPO = Path(__file__).resolve().parents[2]
STAGES = {"capture_wait", "preprocess", "inference", "postprocess", "overlay", "output"}


def read_log(path: Path) -> tuple[list[dict], list[dict]]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if "frame" in r], [r for r in records if "event" in r]


@pytest.mark.parametrize("fourcc, suffix", [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_buffer_classifies_every_frame_in_order(tiny_model, tmp_path, fourcc, suffix):
    video = write_video(tmp_path / f"clip{suffix}", 30, fourcc)
    summary = camera_app.run(tiny_model, video, buffer=True, log=str(tmp_path / "log.jsonl"), top_k=2)
    frames, events = read_log(tmp_path / "log.jsonl")
    assert [r["frame"] for r in frames] == list(range(30)) and not events
    first = frames[0]
    assert len(first["top_k"]) == 2 and set(first["top_k"][0]) == {"label", "prob"}
    assert first["top_k"][0]["prob"] >= first["top_k"][1]["prob"]
    assert set(first["latency_ms"]) == STAGES and first["age_ms"] >= 0 and first["time"] > 1e9
    assert summary["frames"] == {"read": 30, "classified": 30, "invalid": 0, "dropped": 0, "unreadable": 0,
                                 "reconnects": 0}
    assert summary["end_reason"] == "end of source" and summary["capture_thread_ended"]


def test_log_matches_the_classifier_on_the_same_frames(tiny_model, mjpg_video, tmp_path):
    camera_app.run(tiny_model, mjpg_video, log=str(tmp_path / "log.jsonl"), top_k=3)
    frames, _ = read_log(tmp_path / "log.jsonl")
    classifier = deploy.load(tiny_model)
    capture = cv2.VideoCapture(str(mjpg_video))
    for record in frames:
        ok, image = capture.read()
        assert ok
        expected = classifier.predict(image, top_k=3).top
        assert [t["label"] for t in record["top_k"]] == [label for label, _ in expected]
        np.testing.assert_allclose([t["prob"] for t in record["top_k"]], [p for _, p in expected], atol=1e-5)


def test_newest_mode_on_a_file_waits_for_the_model(tiny_model, mjpg_video):
    """A file is not a camera: without --realtime no frame is dropped, even behind a slow model."""
    slow = SlowClassifier(deploy.load(tiny_model), 0.01)
    summary = run_app(AppConfig(str(tiny_model), str(mjpg_video)), classifier=slow)
    assert summary["frames"]["classified"] == 40 and summary["frames"]["dropped"] == 0


def test_realtime_file_drops_what_a_slow_model_has_no_time_for(tiny_model, tmp_path):
    video = write_video(tmp_path / "clip.avi", 45, "MJPG", fps=60)
    slow = SlowClassifier(deploy.load(tiny_model), 0.05)
    config = AppConfig(str(tiny_model), str(video), realtime=True, log=str(tmp_path / "log.jsonl"))
    summary = run_app(config, classifier=slow)
    frames, _ = read_log(tmp_path / "log.jsonl")
    indexes = [r["frame"] for r in frames]
    assert indexes == sorted(set(indexes))  # never the same frame twice, always forward
    counts = summary["frames"]
    assert counts["read"] == 45 and counts["dropped"] > 0
    assert counts["classified"] + counts["dropped"] in (45, 44)  # at most the last frame left in the slot


def test_record_report_loop_and_max_frames(tiny_model, mjpg_video, tmp_path):
    summary = camera_app.run(tiny_model, mjpg_video, loop=1, record=str(tmp_path / "out.avi"),
                             report=str(tmp_path / "report.json"), max_frames=70)
    assert summary["frames"]["classified"] == 70 and summary["end_reason"] == "max frames"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["frames"]["classified"] == 70 and report["latency_ms"]["inference"]["p95"] > 0
    assert set(report["overhead_ms"]) >= {"p50", "p95", "mean"}
    recorded = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(recorded.get(cv2.CAP_PROP_FRAME_COUNT)) == 70
    ok, frame = recorded.read()
    assert ok and frame.shape == (120, 160, 3)
    # the overlay is drawn on the frames: they differ from the source frames
    assert np.abs(frame.astype(int) - cv2.VideoCapture(str(mjpg_video)).read()[1].astype(int)).mean() > 1


def test_image_folder_with_an_unreadable_file(tiny_model, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((40, 50, 3), 40 * i, np.uint8))
    (folder / "2.png").write_bytes(b"broken")
    summary = camera_app.run(tiny_model, folder, buffer=True, log=str(tmp_path / "log.jsonl"))
    frames, _ = read_log(tmp_path / "log.jsonl")
    assert [r["frame"] for r in frames] == [0, 1, 3, 4]
    assert summary["frames"]["unreadable"] == 1 and summary["frames"]["classified"] == 4


def test_video_from_images_holds_each_image(tmp_path):
    paths = []
    for i, color in enumerate([(255, 0, 0), (0, 0, 255)]):
        image = np.zeros((300, 500, 3), np.uint8)
        image[:] = color
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
        paths.append(tmp_path / f"{i}.png")
    count = write_video_from_images(paths, tmp_path / "held.avi", hold_frames=4, fps=10, size=(160, 120))
    assert count == 8
    capture = cv2.VideoCapture(str(tmp_path / "held.avi"))
    frames = [capture.read()[1] for _ in range(8)]
    assert all(f.shape == (120, 160, 3) for f in frames)
    assert [int(f[60, 80, 0] > 128) for f in frames] == [1, 1, 1, 1, 0, 0, 0, 0]


def test_cli_prints_the_summary(tiny_model, mjpg_video, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "edgevision", "camera", "--model", str(tiny_model), "--source", str(mjpg_video),
         "--display", "none", "--max-frames", "5"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "classified 5" in done.stdout and "pipeline" in done.stdout and "p95" in done.stdout


def test_stamps_survive_the_video_round_trip(mjpg_video):
    capture = cv2.VideoCapture(str(mjpg_video))
    assert [read_stamp(capture.read()[1]) for _ in range(5)] == [0, 1, 2, 3, 4]
