"""Logits and latency of an artifact through deploy's own backends, so that the guard scores
exactly what a device will run: the same runtime, session options and batch-1 calls."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from deploy.backends import Backend, backend_for_path, get_backend
from deploy.timing import measure_interleaved


def load_backend(path: str | os.PathLike, threads: int = 2, **options) -> Backend:
    """The backend its suffix chooses (.onnx: onnxruntime, .pte: ExecuTorch), with `threads`."""
    return get_backend(backend_for_path(path)).load(Path(path), {"threads": threads, **options})


def artifact_logits(path: str | os.PathLike, images: np.ndarray, threads: int = 2) -> np.ndarray:
    """Logits of every image, one at a time (the deployment case, and safe for static shapes)."""
    backend = load_backend(path, threads)
    return np.concatenate([backend.run(images[i : i + 1]) for i in range(len(images))]).astype(np.float32)


def artifact_latency_ms(
    paths: Mapping[str, str | os.PathLike], image: np.ndarray, threads: int = 2, budget_s: float = 4.0
) -> dict[str, float]:
    """Median wall time (ms) of one batch-1 inference of each artifact, timed in turn."""
    batch = np.ascontiguousarray(image[None] if image.ndim == 3 else image[:1], dtype=np.float32)
    calls = {}
    for name, path in paths.items():
        backend = load_backend(path, threads, spin_wait=len(paths) == 1)
        calls[name] = lambda b=backend: b.run(batch)
    return {name: stats.p50_ms for name, stats in measure_interleaved(calls, budget_s=budget_s).items()}
