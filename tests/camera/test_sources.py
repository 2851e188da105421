"""--source parsing, the GStreamer check, the CSI pipeline, picamera2 (a fake module), image folders."""

from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest

from camera_app.sources import (
    NO_GSTREAMER,
    SourceOptions,
    SourceSpec,
    UnreadableFrame,
    csi_pipeline,
    gstreamer_available,
    open_source,
    parse_source,
)
from deploy.errors import EdgevisionError


def test_parse_source_forms(tmp_path, mjpg_video):
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    assert parse_source("0") == SourceSpec("camera", 0)
    assert parse_source("/dev/video2") == SourceSpec("camera", 2)
    assert parse_source("v4l2://3") == SourceSpec("camera", 3)
    assert parse_source("v4l2:///dev/video1") == SourceSpec("camera", 1)
    assert parse_source("csi://0") == SourceSpec("csi", 0)
    assert parse_source("picam") == SourceSpec("picam", 0)
    assert parse_source("picam:1") == SourceSpec("picam", 1)
    assert parse_source("rtsp://cam.local/live").kind == "stream"
    assert parse_source("http://127.0.0.1:8080/video.mjpg").kind == "stream"
    assert parse_source("gst:videotestsrc ! appsink") == SourceSpec("gst", "videotestsrc ! appsink")
    assert parse_source(str(mjpg_video)) == SourceSpec("file", str(mjpg_video))
    assert parse_source(f"file://{mjpg_video}").kind == "file"
    assert parse_source(str(tmp_path / "frames")).kind == "images"
    assert parse_source(str(tmp_path / "frames" / "*.png")).kind == "images"
    assert parse_source("0").live and parse_source("csi://0").live and not parse_source(str(mjpg_video)).live
    with pytest.raises(EdgevisionError, match="not found"):
        parse_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(EdgevisionError, match="appsink"):
        parse_source("gst:")


def test_gstreamer_is_read_from_build_information():
    with_gst = "  Video I/O:\n    FFMPEG:    YES\n    GStreamer:                   YES (1.20.3)\n"
    without = "  Video I/O:\n    FFMPEG:    YES\n    GStreamer:                   NO\n"
    assert gstreamer_available(with_gst)
    assert not gstreamer_available(without)
    assert not gstreamer_available("no such line")
    # What this OpenCV says of itself (the pip wheels: no GStreamer).
    built_in = "GStreamer:                   YES" in cv2.getBuildInformation()
    assert gstreamer_available() == built_in


def test_gst_and_csi_sources_name_jetpack_where_gstreamer_is_missing():
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer")
    for spec in (parse_source("csi://0"), parse_source("gst:videotestsrc ! videoconvert ! appsink")):
        with pytest.raises(EdgevisionError) as info:
            open_source(spec, SourceOptions())
        assert str(info.value) == NO_GSTREAMER and "JetPack" in NO_GSTREAMER and "\n" not in NO_GSTREAMER


def test_csi_pipeline_string():
    pipeline = csi_pipeline(1, 1920, 1080, 30)
    elements = [part.strip() for part in pipeline.split("!")]
    assert elements[0] == "nvarguscamerasrc sensor-id=1"
    assert elements[1] == "video/x-raw(memory:NVMM), width=1920, height=1080, framerate=30/1, format=NV12"
    assert elements[2] == "nvvidconv"
    assert "format=BGRx" in elements[3] and elements[4] == "videoconvert"
    assert elements[5] == "video/x-raw, format=BGR"
    # newest buffer only: the appsink keeps one buffer and drops the rest, without clock sync
    assert elements[6] == "appsink drop=true max-buffers=1 sync=false"


class FakePicamera2:
    """Stands in for picamera2.Picamera2: records how it was configured, returns BGRX frames."""

    instances: list = []

    def __init__(self, index: int) -> None:
        if index > 0:
            raise IndexError("list index out of range")
        self.index, self.config, self.started, self.closed = index, None, False, False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict, controls: dict) -> dict:
        return {"main": main, "controls": controls}

    def configure(self, config: dict) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_array(self, stream: str) -> np.ndarray:
        width, height = self.config["main"]["size"]
        frame = np.zeros((height, width, 4), np.uint8)
        frame[..., 0] = 200  # blue, in OpenCV's order
        return frame

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


def test_picamera2_source_through_a_fake_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    source = open_source(parse_source("picam"), SourceOptions(width=320, height=240, fps=15))
    camera = FakePicamera2.instances[-1]
    assert camera.config == {"main": {"size": (320, 240), "format": "RGB888"}, "controls": {"FrameRate": 15}}
    frame = source.read()
    assert frame.shape == (240, 320, 3) and frame[0, 0, 0] == 200
    assert source.live
    source.release()
    assert camera.closed
    with pytest.raises(EdgevisionError, match="cannot open Raspberry Pi camera 1"):
        open_source(parse_source("picam:1"), SourceOptions())


def test_missing_picamera2_names_apt_and_system_site_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails
    with pytest.raises(EdgevisionError) as info:
        open_source(parse_source("picam"), SourceOptions())
    assert "apt install python3-picamera2" in str(info.value) and "--system-site-packages" in str(info.value)


def test_image_folder_skips_an_unreadable_file(tmp_path):
    for name in ("a.png", "c.png"):
        cv2.imwrite(str(tmp_path / name), np.full((10, 12, 3), 7, np.uint8))
    (tmp_path / "b.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(parse_source(str(tmp_path)), SourceOptions())
    assert source.read().shape == (10, 12, 3)
    with pytest.raises(UnreadableFrame, match="b.png"):
        source.read()
    assert source.read() is not None
    assert source.read() is None
