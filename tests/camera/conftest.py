"""Fixtures and helpers for the camera app's tests: a tiny real ONNX classifier, videos written here, a slow
classifier, the app run in a thread (`Background`), its log read back (`records`), bounded polling (`wait_for`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from camera_app.app import AppConfig, run_app
from tests.camera.mjpeg_server import stamped_frame

pytest.importorskip("onnx", reason="the tiny test models are built with onnx (the export extra)")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from tests.runtime.onnx_models import make_onnx, tiny_card

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    return make_onnx(path, card=tiny_card(classes=3))


def write_video(path: Path, frames: int, fourcc: str = "MJPG", fps: float = 30.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (160, 120))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for number in range(frames):
        writer.write(stamped_frame(number))
    writer.release()
    return path


@pytest.fixture
def mjpg_video(tmp_path) -> Path:
    return write_video(tmp_path / "clip.avi", 40, "MJPG")


class SlowClassifier:
    """A real `deploy.Classifier` that takes at least `delay_s` per call (a slower device)."""

    def __init__(self, classifier, delay_s: float) -> None:
        self.classifier = classifier
        self.delay_s = delay_s
        self.card = classifier.card
        self.info = classifier.info

    def predict(self, image: np.ndarray, top_k: int = 5):
        start = time.monotonic()
        prediction = self.classifier.predict(image, top_k=top_k)
        time.sleep(max(0.0, self.delay_s - (time.monotonic() - start)))
        prediction.timings_ms["inference"] = (time.monotonic() - start) * 1e3 - prediction.timings_ms["preprocess"]
        return prediction


class Background:
    """run_app in a thread, with a stop switch and a bounded join."""

    def __init__(self, config: AppConfig, classifier) -> None:
        self.stop = threading.Event()
        self.summary: dict | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(config, classifier), daemon=True)
        self.thread.start()

    def _run(self, config: AppConfig, classifier) -> None:
        try:
            self.summary = run_app(config, classifier=classifier, stop=self.stop)
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def join(self, timeout: float) -> dict:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the app did not end within {timeout} s"
        if self.error:
            raise self.error
        return self.summary


def records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def serving(config: AppConfig) -> tuple[Background, str]:
    """run_app with `config` (which has `serve`) in the background, once /stats.json answers: the app
    and its base URL."""
    import urllib.request

    app = Background(config, None)
    base = f"http://127.0.0.1:{config.serve}/"

    def up() -> bool:
        try:
            return urllib.request.urlopen(base + "stats.json", timeout=1).status == 200
        except OSError:
            return False

    assert wait_for(up, 10), "the server did not come up"
    return app, base


class Records(logging.Handler):
    """The records of one logger, whatever an earlier in-process command did to propagation (which
    pytest's caplog, listening on the root logger, depends on differently across pytest versions)."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
