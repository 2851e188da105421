"""--serve: the page, the shared MJPEG stream (urllib and cv2.VideoCapture at once), stats, snapshot."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.request

import cv2
import numpy as np
import pytest

from camera_app.app import AppConfig
from camera_app.overlay import BAR_COLORS
from camera_app.serve import FrameServer, parse_bind
from tests.camera.conftest import write_video
from tests.camera.mjpeg_server import free_port
from tests.camera.test_live import Background, wait_for


def test_parse_bind_defaults_to_localhost():
    assert parse_bind("8080") == ("127.0.0.1", 8080)
    assert parse_bind("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    with pytest.raises(Exception, match="HOST:"):
        parse_bind("localhost:http")


def read_mjpeg_parts(url: str, count: int, timeout: float = 5.0) -> list[bytes]:
    """The first `count` JPEGs of a multipart stream, parsed by hand."""
    parts = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        while len(parts) < count:
            line = response.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                response.readline()
                parts.append(response.read(length))
    return parts


def test_only_watchers_make_the_pipeline_encode():
    server = FrameServer("127.0.0.1:0")
    try:
        assert server.watching  # nothing published yet: the first frame is worth encoding
        server.publish(b"jpeg-0")
        assert not server.watching
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.extend(read_mjpeg_parts(server.url + "stream.mjpg", 1)))
        reader.start()
        assert wait_for(lambda: server.watching, 5)
        server.publish(b"jpeg-1")  # a stream client gets the next new frame, not the one before it joined
        reader.join(5)
        assert result == [b"jpeg-1"]
        # the client left: the server notices at its next write, and encoding stops
        published = iter(range(2, 1000))
        assert wait_for(lambda: server.publish(f"jpeg-{next(published)}".encode()) or not server.watching, 5)
        assert urllib.request.urlopen(server.url + "snapshot.jpg", timeout=5).read() == server.jpeg
    finally:
        server.close()


@pytest.fixture
def served_app(tiny_model, tmp_path):
    video = write_video(tmp_path / "clip.avi", 30, "MJPG", fps=30)
    port = free_port()
    config = AppConfig(str(tiny_model), str(video), realtime=True, loop=-1, serve=str(port), duration=20)
    app = Background(config, None)
    base = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        try:
            return urllib.request.urlopen(base + "stats.json", timeout=1).status == 200
        except OSError:
            return False

    assert wait_for(up, 10), "the server did not come up"
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
    page = urllib.request.urlopen(base, timeout=5).read().decode()
    assert 'src="stream.mjpg"' in page and "stats.json" in page


@pytest.fixture
def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return found


@pytest.mark.slow
def test_page_in_headless_chromium(browser, served_app, tmp_path):
    shot = tmp_path / "page.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=640,480",
         "--virtual-time-budget=3000", f"--screenshot={shot}", served_app],
        capture_output=True, timeout=60,
    )
    image = cv2.imread(str(shot))
    assert image is not None, "chromium wrote no screenshot"
    green = (np.abs(image.astype(int) - np.array(BAR_COLORS[0])).max(axis=2) <= 12).sum()
    assert green > 50, "the annotated stream (its probability bar) is not on the page"
