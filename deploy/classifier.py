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
    probabilities: the full softmax over the classes.
    valid: False when the model's logits were not all finite (NaN or inf): then `top` is empty, the
    probabilities are NaN, and `label` / `score` raise (there is no answer to give)."""

    top: list[tuple[str, float]]
    timings_ms: dict[str, float]
    probabilities: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))
    valid: bool = True

    @property
    def label(self) -> str:
        return self.best[0]

    @property
    def score(self) -> float:
        return self.best[1]

    @property
    def best(self) -> tuple[str, float]:
        if not self.valid:
            raise EdgevisionError(NOT_FINITE)
        return self.top[0]


NOT_FINITE = "the model's output is not finite (NaN or inf logits): no prediction"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 after subtracting each row's max, so large finite logits cannot
    overflow `exp`; a row with any non-finite logit comes out all NaN (see `finite_rows`)."""
    logits = np.asarray(logits, dtype=np.float64)
    finite = finite_rows(logits)
    safe = np.where(finite[..., None], logits, 0.0)
    shifted = safe - safe.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probs = exp / exp.sum(axis=-1, keepdims=True)
    probs[~finite] = np.nan
    return probs.astype(np.float32)


def finite_rows(logits: np.ndarray) -> np.ndarray:
    """True for each row (last axis) whose logits are all finite."""
    return np.isfinite(logits).all(axis=-1)


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
        valid = finite_rows(np.asarray(logits))
        k = min(top_k, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        names = self.card.class_names
        tops = [[(names[j], float(row[j])) for j in idx] if ok else []
                for row, idx, ok in zip(probs, order, valid, strict=True)]
        t3 = time.perf_counter()
        timings = {
            "preprocess": (t1 - t0) * 1e3,
            "inference": (t2 - t1) * 1e3,
            "postprocess": (t3 - t2) * 1e3,
            "batch": len(images),
        }
        return [Prediction(top, dict(timings), row, bool(ok)) for top, row, ok in zip(tops, probs, valid, strict=True)]
