"""Fixtures for the camera app: a tiny real ONNX classifier, videos written here, a slow classifier."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

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
