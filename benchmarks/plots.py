"""The latency / accuracy trade-off as a picture (matplotlib, imported only when plotting)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.runner import Row
from deploy.atomic import atomic_path
from deploy.errors import EdgevisionError


def plot_tradeoff(rows: list[Row], path: Path) -> Path:
    """Median latency (x) against top-1 (y), one point per model named in the legend (close points
    would hide each other's labels); size as marker area."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgevisionError("plots need matplotlib: pip install edgevision[train]") from None
    points = [r for r in rows if r.latency and r.top1 is not None]
    if not points:
        raise EdgevisionError("nothing to plot: no row has both a latency and a top-1 (pass --data)")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    markers = "osD^vP*X<>"
    for index, row in enumerate(points):
        ax.scatter(
            row.latency.p50_ms, 100 * row.top1, s=20 + 8 * row.size_bytes / 2**20, alpha=0.7,
            marker=markers[index % len(markers)], label=f"{row.model} ({row.precision}, {row.size_bytes / 2**20:.1f} MiB)",
        )
    ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("median latency, batch 1 (ms)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("latency / accuracy (marker area ~ size)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
