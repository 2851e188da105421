"""Benchmark several model files side by side: latency, accuracy and size, one row each.

Every artifact runs through the same runtime a user gets (`deploy.load`), so the numbers are
what a deployment sees. Latency is the backend's inference on one preprocessed image (batch 1),
timed interleaved with the other artifacts; accuracy is top-1 on labelled images, end to end.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import deploy
from deploy.errors import EdgevisionError
from deploy.image_folder import has_split_folders, list_labelled_images
from deploy.preprocess import preprocess, read_image
from deploy.timing import LatencyStats, measure_interleaved

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


def artifact_size_mb(path: Path) -> float:
    """Size of the model file plus its external-data files, if any, in MiB."""
    total = path.stat().st_size
    total += sum(p.stat().st_size for p in path.parent.glob(f"{path.name}.data"))
    return total / 2**20


def top1_accuracy(classifier, items: list[tuple[Path, int]], class_names: list[str]) -> float:
    """Fraction of images whose top-1 label is their folder's class name."""
    labels = classifier.card.class_names
    missing = set(class_names) - set(labels)
    if missing:
        raise EdgevisionError(f"data classes {sorted(missing)} are not among the model's labels")
    correct = 0
    for path, index in items:
        label, _ = classifier.predict(read_image(str(path)), top_k=1).top[0]
        correct += label == class_names[index]
    return correct / len(items)


def warn_if_trained_on(data: Path, loaded: dict) -> None:
    """Say loudly when the images to score are the very tree a model was trained on: `edgevision
    train` splits a plain class-folder tree 70/15/15, but bench scores a plain tree whole."""
    if has_split_folders(data):
        return
    for name, classifier in loaded.items():
        kind, _, trained_on = (classifier.card.dataset or "").partition(":")
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
    """Load every target, time them interleaved, then score each on the labelled images.

    With several targets, thread pools must not spin while they wait: a runtime whose idle
    threads busy-wait for their next job takes the cores from the one being timed (seen here:
    onnxruntime fp32 at 15 ms instead of 5 ms next to four other sessions). So onnxruntime runs
    with `spin_wait=False` and OpenMP (PyTorch eager) with OMP_WAIT_POLICY=PASSIVE.
    """
    shared = len(targets) > 1
    if shared:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch's OpenMP starts
    rows: dict[str, Row] = {}
    loaded = {}
    for target in targets:
        try:
            classifier = deploy.load(target.path, backend=target.backend, threads=threads, spin_wait=not shared)
        except EdgevisionError as exc:
            rows[target.name] = Row(target.name, target.backend, "?", 0.0, status="failed", error=str(exc))
            continue
        card = classifier.card
        rows[target.name] = Row(
            target.name,
            classifier.backend.name,
            card.precision,
            artifact_size_mb(target.path),
        )
        loaded[target.name] = classifier

    if data:
        warn_if_trained_on(data, loaded)
    items, class_names = list_labelled_images(data, split, limit) if data else ([], [])
    sample = read_image(str(items[0][0])) if items else np.full((256, 320, 3), 127, np.uint8)
    calls = {}
    for name, classifier in loaded.items():
        batch = preprocess(sample, classifier.card.preprocessing)[None]
        calls[name] = lambda c=classifier, b=batch: c.backend.run(b)
    for name, stats in measure_interleaved(calls, budget_s=budget_s).items():
        rows[name].latency = stats
    for name, classifier in loaded.items():
        if items:
            rows[name].top1 = top1_accuracy(classifier, items, class_names)
            rows[name].images = len(items)
    return [rows[t.name] for t in targets]
