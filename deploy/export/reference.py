"""Make an artifact's reference set (`deploy.reference`): held-out images, PyTorch's logits for
exactly those images through the runtime's own preprocessing, and what the artifact gave for them.

The steps around a staged artifact, in order: `make_reference` (needs the artifact's weights, not
its final card), then the card gets `reference_note`, then `store_reference` hashes the artifact as
it will be published and writes the set beside it (`deploy.card.publish_artifact` moves both).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from deploy.backends import backend_for_path, get_backend
from deploy.card import ModelCard, ReferenceNote
from deploy.classifier import Classifier
from deploy.errors import EdgevisionError
from deploy.preprocess import preprocess_batch
from deploy.reference import (
    MAX_REFERENCE_IMAGES,
    ReferenceSet,
    compact_image,
    reference_path,
    save_reference,
    sha256_file,
    top_k_indices,
)
from deploy.verify import replay_logits
from train.engine import torch_logits


def check_count(count: int, flag: str = "--reference-images") -> int:
    if not 0 <= count <= MAX_REFERENCE_IMAGES:
        raise EdgevisionError(f"{flag} must be between 0 and {MAX_REFERENCE_IMAGES}, got {count}")
    return count


def make_reference(
    model: torch.nn.Module, artifact: str | os.PathLike, card: ModelCard, images: Iterable[np.ndarray], source: str,
    **options,
) -> ReferenceSet:
    """The reference set of `artifact` (whose card is `card`) on `images` (OpenCV arrays, as read).

    The artifact runs through deploy's own backend with `card`, on this machine, so the set records
    how far it was from PyTorch where it was made (the int8/fp16 tolerances build on that)."""
    spec = card.preprocessing
    stored = np.stack([compact_image(image, spec) for image in images])
    expected = torch_logits(model, preprocess_batch(list(stored), spec))
    path = Path(artifact)
    classifier = Classifier(card, get_backend(backend_for_path(path)).load(path, options))
    actual = replay_logits(classifier, stored)
    top_k = top_k_indices(expected)
    return ReferenceSet(
        images=stored, logits=expected, top_k=top_k, precision=card.precision, source=source,
        measured_max_abs_logit_diff=float(np.abs(actual - expected).max()),
        measured_agreement=float(np.mean(actual.argmax(1) == top_k[:, 0])),
    )


def reference_note(reference: ReferenceSet, artifact: str | os.PathLike) -> ReferenceNote:
    """What the card of `artifact` says about its reference set."""
    return ReferenceNote(reference_path(Path(artifact).name).name, len(reference))


def store_reference(reference: ReferenceSet, artifact: str | os.PathLike) -> Path:
    """Record the sha256 of `artifact` (as published: after its card is written) and write the set beside it."""
    reference.artifact_sha256 = sha256_file(artifact)
    return save_reference(reference_path(artifact), reference)
