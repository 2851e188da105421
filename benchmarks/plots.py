"""The report's pictures as PNG bytes (matplotlib, imported only when plotting).

latency against top-1 with the Pareto front marked, size against top-1, and each row's latency
distribution from its timed calls. `report.html` embeds them; `tradeoff.png` is the first.
"""

from __future__ import annotations

import inspect
import io
from pathlib import Path

import numpy as np

from benchmarks.pareto import pareto_front, per_image_ms
from benchmarks.rows import Row
from deploy.atomic import write_bytes_atomic
from deploy.errors import EdgevisionError

MARKERS = "osD^vP*X<>"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["text.parse_math"] = False  # a file named a$x^$b.onnx is a label, not a formula
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgevisionError("plots need matplotlib: pip install edgevision[train]") from None
    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    _pyplot().close(fig)
    return buffer.getvalue()


def label(row: Row) -> str:
    return f"{row.model} ({row.precision}, {row.threads}t, b{row.batch})"


def scored(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.latency and r.top1 is not None and r.status == "ok"]


def _fit_from_zero(ax, values: list[float]) -> None:
    """The x axis from 0 to just past the largest value (log, past both ends, when they lie more
    than 20x apart): latencies and sizes are ratios, so a 0.1 % difference stays small."""
    low, high = min(values), max(values)
    if low > 0 and high / low > 20:
        ax.set_xscale("log")
        ax.set_xlim(low / 1.3, high * 1.3)
    else:
        ax.set_xlim(0, high * 1.1 or 1)


def _fit_top1(ax, percents: list[float]) -> None:
    """The y axis around the top-1 values, a little room above and below, never below 0."""
    low, high = min(percents), max(percents)
    pad = max(0.5, 0.1 * (high - low))
    ax.set_ylim(max(0.0, low - pad), min(101.0, high + pad))


def latency_top1_png(rows: list[Row]) -> bytes:
    return _png(latency_top1_figure(rows))


def latency_top1_figure(rows: list[Row]):
    """Median latency per image (x) against top-1 (y), one point per configuration named in the
    legend (close points would hide each other's labels); the Pareto front joined by a line; the
    axes fitted to the points (`_fit_from_zero`, `_fit_top1`)."""
    points = scored(rows)
    if not points:
        raise EdgevisionError("nothing to plot: no row has both a latency and a top-1 (pass --data)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    for index, row in enumerate(points):
        ax.scatter(per_image_ms(row), 100 * row.top1, s=40, alpha=0.75, marker=MARKERS[index % len(MARKERS)],
                   label=label(row))
    front = pareto_front(points)
    ax.plot([per_image_ms(r) for r in front], [100 * r.top1 for r in front], "k--", lw=1, label="Pareto front")
    ax.scatter([per_image_ms(r) for r in front], [100 * r.top1 for r in front], s=140, facecolors="none",
               edgecolors="k")
    _fit_from_zero(ax, [per_image_ms(r) for r in points])
    _fit_top1(ax, [100 * r.top1 for r in points])
    ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("median latency per image (ms)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("latency / accuracy (circled: the Pareto front)")
    ax.grid(alpha=0.3)
    return fig


def size_top1_png(rows: list[Row]) -> bytes:
    """File size (x) against top-1 (y), one point per model file."""
    by_file: dict[str, Row] = {}
    for row in rows:
        if row.top1 is not None:
            by_file.setdefault(row.path or row.model, row)
    if not by_file:
        raise EdgevisionError("nothing to plot: no row has a top-1 (pass --data)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=110)
    for index, row in enumerate(by_file.values()):
        ax.scatter(row.size_bytes / 2**20, 100 * row.top1, s=50, marker=MARKERS[index % len(MARKERS)],
                   label=f"{row.model} ({row.precision})")
    _fit_from_zero(ax, [row.size_bytes / 2**20 for row in by_file.values()])
    _fit_top1(ax, [100 * row.top1 for row in by_file.values()])
    ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("size on disk (MiB)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("size / accuracy")
    ax.grid(alpha=0.3)
    return _png(fig)


def horizontal(method) -> dict:
    """The keyword that lays a box or violin plot on its side: `orientation` where matplotlib has
    it (3.10 on), `vert` before (deprecated in 3.11, gone in 3.13)."""
    return {"orientation": "horizontal"} if "orientation" in inspect.signature(method).parameters else {"vert": False}


def distribution_png(rows: list[Row]) -> bytes:
    return _png(distribution_figure(rows))


def distribution_figure(rows: list[Row]):
    """Every timed call of every row between its 1st and 99th percentile, as a box (quartiles,
    whiskers to the 1st/99th percentile) over a violin (the shape: two modes show a runtime that
    is fast or slow by turns). The axis ends just past the highest whisker: one slow call of a
    thousand (a page fault, another process) would otherwise stretch it far past every box; the
    slowest call is named in the axis label instead."""
    timed = [r for r in rows if r.samples_ms]
    if not timed:
        raise EdgevisionError("nothing to plot: no row has timed calls")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.45 * len(timed)), dpi=110)
    whiskers = [np.percentile(r.samples_ms, [1, 99]) for r in timed]
    data = [[v for v in r.samples_ms if low <= v <= high] or r.samples_ms
            for r, (low, high) in zip(timed, whiskers, strict=True)]
    positions = list(range(1, len(timed) + 1))
    ax.violinplot(data, positions=positions, showextrema=False, **horizontal(ax.violinplot))
    ax.boxplot([r.samples_ms for r in timed], positions=positions, whis=(1, 99), showfliers=False, widths=0.25,
               **horizontal(ax.boxplot))
    low, high = min(w[0] for w in whiskers), max(w[1] for w in whiskers)
    pad = 0.05 * (high - low) or 0.05 * high or 0.001
    ax.set_xlim(max(0.0, low - pad), high + pad)
    ax.set_yticks(positions, [label(r) for r in timed], fontsize=7)
    ax.invert_yaxis()
    slowest = max(max(r.samples_ms) for r in timed)
    beyond = f"; slowest call {slowest:.3g} ms, off the axis" if slowest > high + pad else ""
    ax.set_xlabel(f"latency of one call (ms; a call is `batch` images{beyond})")
    ax.set_title("latency distribution (box: quartiles, whiskers: p1-p99)")
    ax.grid(alpha=0.3, axis="x")
    return fig


def plot_tradeoff(rows: list[Row], path: Path) -> Path:
    """`latency_top1_png` into a file."""
    write_bytes_atomic(path, latency_top1_png(rows))
    return path


def devices_png(names: list[str], devices: list[tuple[str, bool, list[float | None]]]) -> bytes:
    """Grouped bars: for each model file (`names`), each device's best median ms per image;
    `devices` holds (label, emulated, one value per name). Emulated bars are hatched and say so."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.35 * len(names) * len(devices)), dpi=110)
    height = 0.8 / max(1, len(devices))
    values = [v for _, _, vs in devices for v in vs if v]
    for index, (device, emulated, per_name) in enumerate(devices):
        ys = [n + index * height for n in range(len(names))]
        ax.barh(ys, [v or 0 for v in per_name], height, hatch="//" if emulated else None,
                label=f"{device} (emulated: not the device's timing)" if emulated else device)
    ax.set_yticks([n + 0.4 - height / 2 for n in range(len(names))], names, fontsize=7)
    ax.invert_yaxis()
    if values and max(values) / min(values) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("best median latency per image (ms)")
    ax.set_title("the same model file across devices")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def roofline_png(rows: list[Row], peak: dict) -> bytes:
    """Each row's achieved GMAC/s as a bar, the machine's fp32 and int8 matrix-product peaks as lines."""
    from benchmarks.roofline import achieved_gmacs

    timed = [r for r in rows if achieved_gmacs(r)]
    if not timed:
        raise EdgevisionError("no roofline: no row has a MAC count (ONNX files, with the onnx package installed)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.4 * len(timed)), dpi=110)
    positions = list(range(len(timed)))
    ax.barh(positions, [achieved_gmacs(r) for r in timed], 0.6, color=["C1" if r.precision.startswith("int8") else "C0"
                                                                       for r in timed])
    ax.axvline(peak["fp32_gmacs"], color="C0", ls="--", label=f"fp32 peak {peak['fp32_gmacs']:.0f} GMAC/s")
    ax.axvline(peak["int8_gmacs"], color="C1", ls="--", label=f"int8 peak {peak['int8_gmacs']:.0f} GMAC/s")
    ax.set_yticks(positions, [label(r) for r in timed], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"GMAC/s achieved (peaks: {peak['size']}^3 matrix products, best of 1 thread and all cores)")
    ax.set_title("roofline: each row against the machine's peak")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)
