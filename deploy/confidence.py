"""How sure a model was on held-out images: the distribution of its top-1 probability.

`edgevision export` and `edgevision quantize` count it with the artifact itself on the images they
already score, and keep it in the card (`ModelCard.confidence`); the camera app compares live
frames against it (`camera_app.watch`). Kept small: counts over `BINS` equal bins of [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from deploy.data_spec import NAMED_SETS
from deploy.errors import EdgevisionError
from deploy.fields import check_int, check_list, check_mapping, check_number, check_str

BINS = 20
THRESHOLDS = (0.5, 0.8, 0.9)  # the card keeps the share of images whose top-1 probability is under each
MAX_BINS = 1000  # a card from elsewhere with more is refused (the watch does O(bins) work per frame)


def split_label(split: str, data: str) -> str:
    """"val split of digits", "val split of folder:pets": which images, naming a folder by its name only
    (a card never says where its data lay on the machine that made it); a plain PATH is a folder."""
    kind, sep, rest = data.partition(":")
    if sep and kind in ("folder", "idx"):
        data = f"{kind}:{Path(rest.rstrip('/')).name}"
    elif data not in NAMED_SETS:
        data = f"folder:{Path(data.rstrip('/')).name}"
    return f"{split} split of {data}"


def top1_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax top-1 probability of each row of `logits` (as `deploy.classifier` computes it)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp.max(axis=1) / exp.sum(axis=1)


def bin_index(edges: np.ndarray, values: np.ndarray | float) -> np.ndarray:
    """The bin of each value: [e_i, e_i+1), the last bin closed (1.0 falls in it); outside [0, 1] clipped."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


@dataclass
class ConfidenceHistogram:
    """Top-1 probability of a model on `images` held-out images of a data set's `split`.

    edges: `n + 1` ascending bin edges from 0 to 1; counts: images per bin (`n`), summing to `images`;
    threshold_share: {"0.5": fraction of images under 0.5, ...}.
    """

    edges: list[float]
    counts: list[int]
    images: int
    split: str
    threshold_share: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def shares(self) -> np.ndarray:
        """Fraction of the images in each bin."""
        return np.asarray(self.counts, dtype=np.float64) / max(self.images, 1)

    @classmethod
    def from_dict(cls, data: object) -> ConfidenceHistogram | None:
        """Read a card's `confidence` (None when absent), checking every field as the other card fields are."""
        if data is None:
            return None
        data = check_mapping(data, "confidence")
        for name in ("edges", "counts", "images", "split"):
            if name not in data:
                raise EdgevisionError(f"card field confidence.{name} is missing")
        counts = check_list(data["counts"], "confidence.counts", "int")
        if not 1 <= len(counts) <= MAX_BINS:
            raise EdgevisionError(f"card field confidence.counts must hold 1 to {MAX_BINS} bins, got {len(counts)}")
        edges = check_list(data["edges"], "confidence.edges", "number", length=len(counts) + 1)
        # comparisons, not float(): NaN fails them and an integer of 400 digits cannot overflow them
        if not all(0 <= e <= 1 for e in edges) or edges[0] != 0 or edges[-1] != 1 \
                or any(b <= a for a, b in pairwise(edges)):
            raise EdgevisionError("card field confidence.edges must rise strictly from 0 to 1")
        images = check_int(data["images"], "confidence.images")
        if any(c < 0 for c in counts) or sum(counts) != images:
            raise EdgevisionError(f"card field confidence.counts must be >= 0 and sum to confidence.images ({images})")
        shares = check_mapping(data.get("threshold_share", {}), "confidence.threshold_share")
        for key, value in shares.items():
            check_number(value, f"confidence.threshold_share[{key!r}]")
            if not 0 <= value <= 1:
                raise EdgevisionError(f"card field confidence.threshold_share[{key!r}] must be a fraction, got {value}")
        split = check_str(data["split"], "confidence.split")
        return cls([float(e) for e in edges], counts, images, split, dict(shares))


class ConfidenceCounter:
    """Counts top-1 probabilities batch by batch (`add`), so nothing per image is kept."""

    def __init__(self, bins: int = BINS, thresholds: tuple[float, ...] = THRESHOLDS) -> None:
        self.edges = np.linspace(0.0, 1.0, bins + 1)
        self.counts = np.zeros(bins, dtype=np.int64)
        self.thresholds = thresholds
        self.under = np.zeros(len(thresholds), dtype=np.int64)

    def add(self, logits: np.ndarray) -> None:
        """Count the rows of a batch of logits; rows that are not finite count as probability 0."""
        top1 = np.nan_to_num(top1_probabilities(logits), nan=0.0)
        self.counts += np.bincount(bin_index(self.edges, top1), minlength=len(self.counts))
        self.under += np.array([int(np.sum(top1 < t)) for t in self.thresholds], dtype=np.int64)

    def histogram(self, split: str) -> ConfidenceHistogram | None:
        """The card's record, or None when nothing was counted."""
        images = int(self.counts.sum())
        if images == 0:
            return None
        shares = {str(t): round(int(n) / images, 6) for t, n in zip(self.thresholds, self.under, strict=True)}
        return ConfidenceHistogram([round(float(e), 6) for e in self.edges], [int(c) for c in self.counts],
                                   images, split, shares)
