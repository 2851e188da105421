"""Fixtures of the camera app's tests: a video written here (`tiny_model` is in tests/conftest.py, the
helpers they share with other test files in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write_video

pytest.importorskip("onnx", reason="the tiny test models are built with onnx (the export extra)")


@pytest.fixture
def mjpg_video(tmp_path) -> Path:
    return write_video(tmp_path / "clip.avi", 40, "MJPG")
