"""benchmarks: the versioned JSON report, the threads x batch axes, and Ctrl-C keeping finished rows."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.cli import main as bench_main
from benchmarks.model_stats import onnx_stats
from benchmarks.report import CSV_COLUMNS
from benchmarks.schema import SCHEMA, read_report
from deploy.errors import EdgevisionError
from tests.runtime.onnx_models import make_onnx, tiny_card

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def labelled_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("bright", 210)):
        (tmp_path / "data" / "val" / name).mkdir(parents=True)
        for i in range(5):
            image = np.clip(rng.normal(level, 20, (40, 50, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(tmp_path / "data" / "val" / name / f"{i}.png"), image)
    return tmp_path / "data"


def two_class_card():
    card = tiny_card(classes=2)
    card.class_names = ["bright", "dark"]
    return card


def test_mac_and_parameter_count_of_a_known_graph(tmp_path):
    """conv 3x3, 3 -> 4 channels on 32x32 (padded), then gemm 4 -> 2 classes."""
    path = make_onnx(tmp_path / "m.onnx", classes=2, card=two_class_card())
    stats = onnx_stats(path)
    assert stats.macs == 32 * 32 * 4 * 3 * 3 * 3 + 4 * 2
    assert stats.params == 4 * 3 * 3 * 3 + 4 + 2 * 4 + 2
    assert onnx_stats(tmp_path / "m.pte") is None


def test_threads_by_batch_sweep_and_the_schema(tmp_path, labelled_folder, capsys):
    dynamic = make_onnx(tmp_path / "dynamic.onnx", classes=2, card=two_class_card(), seed=0)
    static = make_onnx(tmp_path / "static.onnx", classes=2, card=two_class_card(), seed=1, batch=1)
    out = tmp_path / "report"
    code = bench_main(["bench", str(dynamic), str(static), "--threads", "1,2", "--batch", "1,4", "--budget", "0.2",
                       "--data", str(labelled_folder), "--out", str(out)])
    assert code == 1  # the static model's batch-4 rows failed
    report = read_report(out / "report.json")
    assert json.loads((out / "report.json").read_text())["schema"] == SCHEMA
    assert report.machine["cpu"] and isinstance(report.machine["isa"], list) and not report.machine["emulated"]
    configs = [(r.model, r.threads, r.batch, r.status) for r in report.rows]
    assert configs == [
        ("dynamic.onnx", 1, 1, "ok"), ("dynamic.onnx", 1, 4, "ok"), ("dynamic.onnx", 2, 1, "ok"),
        ("dynamic.onnx", 2, 4, "ok"), ("static.onnx", 1, 1, "ok"), ("static.onnx", 1, 4, "failed"),
        ("static.onnx", 2, 1, "ok"), ("static.onnx", 2, 4, "failed"),
    ]
    assert all(r.error.startswith("static batch") for r in report.rows if r.status == "failed")
    ok = [r for r in report.rows if r.status == "ok"]
    for row in ok:
        assert row.latency.samples >= len(row.samples_ms) >= min(row.latency.samples, 15)
        latency = row.latency
        assert latency.min_ms <= latency.p50_ms <= latency.p90_ms <= latency.p99_ms <= latency.max_ms
        assert row.load_s > 0 and row.peak_rss_bytes > 2**20 and row.images == 10
        assert row.top5 == 1.0  # two classes: the right one is always among the best five
        assert row.macs == 32 * 32 * 4 * 27 + 8
    assert {r.agreement for r in ok if r.model == "dynamic.onnx"} == {1.0}  # the reference row's own model
    assert {r.top1 for r in ok if r.model == "dynamic.onnx"} == {ok[0].top1}  # scored once per model
    raw = json.loads((out / "report.json").read_text())["rows"]
    # images per second of a batch of 4 (the JSON rounds the mean to 0.1 us: a tiny model at 0.04 ms moves 0.1 %)
    assert raw[1]["throughput_ips"] == pytest.approx(4000 / raw[1]["latency_ms"]["mean"], rel=0.05)
    assert set(raw[0]["latency_ms"]) >= {"p50", "p90", "p95", "p99", "mean", "std", "min", "max"}
    table = list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    assert tuple(table[0]) == CSV_COLUMNS and len(table) == 8 and table[5]["status"] == "failed"
    assert "| static.onnx | auto | ? | 2 | 4 |" in capsys.readouterr().out


def test_read_report_refuses_another_schema_in_one_line(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"machine": {}, "rows": []}))
    with pytest.raises(EdgevisionError, match="no schema key") as info:
        read_report(old)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"schema": "edgevision.bench/2", "machine": {}, "rows": []}))
    with pytest.raises(EdgevisionError, match="'edgevision.bench/2' was written by a newer edgevision; this one reads "
                                              "edgevision.bench/1: upgrade"):
        read_report(newer)
    assert "\n" not in str(info.value)
    with pytest.raises(EdgevisionError, match="cannot read"):
        read_report(tmp_path / "missing.json")


def test_ctrl_c_writes_the_rows_finished_so_far(tmp_path):
    good = make_onnx(tmp_path / "good.onnx", classes=2, card=two_class_card())
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(good.read_bytes()[:100])
    out = tmp_path / "report"
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "bench", str(good), str(broken), "--budget", "120", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
        # a terminal's job gets SIGINT's default action; one started from a process that ignores it
        # (as a full test run's pytest came to) would inherit the ignoring and never see the Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for line in process.stderr:
            if line.startswith("timing"):
                break
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group, the targets too
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"bench still ran 60 s after SIGINT; its stderr: {process.stderr.read()[-2000:]}")
    finally:
        process.kill()
    assert code == 130, process.stderr.read()
    rows = read_report(out / "report.json").rows
    assert [r.status for r in rows] == ["interrupted", "failed"]
    # the signal may land before the first timed call or after some: a row has statistics exactly when
    # it has samples (test_ctrl_c_while_timing_keeps_the_samples pins the second case down)
    assert (rows[0].latency is None) == (rows[0].samples_ms == [])


def test_ctrl_c_while_timing_keeps_the_samples(tmp_path, monkeypatch):
    """Ctrl-C (Python's KeyboardInterrupt) arriving during the timed rounds, after two timed requests: the
    row is interrupted and keeps the statistics of every call it timed."""
    from benchmarks import runner

    timed: list[float] = []

    class InterruptedOnFourthRequest(runner.TargetProcess):
        """The real target process; the main thread gets Ctrl-C when the fourth timing request is due
        (the first is measure_rounds' warm-up, the next two are timed)."""

        requests = 0

        def time(self, count: int) -> list[float]:
            InterruptedOnFourthRequest.requests += 1
            if InterruptedOnFourthRequest.requests == 4:
                raise KeyboardInterrupt
            durations = super().time(count)
            if InterruptedOnFourthRequest.requests > 1:
                timed.extend(durations)
            return durations

    monkeypatch.setattr(runner, "TargetProcess", InterruptedOnFourthRequest)
    model = make_onnx(tmp_path / "m.onnx", classes=2, card=two_class_card())
    rows = runner.run_benchmark([runner.Target(model)], threads=[1], budget_s=60.0)
    assert [r.status for r in rows] == ["interrupted"]
    assert len(timed) >= 2 and rows[0].latency.samples == len(timed) == len(rows[0].samples_ms)
    assert rows[0].samples_ms == runner.kept_values(timed)


def test_kept_values_thin_evenly_to_the_cap():
    from benchmarks.runner import MAX_VALUES, kept_values

    assert kept_values([0.001, 0.002]) == [1.0, 2.0]
    thinned = kept_values([i / 1e6 for i in range(3 * MAX_VALUES + 1)])
    assert len(thinned) <= MAX_VALUES and thinned[:2] == [0.0, 0.004] and thinned[-1] >= 14.99


def test_rows_keep_load_and_first_call_apart_from_the_latency(tmp_path):
    from benchmarks.report import bench_table
    from benchmarks.rows import Target
    from benchmarks.runner import run_benchmark
    from benchmarks.schema import parse_report, to_json

    model = make_onnx(tmp_path / "m.onnx", classes=2, card=two_class_card())
    (row,) = run_benchmark([Target(model)], threads=[1], budget_s=0.2, options={"provider": "cpu"})
    assert row.status == "ok" and row.provider == "CPUExecutionProvider"
    assert row.load_s > 0 and row.first_ms > 0 and row.latency.samples > 0
    read = parse_report(to_json([row], {"cpu": "x"}).encode()).rows[0]
    assert (read.first_ms, read.provider) == (pytest.approx(row.first_ms), "CPUExecutionProvider")
    table = bench_table([read])
    assert table.header[table.header.index("load s") + 1] == "first ms"
    assert table.rows[0].cells[table.header.index("first ms")] != "-"
    failed = run_benchmark([Target(model)], threads=[1], budget_s=0.2, options={"provider": "cuda"})[0]
    if failed.status == "failed":  # the CPU build of onnxruntime: the row says what is missing
        assert "CUDAExecutionProvider" in failed.error and failed.first_ms is None


def test_a_report_written_before_first_ms_and_provider_still_reads(tmp_path):
    from benchmarks.report import bench_table

    row = {"model": "m.onnx", "path": "m.onnx", "backend": "onnxruntime", "precision": "fp32", "threads": 1,
           "batch": 1, "status": "ok", "error": "", "top1": None, "top5": None, "images": 0, "agreement": None,
           "size_bytes": 10, "peak_rss_bytes": None, "load_s": 0.1, "macs": None, "params": None,
           "latency_ms": {"p50": 1.0, "p90": 1.0, "p95": 1.0, "p99": 1.0, "mean": 1.0, "std": 0.0, "min": 1.0,
                          "max": 1.0, "samples": 3, "values": [1.0, 1.0, 1.0]}}
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": SCHEMA, "machine": {}, "rows": [row]}))
    (read,) = read_report(old).rows
    assert read.first_ms is None and read.provider == "" and read.load_s == 0.1
    table = bench_table([read])
    assert table.rows[0].cells[table.header.index("first ms")] == "-"
    old.write_text(json.dumps({"schema": SCHEMA, "machine": {}, "rows": [{**row, "first_ms": -1}]}))
    with pytest.raises(EdgevisionError, match="first_ms must be a finite number"):
        read_report(old)
