"""benchmarks: report.html is self-contained and renders; the Pareto front; provenance and the same
columns in the console, report.md and report.html; plot axes fitted to the data."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from benchmarks.cli import main as bench_main
from benchmarks.pareto import pareto_front
from benchmarks.rows import Row
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
    console = io.StringIO()
    (root / "started.txt").write_text(datetime.now(timezone.utc).replace(microsecond=0).isoformat())
    with contextlib.redirect_stdout(console):
        assert bench_main(["bench", *models, "--threads", "1", "--budget", "0.2", "--data", str(root / "data"),
                           "--out", str(root / "out")]) == 0
    (root / "console.txt").write_text(console.getvalue())
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


class Tables(HTMLParser):
    """The text of every table cell, table by table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def markdown_table(text: str) -> list[list[str]]:
    """Header and body cells of the first pipe table in `text` (its separator line left out)."""
    from tests.helpers import md_cells

    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [md_cells(line) for line in lines if not line.startswith("|---")]


def test_console_markdown_and_html_show_the_same_columns_and_cells(report_dir):
    console = markdown_table((report_dir.parent / "console.txt").read_text())
    markdown = markdown_table((report_dir / "report.md").read_text())
    page = Tables()
    page.feed((report_dir / "report.html").read_text())
    html = next(table for table in page.tables if table[0][0] == "model")
    assert console == markdown == html
    header = html[0]
    for column in ("p50 ms", "p95 ms", "mean ms", "GMAC/s", "% peak", "top-1 %"):
        assert column in header
    rows = json.loads((report_dir / "report.json").read_text())["rows"]
    assert len(html) == 1 + len(rows) == 3
    for cells, row in zip(html[1:], rows, strict=True):
        shown = dict(zip(header, cells, strict=True))
        for stat in ("p95", "mean"):
            assert float(shown[f"{stat} ms"]) == pytest.approx(row["latency_ms"][stat], rel=0.01)
        assert shown["% peak"] != "-" and 0 < float(shown["% peak"])


def test_provenance_in_console_markdown_json_and_html(report_dir):
    from importlib import metadata

    from benchmarks.provenance import images_fingerprint

    report = json.loads((report_dir / "report.json").read_text())
    provenance = report["provenance"]
    date = datetime.fromisoformat(provenance["date"].replace("Z", "+00:00"))
    started = datetime.fromisoformat((report_dir.parent / "started.txt").read_text())
    assert date.utcoffset() == timedelta(0) and started <= date <= datetime.now(timezone.utc)
    argv = shlex.split(provenance["command"])
    assert argv[:2] == ["edgevision", "bench"] and argv[2].endswith("m0.onnx") and "--data" in argv
    data = report_dir.parent / "data"
    assert provenance["data"] == {"name": str(data), "split": "val", "images": 8, "classes": 2,
                                  "sha256": images_fingerprint(sorted((data / "val").rglob("*.png")), data / "val")}
    versions = provenance["versions"]
    assert versions["onnxruntime"] == metadata.version("onnxruntime") and versions["numpy"] == np.__version__
    assert versions["edgevision"] and versions["python"].count(".") == 2
    assert versions["opencv"].startswith(cv2.__version__)
    assert not {"torch", "executorch", "openvino", "tensorrt"} & set(versions)  # only the runtimes the rows used
    expected = [provenance["date"], provenance["command"], provenance["data"]["sha256"],
                f"onnxruntime {versions['onnxruntime']}"]
    page = Tables()
    page.feed((report_dir / "report.html").read_text())
    shown = {row[0]: row[1] for table in page.tables for row in table if len(row) == 2}
    assert shown["date (UTC)"] == provenance["date"] and shown["command"] == provenance["command"]
    from tests.helpers import md_unescape

    for text in (report_dir.parent / "console.txt").read_text(), (report_dir / "report.md").read_text():
        plain = md_unescape(text)
        assert all(value in plain for value in expected), plain[-800:]
    assert all(value in " ".join(shown.values()) for value in expected)
