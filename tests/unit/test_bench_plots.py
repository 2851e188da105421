"""benchmarks.plots: axes fitted to the data (one slow call does not stretch the latency
distribution, a 0.1 % difference does not fill the trade-off plot), no deprecated matplotlib call."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from benchmarks.plots import distribution_figure, horizontal, latency_top1_figure
from benchmarks.rows import Row
from deploy.timing import LatencyStats


def timed(name: str, samples_ms: list[float], top1: float = 0.9) -> Row:
    row = Row(name, "onnxruntime", "fp32", 1, 1, 4096, top1=top1, images=10)
    row.samples_ms = samples_ms
    row.latency = LatencyStats.from_samples([s / 1000 for s in samples_ms])
    return row


def close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_one_slow_call_does_not_stretch_the_distribution_axis():
    rng = np.random.default_rng(0)
    rows = [timed(f"m{i}.onnx", list(rng.normal(1.0 + 0.3 * i, 0.05, 2000).clip(0.5)) + [8.0]) for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", matplotlib.MatplotlibDeprecationWarning)  # `vert` is deprecated since 3.11
        fig = distribution_figure(rows)
    ax = fig.axes[0]
    highest_whisker = max(np.percentile(r.samples_ms, 99) for r in rows)
    low, high = ax.get_xlim()
    assert highest_whisker < high < 1.2 * highest_whisker  # not out to the 8 ms call
    assert 0 <= low < min(np.percentile(r.samples_ms, 1) for r in rows)
    assert "slowest call 8 ms, off the axis" in ax.get_xlabel()
    close(fig)


def test_the_tradeoff_axes_fit_the_points():
    near = [timed("a.onnx", [1.000] * 5, 0.981), timed("b.onnx", [1.001] * 5, 0.983)]
    fig = latency_top1_figure(near)
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0 and 1.001 < ax.get_xlim()[1] <= 1.2 * 1.001
    low, high = ax.get_ylim()
    assert 97 <= low < 98.1 and 98.3 < high <= 99  # top-1 in %, a little room around the two points
    close(fig)
    apart = [timed("tiny.onnx", [0.05] * 5, 0.5), timed("big.onnx", [40.0] * 5, 1.0)]
    fig = latency_top1_figure(apart)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and 0.05 / 2 < ax.get_xlim()[0] < 0.05 and 40 < ax.get_xlim()[1] < 80
    assert ax.get_ylim()[1] <= 101
    close(fig)


def test_horizontal_uses_orientation_where_matplotlib_has_it():
    def new_boxplot(x, orientation="vertical"):
        return x

    def old_boxplot(x, vert=True):
        return x

    assert horizontal(new_boxplot) == {"orientation": "horizontal"}
    assert horizontal(old_boxplot) == {"vert": False}
