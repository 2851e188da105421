"""Benchmark several model files side by side: latency, accuracy and size, one row each.

Every artifact runs through the same runtime a user gets (`deploy.load`), each in a process of its
own (`benchmarks.worker`), so the numbers are what a deployment sees and a crash costs one row.
Latency is the backend's inference on one preprocessed image (batch 1), timed interleaved with the
other artifacts; accuracy is top-1 on labelled images, end to end.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.worker import TargetFailed, TargetProcess
from deploy.image_folder import has_split_folders, list_labelled_images
from deploy.preprocess import read_image
from deploy.timing import LatencyStats, measure_rounds

logger = logging.getLogger("edgevision.benchmarks")


@dataclass(frozen=True)
class Target:
    """One configuration: an artifact, and the backend to run it with ("auto" by suffix)."""

    path: Path
    backend: str = "auto"

    @classmethod
    def parse(cls, text: str) -> Target:
        """`model.onnx` or `model.onnx@onnxruntime`."""
        path, _, backend = text.partition("@")
        return cls(Path(path), backend or "auto")

    @property
    def name(self) -> str:
        return f"{self.path.name}@{self.backend}" if self.backend != "auto" else self.path.name


@dataclass
class Row:
    name: str
    backend: str
    precision: str
    size_mb: float
    status: str = "ok"
    latency: LatencyStats | None = None
    top1: float | None = None
    images: int = 0
    error: str = ""
    peak_rss_mb: float | None = None  # the target's own process


def artifact_size_mb(path: Path) -> float:
    """Size of the model file plus the files its weights live in (ONNX external data, an
    OpenVINO IR's .bin), in MiB."""
    parts = [path, path.parent / f"{path.name}.data"]
    if path.suffix == ".xml":
        parts.append(path.with_suffix(".bin"))
    return sum(p.stat().st_size for p in parts if p.is_file()) / 2**20


def warn_if_trained_on(data: Path, datasets: dict[str, str]) -> None:
    """Say loudly when the images to score are the very tree a model was trained on: `edgevision
    train` splits a plain class-folder tree 70/15/15, but bench scores a plain tree whole."""
    if has_split_folders(data):
        return
    for name, dataset in datasets.items():
        kind, _, trained_on = (dataset or "").partition(":")
        if kind == "folder" and trained_on and Path(trained_on).resolve() == Path(data).resolve():
            logger.warning(
                "%s was trained on %s, which has no train/val/test folders: its top-1 here counts the "
                "images it trained on (train split such a tree 70/15/15); score a folder it never saw",
                name, data)


def run_benchmark(
    targets: list[Target],
    threads: int = 2,
    budget_s: float = 20.0,
    data: Path | None = None,
    split: str = "val",
    limit: int | None = None,
) -> list[Row]:
    """Start every target in a process of its own, time them interleaved, then score each on the
    labelled images. A target that fails to load, raises, or crashes its process is a failed row
    with the reason; the others go on.

    With several targets, thread pools must not spin while they wait: a runtime whose idle
    threads busy-wait for their next job takes the cores from the one being timed (seen here:
    onnxruntime fp32 at 15 ms instead of 5 ms next to four other sessions). onnxruntime's pools
    sleep by default (`deploy.backends.cpu`); OpenMP (PyTorch eager) gets OMP_WAIT_POLICY=PASSIVE.
    """
    shared = len(targets) > 1
    if shared:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # inherited by the targets' processes
    items, class_names = list_labelled_images(data, split, limit) if data else ([], [])
    sample = read_image(str(items[0][0])) if items else np.full((256, 320, 3), 127, np.uint8)
    rows: dict[str, Row] = {}
    running: dict[str, TargetProcess] = {}
    try:
        for target in targets:
            try:
                process = TargetProcess(target.path, target.backend, {"threads": threads}, sample)
            except TargetFailed as exc:
                rows[target.name] = Row(target.name, target.backend, "?", 0.0, status="failed", error=str(exc))
                continue
            rows[target.name] = Row(target.name, process.info.backend, process.info.precision, artifact_size_mb(target.path))
            running[target.name] = process
        if data:
            warn_if_trained_on(data, {name: p.info.dataset for name, p in running.items()})
        stats, failures = measure_rounds({name: p.time for name, p in running.items()}, budget_s=budget_s)
        for name, value in stats.items():
            rows[name].latency = value
        for name, exc in failures.items():
            rows[name].status, rows[name].error = "failed", str(exc)
            running.pop(name).close()
        for name, process in list(running.items()):
            if items:
                try:
                    rows[name].top1, rows[name].images = process.score(items, class_names), len(items)
                except TargetFailed as exc:
                    rows[name].status, rows[name].error = "failed", str(exc)
    finally:
        for name, process in running.items():
            rows[name].peak_rss_mb = (process.close() or 0) / 2**20 or None
    return [rows[t.name] for t in targets]
