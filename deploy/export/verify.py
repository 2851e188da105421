"""Parity: does the exported artifact compute what the PyTorch model computes?

Both run on the SAME preprocessed tensors (the card's preprocessing, `deploy.preprocess`): the
artifact through its own runtime (`deploy.load`), the model in PyTorch eager on the CPU. Images are
real ones from the validation split of `--data` when one is given (any spec of `deploy.data_spec`:
a class-folder tree's files, a named set's images drawn with the training split's seed), generated
ones only when there is none. The result, a `deploy.card.Parity`, goes into the card's `parity`; on real
images the artifact's own top-1 probabilities, counted as they go by, become the card's
`confidence` (the reference the camera app's drift score compares live frames with).
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from deploy.card import ModelCard, Parity
from deploy.confidence import ConfidenceCounter, ConfidenceHistogram, split_label
from deploy.data_spec import parse_data_spec
from deploy.errors import EdgevisionError
from deploy.image_folder import class_root
from deploy.preprocess import preprocess, read_image
from train.engine import torch_logits

# top-1 agreement and max |logit difference| an artifact must reach, per precision
TOLERANCES = {"fp32": (1.0, 1e-3), "fp16": (0.98, None), "int8": (0.90, None)}
VERIFY_CHUNK = 32  # images read, preprocessed and compared at a time


def split_seed(card: ModelCard) -> int:
    """The seed the model's training split its data with (0 for a card that does not say)."""
    seed = card.dataset_info.get("split_seed", 0)
    return seed if isinstance(seed, int) else 0


def val_images(data: str, limit: int, seed: int = 0) -> tuple[list[np.ndarray | str], str]:
    """Up to `limit` images of the validation split of `data`, an equal share from each class
    (files of a class-folder tree, in-memory images of a named set), and where they come from."""
    from train.images import labelled_items

    spec = parse_data_spec(data)
    items, _ = labelled_items(spec, "val", limit, seed)
    source = str(class_root(spec.path, "val")) if spec.kind == "folder" else f"val split of {spec}"
    return [image if isinstance(image, np.ndarray) else str(image) for image, _ in items], source


def generated_images(count: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Smooth colour images of varied sizes, one at a time: only for when there is no data set at all."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h, w = rng.integers(48, 320, size=2)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        channels = [np.sin(xx / rng.uniform(5, 40) + rng.uniform(0, 6)) + np.cos(yy / rng.uniform(5, 40))
                    for _ in range(3)]
        image = (np.stack(channels, axis=2) + 2) * 63 + rng.normal(0, 8, (h, w, 3))
        yield np.clip(image, 0, 255).astype(np.uint8)


def parity_images(data: str | None, count: int, seed: int = 0) -> tuple[Iterator[np.ndarray], str]:
    """The parity check's images, read (or made) one at a time as they are consumed, and where they
    come from; `seed` draws a named set's val split (the training split's, `split_seed`)."""
    if data:
        images, source = val_images(data, count, seed)
        return (read_image(image) if isinstance(image, str) else image for image in images), source
    return generated_images(count), "generated"


def parity_batches(
    card: ModelCard, data: str | None, count: int, chunk: int = VERIFY_CHUNK
) -> tuple[Iterator[np.ndarray], str]:
    """Preprocessed float32 NCHW batches of at most `chunk` images, so that memory does not grow with `count`."""
    images, source = parity_images(data, count, split_seed(card))

    def batches() -> Iterator[np.ndarray]:
        while block := list(itertools.islice(images, chunk)):
            yield np.stack([preprocess(image, card.preprocessing) for image in block])

    return batches(), source


def parity_inputs(card: ModelCard, data: str | None, count: int) -> tuple[np.ndarray, str]:
    """Preprocessed float32 NCHW batch for the parity check, and where it came from (all in memory:
    for a small set, such as TensorRT's calibration images)."""
    batches, source = parity_batches(card, data, count)
    return np.concatenate(list(batches)), source


@dataclass
class Agreement:
    """Running totals of how two models' logits agree, chunk by chunk (`add`), read out as a `Parity`."""

    images: int = 0
    same_top1: int = 0
    values: int = 0
    sum_abs_diff: float = 0.0
    max_abs_diff: float = 0.0

    def add(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        if reference.shape != candidate.shape:
            raise EdgevisionError(f"artifact output shape {candidate.shape} differs from PyTorch's {reference.shape}")
        diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
        self.images += len(reference)
        self.same_top1 += int(np.sum(reference.argmax(1) == candidate.argmax(1)))
        self.values += diff.size
        self.sum_abs_diff += float(diff.sum())
        self.max_abs_diff = max(self.max_abs_diff, float(diff.max(initial=0.0)))

    def parity(self, precision: str, source: str = "") -> Parity:
        agreement = self.same_top1 / max(self.images, 1)
        min_agreement, max_diff = TOLERANCES.get(precision, (0.0, None))
        passed = self.images > 0 and agreement >= min_agreement and (max_diff is None or self.max_abs_diff <= max_diff)
        return Parity(
            passed=bool(passed),
            images=self.images,
            source=source,
            top1_agreement=agreement,
            max_abs_logit_diff=self.max_abs_diff,
            mean_abs_logit_diff=self.sum_abs_diff / max(self.values, 1),
            required_top1_agreement=min_agreement,
            required_max_abs_logit_diff=max_diff,
        )


def compare(reference: np.ndarray, candidate: np.ndarray, precision: str, source: str = "") -> Parity:
    agreement = Agreement()
    agreement.add(reference, candidate)
    return agreement.parity(precision, source)


def verify_artifact(
    model: torch.nn.Module,
    artifact: str | os.PathLike,
    card: ModelCard,
    data: str | None = None,
    count: int = 64,
    backend: str = "auto",
    **options,
) -> tuple[Parity, ConfidenceHistogram | None]:
    """Run `artifact` (through deploy.load) and `model` on the same images; return their parity and
    the artifact's top-1 probability histogram (None on generated images: they say nothing about
    how sure the model is on real ones).

    The images are read and compared `VERIFY_CHUNK` at a time, so memory stays that of one chunk
    whatever `count` is (all of `--verify-images 100000` at once would take 5.6 GB).
    """
    import deploy

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unverified", category=UserWarning)  # this is the check
        classifier = deploy.load(artifact, backend=backend, **options)
    batches, source = parity_batches(card, data, count)
    agreement = Agreement()
    confidence = ConfidenceCounter()
    for batch in batches:
        logits = classifier.run(batch)
        agreement.add(torch_logits(model, batch), logits)
        confidence.add(logits)
    parity = agreement.parity(card.precision, source)
    histogram = confidence.histogram(split_label("val", data)) if data else None  # parity_images reads val
    return replace(parity, backend=classifier.info["backend"], provider=classifier.info["provider"]), histogram
