"""The --serve page in headless Chromium, for a real model whose class names and file name are HTML and
script payloads: they show as text, nothing runs, nothing loads. And any label reaches /stats.json intact."""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import shutil
import subprocess
import urllib.request

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera_app.app import AppConfig
from camera_app.overlay import BAR_COLORS
from camera_app.serve import FrameServer
from camera_app.serve_http import FILES
from tests.camera.mjpeg_server import free_port
from tests.helpers import Records, serving, write_video

# Each one, were it markup, would request /pwned* from the server (img-src 'self' allows the request
# even where the policy blocks the script): the test watches the server's request log for it.
PAYLOADS = [
    "<img src=/pwned-img onerror=\"fetch('/pwned-onerror')\">",
    "</script><script>fetch('/pwned-script')</script>",
    "\"><svg onload=fetch('/pwned-svg')><img src=/pwned-img2>",
    ("long " + "&lt;<b>x</b>" * 24).ljust(300, "y"),
]
MODEL_NAME = "<img src=pwned-title>.onnx"


@pytest.fixture
def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return found


@pytest.fixture
def hostile_app(tmp_path):
    from tests.runtime.onnx_models import make_onnx, tiny_card

    assert len(PAYLOADS[3]) == 300
    card = dataclasses.replace(tiny_card(classes=len(PAYLOADS)), class_names=PAYLOADS)
    model = make_onnx(tmp_path / MODEL_NAME, classes=len(PAYLOADS), card=card)
    video = write_video(tmp_path / "clip.avi", 30, "MJPG", fps=30)
    port = free_port()
    logger, log = logging.getLogger("edgevision.camera"), Records(logging.DEBUG)
    level = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.DEBUG)
    config = AppConfig(str(model), str(video), realtime=True, loop=-1, serve=str(port), duration=60, top_k=4)
    app, base = serving(config)
    yield base, log
    app.stop.set()
    app.join(10)
    logger.removeHandler(log)
    logger.setLevel(level)


def chromium(browser: str, url: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=4000",
         *flags, url],
        capture_output=True, text=True, timeout=90,
    )


@pytest.mark.slow
def test_payload_labels_show_as_text_and_nothing_runs(browser, hostile_app):
    base, log = hostile_app
    dom = chromium(browser, base, "--dump-dom").stdout
    requested = [r.getMessage() for r in log.records if r.getMessage().startswith("serve:")]
    assert any('"GET /stats.json' in line for line in requested), "the page never asked for its numbers"
    assert not [line for line in requested if "pwned" in line], "a payload ran or loaded as markup"
    for label in PAYLOADS:
        assert f"<td>{html.escape(label, quote=False)}</td>" in dom, label[:40]  # a text node in a table cell
        assert label not in dom
    title = f"edgevision camera: {MODEL_NAME} on"
    assert f"<title>{html.escape(title, quote=False)}" in dom  # the title too, as text
    assert f'<h1 id="title">{html.escape(title, quote=False)}' in dom


@pytest.mark.slow
def test_page_in_headless_chromium_shows_the_stream(browser, hostile_app, tmp_path):
    base, _ = hostile_app
    shot = tmp_path / "page.png"
    chromium(browser, base, "--window-size=1280,800", f"--screenshot={shot}")
    image = cv2.imread(str(shot))
    assert image is not None, "chromium wrote no screenshot"
    green = (np.abs(image.astype(int) - np.array(BAR_COLORS[0])).max(axis=2) <= 12).sum()
    assert green > 50, "the annotated stream (its probability bar) is not on the page"


@settings(max_examples=60, deadline=None)
@given(label=st.text(max_size=80))
def test_any_label_reaches_stats_json_intact_and_never_the_page(label):
    server = FrameServer("127.0.0.1:0", info={"classes": [label], "source": label})
    try:
        server.update_stats({"top_k": [{"label": label, "prob": 0.5}]})
        body = json.loads(urllib.request.urlopen(server.url + "stats.json", timeout=5).read())
        assert body["top_k"][0]["label"] == label and body["info"] == {"classes": [label], "source": label}
        page = urllib.request.urlopen(server.url, timeout=5).read()
        assert page == FILES["/"][0]  # the page is fixed: data reaches it only through stats.json, as text
    finally:
        server.close()
