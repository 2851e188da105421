"""benchmarks: report.html is self-contained and renders; the Pareto front."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from benchmarks.cli import main as bench_main
from benchmarks.pareto import pareto_front
from benchmarks.runner import Row
from deploy.timing import LatencyStats
from tests.runtime.onnx_models import make_onnx, tiny_card


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """One real bench run of two tiny models on real PNG files, with --out."""
    root = tmp_path_factory.mktemp("bench_html")
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("bright", 210)):
        (root / "data" / "val" / name).mkdir(parents=True)
        for i in range(4):
            image = np.clip(rng.normal(level, 20, (40, 50, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / "data" / "val" / name / f"{i}.png"), image)
    card = tiny_card(classes=2)
    card.class_names = ["bright", "dark"]
    models = [str(make_onnx(root / f"m{seed}.onnx", classes=2, card=card, seed=seed)) for seed in (0, 1)]
    assert bench_main(["bench", *models, "--threads", "1", "--budget", "0.2", "--data", str(root / "data"),
                       "--out", str(root / "out")]) == 0
    return root / "out"


class Links(HTMLParser):
    """Every URL the page would load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action") and value:
                self.urls.append(value)
                if tag == "img" and name == "src":
                    self.images.append(value)


def test_report_html_is_self_contained(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    links = Links()
    links.feed(page)
    assert len(links.images) == 4  # latency/top-1, size/top-1, distributions, roofline
    assert all(src.startswith("data:image/png;base64,") for src in links.images)
    assert all(url.startswith("data:") for url in links.urls)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "m0.onnx" in page and "Pareto front" in page and "<th>cpu</th>" in page


def test_report_html_renders_in_headless_chromium(report_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1000,2200", f"--screenshot={shot}", (report_dir / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = cv2.imread(str(shot), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (2200, 1000)
    plots = image[400:2000]  # below the table: the plots
    dark = (plots < 128).mean()
    assert 0.005 < dark < 0.5, dark  # ink on a white page: lines, points, labels
    # colour: the plotted points and the violins are not grey
    colour = cv2.imread(str(shot))[400:2000].astype(int)
    assert (np.ptp(colour, axis=2) > 60).sum() > 400  # a page whose images do not decode: about 100


def row(name: str, p50_ms: float, top1: float, batch: int = 1) -> Row:
    r = Row(name, "onnxruntime", "fp32", 1, batch, 1000, status="ok", top1=top1)
    r.latency = LatencyStats.from_samples([p50_ms / 1000] * 3)
    return r


def test_pareto_front_keeps_rows_no_other_beats_on_both():
    rows = [row("slow-good", 10, 0.95), row("fast-bad", 2, 0.80), row("dominated", 11, 0.90),
            row("tie-slower", 10.5, 0.95), row("mid", 5, 0.90), row("batched", 24, 0.93, batch=8)]
    front = [r.model for r in pareto_front(rows)]
    assert front == ["fast-bad", "batched", "slow-good"]  # batched: 3 ms per image, beats mid on both


def test_demo_ends_with_the_html_report(report_dir, tmp_path, capsys):
    from edgevision.demo import bench_stage, run_demo

    root = report_dir.parent

    def made_before(state):  # what the earlier stages leave behind
        state.artifacts.update(onnx=root / "m0.onnx", onnx_int8=root / "m1.onnx", images=root / "data")
        return "ready"

    run_demo(tmp_path, [("setup", made_before), ("bench", bench_stage)])
    html = tmp_path / "bench" / "report.html"
    assert capsys.readouterr().out.rstrip().endswith(f"benchmark report to hand on: {html}")
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert "| m1.onnx |" in (tmp_path / "bench" / "report.md").read_text()
