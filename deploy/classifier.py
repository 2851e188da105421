"""Image in, labels out: preprocess (from the card) -> backend -> softmax and top-k, each timed."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from deploy.labels import check_label_count
from deploy.preprocess import preprocess, read_image

ImageLike = np.ndarray | str | os.PathLike


@dataclass
class Prediction:
    """top: (label, probability) best first. timings_ms: preprocess, inference, postprocess (of the call
    that produced it; a batch call shares its timings and says how many images it held in `batch`).
    probabilities: the full softmax over the classes."""

    top: list[tuple[str, float]]
    timings_ms: dict[str, float]
    probabilities: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))

    @property
    def label(self) -> str:
        return self.top[0][0]

    @property
    def score(self) -> float:
        return self.top[0][1]


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def as_image(image: ImageLike) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        return read_image(str(image))
    if not isinstance(image, np.ndarray):
        raise EdgevisionError(f"an image must be a numpy array or a file path, got {type(image).__name__}")
    return image


class Classifier:
    """A model file made ready to classify images: `card` says how, `backend` runs it."""

    def __init__(self, card: ModelCard, backend) -> None:
        self.card = card
        self.backend = backend
        info = backend.info
        check_label_count(card.class_names, info["output_shape"][-1], "the model card")
        channels = info["input_shape"][1]
        spec = card.preprocessing
        if channels is not None and channels != spec.channels:
            raise EdgevisionError(
                f"the model takes {channels} channels but its card says {spec.color} ({spec.channels} channels)"
            )
        size = tuple(info["input_shape"][2:])
        if None not in size and size != tuple(spec.input_size):
            raise EdgevisionError(f"the model takes {size[0]}x{size[1]} images but its card says {spec.input_size}")
        self.max_batch = info.get("max_batch")

    @property
    def info(self) -> dict:
        return self.backend.info

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a preprocessed batch, in chunks the backend can take (a fixed batch of 1: a loop)."""
        step = self.max_batch or len(batch)
        if step >= len(batch):
            return self.backend.run(batch)
        return np.concatenate([self.backend.run(batch[i : i + step]) for i in range(0, len(batch), step)])

    def predict(self, image: ImageLike, top_k: int = 5) -> Prediction:
        return self.predict_batch([image], top_k=top_k)[0]

    def predict_batch(self, images: Sequence[ImageLike], top_k: int = 5) -> list[Prediction]:
        if isinstance(images, (str, Path, np.ndarray)):
            raise EdgevisionError("predict_batch takes a list of images; use predict for one")
        if not images:
            return []
        if top_k < 1:
            raise EdgevisionError(f"top_k must be >= 1, got {top_k}")
        t0 = time.perf_counter()
        batch = np.stack([preprocess(as_image(image), self.card.preprocessing) for image in images])
        t1 = time.perf_counter()
        logits = self.run(batch)
        t2 = time.perf_counter()
        probs = softmax(logits)
        k = min(top_k, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        names = self.card.class_names
        tops = [[(names[j], float(row[j])) for j in idx] for row, idx in zip(probs, order)]
        t3 = time.perf_counter()
        timings = {
            "preprocess": (t1 - t0) * 1e3,
            "inference": (t2 - t1) * 1e3,
            "postprocess": (t3 - t2) * 1e3,
            "batch": len(images),
        }
        return [Prediction(top, dict(timings), row) for top, row in zip(tops, probs)]
