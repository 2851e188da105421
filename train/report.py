"""What a run leaves in `--out`: metrics.json, config.json and confusion.png."""

from __future__ import annotations

import json
import os
from pathlib import Path

from deploy.atomic import atomic_path, write_text_atomic
from deploy.confidence import split_label


def write_json(path: str | os.PathLike, data: dict) -> Path:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return Path(path)


def plot_confusion(path: str | os.PathLike, confusion: list[list[int]], class_names: list[str], title: str) -> Path:
    """A confusion matrix as a PNG (rows: true class, columns: predicted), counts in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(class_names)
    size = min(12.0, 2.5 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 20:
        peak = max(max(row) for row in confusion) or 1
        for i, row in enumerate(confusion):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > peak / 2 else "black")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def format_summary(metrics: dict) -> str:
    """Two lines for the terminal: the headline numbers and the weakest classes."""
    per_class = metrics.get("per_class", {})
    worst = sorted(per_class.items(), key=lambda kv: kv[1])[:3]
    split = metrics["split"]
    source = split_label(split, metrics["data"]).replace("all split of", "all splits of", 1)
    line = (
        f"{split} top-1 {metrics['top1']:.2%} on {metrics['count']} images ({source}), "
        f"top-{metrics['topk']} {metrics['top5']:.2%}, loss {metrics['loss']:.4f}"
    )
    weakest = ", ".join(f"{name} {acc:.1%}" for name, acc in worst)
    return f"{line}\nweakest classes: {weakest}"
