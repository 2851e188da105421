"""Reference sets for the tiny ONNX models of `tests.runtime.onnx_models`, made without torch: the
network's own numpy logits (`reference_logits`) stand where PyTorch's would."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.card import ModelCard
from deploy.preprocess import preprocess_batch
from deploy.reference import ReferenceSet, compact_image, reference_path, save_reference, sha256_file, top_k_indices
from tests.runtime.onnx_models import reference_logits


def camera_like_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth BGR frames of a few sizes, larger than the tiny models' input."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        h, w = 48 + 8 * i, 64
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([np.sin(xx / rng.uniform(3, 12)), np.cos(yy / rng.uniform(3, 12)), np.sin((xx + yy) / 9)], 2)
        images.append(np.clip((base + 1) * 127 + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8))
    return images


def tiny_reference(card: ModelCard, count: int = 6, seed: int = 0, classes: int = 3, precision: str = "fp32",
                   **fields) -> ReferenceSet:
    spec = card.preprocessing
    stored = np.stack([compact_image(image, spec) for image in camera_like_images(count)])
    batch = preprocess_batch(list(stored), spec)
    logits = reference_logits(batch, spec.channels, classes, seed=seed).astype(np.float32)
    return ReferenceSet(stored, logits, top_k_indices(logits), precision, source="generated", **fields)


def write_tiny_reference(model: Path, card: ModelCard, **kwargs) -> Path:
    """The reference set of a `make_onnx` model (same seed and classes), written beside it."""
    reference = tiny_reference(card, **kwargs)
    reference.artifact_sha256 = sha256_file(model)
    return save_reference(reference_path(model), reference)


def referenced_onnx(path: Path) -> Path:
    """A `make_onnx` model with the tiny card at `path`, its reference set beside it."""
    from tests.runtime.onnx_models import make_onnx, tiny_card

    make_onnx(path, card=tiny_card())
    write_tiny_reference(path, tiny_card())
    return path
