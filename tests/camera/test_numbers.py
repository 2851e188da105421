"""The camera app's numbers: one windowed FPS everywhere, percentiles in fixed memory.

Synthetic timestamps check the formulas; a real paced video through the whole app checks that the
live figure in the log, the report and the summary agree and never exceed the source's rate. No
test bounds the machine's speed: figures are compared with each other.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import camera_app
from camera_app.stats import PipelineNumbers, RateMeter, RecentWindow, StreamingStats
from tests.helpers import write_video

STAGES = ("capture_wait", "preprocess", "inference", "postprocess", "overlay", "output")


def test_rate_meter_counts_frames_over_time():
    meter = RateMeter(window_s=3.0, started=99.99)
    assert meter.rate() == 0.0
    for k in range(300):  # 10 s at exactly 30 per second, each done 5 ms after its capture
        meter.tick(100.005 + k / 30)
        assert meter.rate() <= 30.0 + 1e-9
    assert meter.rate() == pytest.approx(30.0)
    assert len(meter.times) <= 3 * 30 + 2


def test_rate_meter_never_exceeds_a_paced_source_with_jitter():
    """Completions lag a 30 fps clock by 1-40 ms at random: the rate stays at the source's, where an
    average of 1/dt (the old figure) reads far above it. The first frame is the latest of all."""
    rng = np.random.default_rng(0)
    started = 50.0
    done = started + np.arange(600) / 30 + rng.uniform(0.001, 0.040, 600)
    done[0] = started + 0.060
    meter = RateMeter(window_s=3.0, started=started)
    rates = []
    for t in done:
        meter.tick(float(t))
        rates.append(meter.rate())
    assert 0 < min(rates[1:]) and max(rates) <= 30.0 * 1.03
    assert rates[-1] == pytest.approx(30.0, rel=0.03)
    assert np.mean(1.0 / np.diff(done)) > 30.0 * 1.1  # what averaging instantaneous rates would show
    completions_only = RateMeter(window_s=3.0)
    for t in done[:3]:
        completions_only.tick(float(t))
    assert completions_only.rate() > 30.0 * 1.5  # why the first window is measured from the start


def test_rate_meter_slower_than_one_frame_per_window():
    meter = RateMeter(window_s=3.0)
    for k in range(5):
        meter.tick(k * 5.0)
    assert meter.rate() == pytest.approx(0.2)


def test_streaming_stats_match_numpy_in_fixed_memory():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.lognormal(1.0, 0.8, 18_000), rng.uniform(100, 400, 2_000)])
    rng.shuffle(values)
    stats = StreamingStats()
    size = len(stats.counts)
    for value in values:
        stats.add(value)
    assert len(stats.counts) == size and stats.count == len(values)
    summary = stats.summary()
    for q in (50, 95, 99):
        assert summary[f"p{q}"] == pytest.approx(np.percentile(values, q), rel=0.02), q
    assert summary["mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert (summary["min"], summary["max"]) == (values.min(), values.max())


def test_streaming_stats_of_one_repeated_value_and_of_zeros():
    stats = StreamingStats()
    for _ in range(10):
        stats.add(7.25)
    assert stats.summary()["p50"] == 7.25 and stats.summary()["p99"] == 7.25
    zeros = StreamingStats()
    zeros.add(0.0)
    assert zeros.summary()["p95"] == 0.0
    assert StreamingStats().summary() == {}


def test_recent_window_keeps_the_last_values():
    window = RecentWindow(300)
    values = np.random.default_rng(2).exponential(5.0, 20_000)
    for value in values:
        window.add(value)
    assert len(window.values) == 300
    expected = np.percentile(values[-300:], [50, 95])
    assert [window.percentiles()["p50"], window.percentiles()["p95"]] == pytest.approx(list(expected))


def test_pipeline_numbers_stay_the_same_size_over_20k_frames():
    numbers = PipelineNumbers(STAGES, started=-0.04, refresh_s=0.0)
    rng = np.random.default_rng(3)
    inference = rng.lognormal(1.5, 0.5, 20_000)
    sizes = None
    for k, inf_ms in enumerate(inference):
        stages = {name: 0.5 for name in STAGES} | {"inference": float(inf_ms)}
        numbers.add(stages, age_ms=10.0 + inf_ms, busy_ms=float(inf_ms) + 3.0, done=k / 25)
        if k == 1000:
            sizes = ([len(w.values) for w in numbers.recent.values()], len(numbers.meter.times),
                     [len(s.counts) for s in numbers.run.values()])
    assert sizes == ([len(w.values) for w in numbers.recent.values()], len(numbers.meter.times),
                     [len(s.counts) for s in numbers.run.values()])
    live = numbers.live(now=20_000 / 25)
    assert live["pipeline_fps"] == pytest.approx(25.0)
    assert live["model_fps"] == pytest.approx(1e3 / inference[-300:].mean())
    assert live["latency_ms"]["inference"]["p95"] == pytest.approx(np.percentile(inference[-300:], 95))
    assert set(live["latency_ms"]) == {"preprocess", "inference", "postprocess", "overlay", "output"}
    summary = numbers.summary()
    assert summary["pipeline_fps"] == pytest.approx(25.0, rel=1e-3)
    assert summary["model_fps"] == pytest.approx(1e3 / inference.mean())
    assert summary["latency_ms"]["inference"]["p50"] == pytest.approx(np.percentile(inference, 50), rel=0.02)
    assert summary["overhead_ms"]["mean"] == pytest.approx(3.0 - 0.5)  # busy minus preprocess and inference


def test_one_fps_in_log_report_and_summary_on_a_paced_video(tiny_model, tmp_path):
    """A 30 fps video paced at its own rate, a model far faster than that: every figure says 30.

    The margin is for a result that a busy machine delays at the edge of the 3 s window (1 % per
    30 ms of delay); an average of per-frame rates would overstate a paced source many times over
    (see `camera_app.stats.RateMeter`).
    """
    fps = 30.0
    video = write_video(tmp_path / "clip.avi", 180, "MJPG", fps=fps)
    summary = camera_app.run(tiny_model, video, realtime=True, log=str(tmp_path / "log.jsonl"),
                             report=str(tmp_path / "report.json"))
    frames = [r for r in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines()) if "frame" in r]
    report = json.loads((tmp_path / "report.json").read_text())
    assert summary["frames"]["classified"] == len(frames) > 120
    live = [r["fps"] for r in frames]
    assert all(rate > 0 for rate in live[2:])
    assert max(live) <= fps * 1.03, max(live)
    assert summary["pipeline_fps"] <= fps * 1.03
    assert report["pipeline_fps"] == summary["pipeline_fps"]
    assert live[-1] == pytest.approx(summary["pipeline_fps"], rel=0.05)
    by_capture_time = (len(frames) - 1) / (frames[-1]["time"] - frames[0]["time"])
    assert summary["pipeline_fps"] == pytest.approx(by_capture_time, rel=0.05)
    assert summary["model_fps"] > summary["pipeline_fps"]  # the model is not what limits this run
