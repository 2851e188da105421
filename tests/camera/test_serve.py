"""--serve: the shared MJPEG stream (urllib and cv2.VideoCapture at once), pacing, stats and their history."""

from __future__ import annotations

import json
import threading
import urllib.request

import cv2
import numpy as np
import pytest

from camera_app import serve
from camera_app.app import AppConfig
from camera_app.serve import FrameServer, mjpeg_part, parse_bind
from tests.camera.mjpeg_server import free_port
from tests.helpers import serving, wait_for, write_video


def test_parse_bind_defaults_to_localhost():
    assert parse_bind("8080") == ("127.0.0.1", 8080)
    assert parse_bind("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    with pytest.raises(Exception, match="HOST:"):
        parse_bind("localhost:http")


def test_mjpeg_part_is_what_a_multipart_reader_splits():
    part = mjpeg_part(b"\xff\xd8jpeg\xff\xd9", "b")
    assert part == b"--b\r\nContent-Type: image/jpeg\r\nContent-Length: 8\r\n\r\n\xff\xd8jpeg\xff\xd9\r\n"


def read_mjpeg_parts(url: str, count: int, timeout: float = 5.0, parts: list[bytes] | None = None) -> list[bytes]:
    """The first `count` JPEGs of a multipart stream, parsed by hand (appended to `parts` as they come)."""
    parts = [] if parts is None else parts
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        while len(parts) < count:
            line = response.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                response.readline()
                parts.append(response.read(length))
    return parts


class Clock:
    """Stands in for time.monotonic in camera_app.serve, so pacing is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wants_frame_only_for_watchers_and_at_the_paced_rate(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(serve, "monotonic", clock)
    server = FrameServer("127.0.0.1:0", serve_fps=10.0)
    try:
        assert not server.wants_frame(30.0)  # nobody watches: nothing is worth encoding
        with server.watching():
            assert server.wants_frame(30.0)
            server.publish(b"jpeg-0")
            clock.now += 0.05
            assert not server.wants_frame(30.0)  # 10 fps: 0.1 s apart
            clock.now += 0.03
            assert server.wants_frame(30.0)  # a quarter period early is on time (frame times jitter)
            server.publish(b"jpeg-1")
            clock.now += 1.0
            assert server.wants_frame(5.0)  # a 5 fps source sets the pace below serve_fps
            server.publish(b"jpeg-2")
            clock.now += 0.1
            assert not server.wants_frame(5.0)
            clock.now += 0.1
            assert server.wants_frame(5.0)
            # 30 frames a second for 10 s, encoded whenever wanted: at most 10 a second on average
            server.publish(b"jpeg-3")
            published = 0
            for _ in range(300):
                clock.now += 1 / 30
                if server.wants_frame(30.0):
                    server.publish(b"jpeg")
                    published += 1
            assert 95 <= published <= 101
        assert not server.wants_frame(30.0)
    finally:
        server.close()


def test_a_stream_never_sends_a_frame_twice():
    server = FrameServer("127.0.0.1:0")
    try:
        result: list[bytes] = []
        reader = threading.Thread(target=read_mjpeg_parts, args=(server.url + "stream.mjpg", 3, 5.0, result))
        server.publish(b"before")
        reader.start()
        assert wait_for(lambda: server.watchers == 1, 5)
        for name in (b"jpeg-1", b"jpeg-2", b"jpeg-3"):
            server.publish(name)
            # the next one only once this one went out (the reader asks for the next new frame)
            assert wait_for(lambda n=name: n in result, 5)
        reader.join(5)
        assert result == [b"jpeg-1", b"jpeg-2", b"jpeg-3"]  # not `before`, nothing repeated
        assert wait_for(lambda: server.publish(b"x") or server.watchers == 0, 5)  # it left: noticed at the next write
    finally:
        server.close()


def test_snapshot_waits_for_a_new_frame():
    server = FrameServer("127.0.0.1:0")
    try:
        server.publish(b"stale")
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(urllib.request.urlopen(server.url + "snapshot.jpg",
                                                                                 timeout=5).read()))
        reader.start()
        assert wait_for(lambda: server.wants_frame(), 5)
        server.publish(b"fresh")
        reader.join(5)
        assert got == [b"fresh"]
    finally:
        server.close()


def test_stats_json_holds_info_stats_and_a_bounded_history(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(serve, "monotonic", clock)
    info = {"model": "m.onnx", "classes": ["a", "b"], "accuracy": None}
    server = FrameServer("127.0.0.1:0", title="m.onnx on clip.avi", info=info)
    try:
        stats = {"frame": 0, "top_k": [{"label": "a", "prob": 0.75}], "pipeline_fps": float("nan"),
                 "latency_ms": {"preprocess": {"p50": 1.0, "p95": 2.0}, "inference": {"p50": 3.0, "p95": 4.0}}}
        for _ in range(2000):  # 1000 s at 2 frames a second: sampled 2 a second, kept for 60 s
            server.update_stats(stats)
            clock.now += 0.5
        body = json.loads(urllib.request.urlopen(server.url + "stats.json", timeout=5).read())
        assert body["info"] == info and body["title"] == "m.onnx on clip.avi" and body["frame"] == 0
        assert body["pipeline_fps"] is None  # NaN is not JSON: null
        history = body["history"]
        assert len(history["t"]) == len(history["latency_ms"]) == len(history["confidence"]) == 300
        assert history["latency_ms"][-1] == 4.0 and history["confidence"][-1] == 0.75
    finally:
        server.close()


@pytest.fixture
def served_app(tiny_model, tmp_path):
    video = write_video(tmp_path / "clip.avi", 30, "MJPG", fps=30)
    port = free_port()
    config = AppConfig(str(tiny_model), str(video), realtime=True, loop=-1, serve=str(port), duration=20)
    app, base = serving(config)
    yield base
    app.stop.set()
    app.join(10)


@pytest.mark.slow
def test_two_clients_at_once(served_app):
    base = served_app
    by_urllib: list[bytes] = []
    reader = threading.Thread(target=lambda: by_urllib.extend(read_mjpeg_parts(base + "stream.mjpg", 5)))
    reader.start()
    capture = cv2.VideoCapture(base + "stream.mjpg", cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
    frames = [capture.read() for _ in range(5)]
    capture.release()
    reader.join(10)
    assert all(ok and frame.shape == (120, 160, 3) for ok, frame in frames)
    assert len(by_urllib) == 5
    decoded = cv2.imdecode(np.frombuffer(by_urllib[-1], np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (120, 160, 3)
    stats = json.loads(urllib.request.urlopen(base + "stats.json", timeout=5).read())
    assert stats["top_k"][0]["label"].startswith("class") and stats["pipeline_fps"] > 0
    assert stats["info"]["classes"] == ["class0", "class1", "class2"] and stats["info"]["backend"] == "onnxruntime"
    page = urllib.request.urlopen(base, timeout=5).read().decode()
    assert 'src="stream.mjpg"' in page and 'src="app.js"' in page


@pytest.mark.slow
def test_a_file_read_flat_out_is_streamed_at_serve_fps(tiny_model, tmp_path):
    """Without --realtime the app classifies as fast as it can; the stream still carries at most serve_fps."""
    video = write_video(tmp_path / "clip.avi", 30, "MJPG", fps=30)
    port = free_port()
    config = AppConfig(str(tiny_model), str(video), loop=-1, serve=str(port), serve_fps=4.0, duration=30)
    app, base = serving(config)
    try:
        count, seconds = _count_stream(base + "stream.mjpg", 3.0)
        stats = json.loads(urllib.request.urlopen(base + "stats.json", timeout=5).read())
    finally:
        app.stop.set()
        summary = app.join(10)
    # the stream carries at most serve_fps (an upper bound: a loaded machine only sends fewer), while
    # the model ran on every frame it could read, more than the stream showed
    assert 1 <= count <= 4.0 * seconds + 2, (count, seconds)
    assert stats["classified"] > count and summary["frames"]["classified"] >= stats["classified"]


def _count_stream(url: str, seconds: float) -> tuple[int, float]:
    """JPEG parts received in `seconds` of reading, and the seconds it really took."""
    import time

    count = 0
    with urllib.request.urlopen(url, timeout=10) as response:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            line = response.readline()
            if line.lower().startswith(b"content-length:"):
                response.readline()
                response.read(int(line.split(b":")[1]))
                count += 1
        return count, time.monotonic() - start
