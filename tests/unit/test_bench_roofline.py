"""benchmarks.roofline: the machine's matrix-product peak, cached; each row's achieved GMAC/s."""

from __future__ import annotations

import json

import pytest

from benchmarks.fingerprint import machine_fingerprint
from benchmarks.roofline import achieved_gmacs, machine_key, machine_peak, peak_for, reached_gmacs
from benchmarks.rows import Row
from deploy.timing import LatencyStats

pytest.importorskip("onnx")


def test_peak_is_measured_once_and_cached(tmp_path):
    cache = tmp_path / "peak.json"
    machine = machine_fingerprint()
    peak = machine_peak(machine, cache)
    assert peak["fp32_gmacs"] > 0 and peak["int8_gmacs"] > 0 and peak["fp32_threads"] in (1, machine["cpu_count"])
    stored = json.loads(cache.read_text())
    assert list(stored) == [machine_key(machine)]
    stored[machine_key(machine)]["fp32_gmacs"] = 12345.0  # a second call must read, not measure
    cache.write_text(json.dumps(stored))
    assert machine_peak(machine, cache)["fp32_gmacs"] == 12345.0
    assert machine_peak({**machine, "emulated": True}, cache) is None  # an emulator's peak is the emulator's


def test_a_cached_peak_below_a_row_is_measured_again_and_only_rises(tmp_path):
    cache = tmp_path / "peak.json"
    machine = machine_fingerprint()
    measured = machine_peak(machine, cache)
    stored = json.loads(cache.read_text())
    stored[machine_key(machine)]["fp32_gmacs"] = 0.001  # as if measured while the cores were taken
    stored[machine_key(machine)]["int8_gmacs"] = 10**6  # higher than this machine reaches: kept
    cache.write_text(json.dumps(stored))
    assert machine_peak(machine, cache, reached={"int8": 5.0})["fp32_gmacs"] == 0.001  # no row beats it: read
    again = machine_peak(machine, cache, reached={"fp32": 0.002})
    assert again["fp32_gmacs"] > 0.002 and again["int8_gmacs"] == 10**6
    assert json.loads(cache.read_text())[machine_key(machine)] == again
    assert measured["fp32_gmacs"] > 0


def test_achieved_gmacs_and_the_peak_a_row_compares_with():
    row = Row("m.onnx", "onnxruntime", "int8", 1, 2, 1000, macs=10**9)
    assert achieved_gmacs(row) is None  # not timed
    row.latency = LatencyStats.from_samples([0.010] * 5)  # 10 ms a call of 2 images
    assert achieved_gmacs(row) == pytest.approx(200.0)
    peak = {"fp32_gmacs": 100.0, "int8_gmacs": 400.0}
    assert peak_for(row, peak) == 400.0
    row.precision = "fp32"
    assert peak_for(row, peak) == 100.0 and peak_for(row, None) is None
    fast = Row("f.onnx", "onnxruntime", "fp32", 1, 1, 1000, macs=10**9, latency=LatencyStats.from_samples([0.010] * 5))
    row.precision = "int8"
    assert reached_gmacs([row, fast, Row("x.onnx", "onnxruntime", "int8", 1, 1, 1)]) == pytest.approx(
        {"fp32": 100.0, "int8": 200.0})
