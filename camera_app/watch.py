"""The camera watching its own confidence: how sure it is on live frames, and whether that drifted.

Over a rolling window of the last `window` frames it keeps the mean top-1 probability, the share of
uncertain frames (top-1 under `threshold`, or the top-2 margin under `margin`) and, when the model
card holds the confidence of the held-out images (`ModelCard.confidence`), a drift score: the
population stability index (PSI) of the window's top-1 probabilities against the card's:

    PSI = sum over bins of (live_i - card_i) * ln(live_i / card_i)

with each share floored at `EPSILON`, so that an empty bin counts as rare rather than impossible.
Read it as: < 0.1 stable, 0.1-0.25 a shift worth a look, > 0.25 drift (the usual PSI bands).

PSI's sampling noise is about (bins - 1) / effective samples, and a camera's frames are far from
independent: a video holding each scene for 5 frames gave 300-frame windows of only 60 scenes, and
over the card's 20 bins an in-distribution video scored up to 0.47. So the card's bins are merged,
from the confident end down, into groups that each hold at least `MIN_GROUP_SHARE` of the card's
images (at most 5 groups), and PSI is computed over those: the same video then stays under 0.14
while frames from another domain score over 4 (benchmarks/RESULTS.md). PSI is only computed once the
window is full. The card's side is a sample too, hence `reference_warning` below 200 images.

Memory is fixed (a deque of the window's frames and running integer sums) and each frame costs
O(bins): an add, a subtract and one PSI over the card's bins.
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass

import numpy as np

from deploy.confidence import ConfidenceHistogram, bin_index
from deploy.errors import EdgevisionError

DEFAULT_WINDOW = 300
MIN_WINDOW = 20
DEFAULT_ALERT = 0.25  # the top of the "shift" band: several times the sampling noise of a full default window
EPSILON = 1e-3  # share floor of an empty bin: a window of a few hundred frames cannot tell shares under ~1/300 apart
CLEAR_RATIO = 0.8  # an alert clears once PSI falls below CLEAR_RATIO x the alert level, so noise does not flap it
MIN_REFERENCE_IMAGES = 200  # below this the card's own sampling noise reaches the "shift" band
MIN_GROUP_SHARE = 0.2  # each group of bins PSI is computed over holds at least this share of the card's images
SCALE = 1_000_000  # top-1 probabilities summed as integer millionths: a running sum that never drifts


def check_fraction(value: float, flag: str) -> float:
    """A finite number in [0, 1], or a one-line error naming the option."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise EdgevisionError(f"{flag} must be a number between 0 and 1, got {value}")
    return float(value)


@dataclass
class WatchOptions:
    """The camera's options for the watch: `--watch-window` frames, `--drift-alert` PSI (0: no alerts),
    `--margin` (a frame whose two best probabilities are closer than this is uncertain; 0: off)."""

    window: int = DEFAULT_WINDOW
    drift_alert: float = DEFAULT_ALERT
    margin: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < MIN_WINDOW:
            raise EdgevisionError(f"--watch-window must be an integer >= {MIN_WINDOW} frames, got {self.window}")
        alert = self.drift_alert
        if isinstance(alert, bool) or not isinstance(alert, (int, float)) or not math.isfinite(alert) or alert < 0:
            raise EdgevisionError(f"--drift-alert must be a finite PSI >= 0 (0: no alerts), got {alert}")
        check_fraction(self.margin, "--margin")


def reference_warning(reference: ConfidenceHistogram | None) -> str | None:
    """A line to log at start when the card's distribution is missing or too small to judge drift by."""
    if reference is None:
        return "the model card has no confidence distribution: no drift score (export or quantize with --data)"
    if reference.images < MIN_REFERENCE_IMAGES:
        return (f"the model card's confidence distribution holds only {reference.images} images: the drift score is "
                f"noisy (export with --verify-images {MIN_REFERENCE_IMAGES * 2} or more for a steadier one)")
    return None


def top_two(probabilities: np.ndarray) -> tuple[float, float]:
    """The best probability and its margin over the second (a NaN from a broken model counts as 0)."""
    values = np.nan_to_num(np.asarray(probabilities, dtype=np.float64).ravel(), nan=0.0, posinf=1.0, neginf=0.0)
    if values.size == 0:
        return 0.0, 0.0
    if values.size == 1:
        best = float(np.clip(values[0], 0.0, 1.0))
        return best, best
    second, best = np.partition(values, -2)[-2:]
    best = float(np.clip(best, 0.0, 1.0))
    return best, best - float(np.clip(second, 0.0, 1.0))


def is_uncertain(best: float, margin: float, threshold: float, min_margin: float) -> bool:
    return best < threshold or margin < min_margin


def psi(live: np.ndarray, reference: np.ndarray, epsilon: float = EPSILON) -> float:
    """Population stability index of two share vectors over the same bins (each term is >= 0)."""
    live = np.maximum(live, epsilon)
    reference = np.maximum(reference, epsilon)
    return float(np.sum((live - reference) * np.log(live / reference)))


def bin_groups(counts: list[int], min_share: float) -> np.ndarray:
    """The group of each bin: adjacent bins merged, from the last (most confident) down, until each
    group holds at least `min_share` of all counts; a remainder too small joins the group above it."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    group_of_bin = np.zeros(len(counts), dtype=np.int64)
    group, held = 0, 0.0
    for index in range(len(counts) - 1, -1, -1):
        group_of_bin[index] = group
        held += counts[index]
        if held >= min_share * total and index > 0:
            group, held = group + 1, 0.0
    if held < min_share * total and group > 0:  # the least confident bins hold too little alone
        group_of_bin[group_of_bin == group] = group - 1
    return group_of_bin.max() - group_of_bin  # numbered from the least confident group up


class ConfidenceWatch:
    """Rolling confidence of live frames; `add` one frame's probabilities, `snapshot` for /stats.json.

    alert: PSI above which `add` returns a `drift_alert` event (once per crossing; `drift_cleared`
    when it falls back below CLEAR_RATIO x alert); None or 0: no events.
    """

    def __init__(self, window: int = DEFAULT_WINDOW, threshold: float = 0.0, margin: float = 0.0,
                 reference: ConfidenceHistogram | None = None, alert: float | None = None) -> None:
        WatchOptions(window, alert or 0.0, margin)
        self.window = window
        self.threshold = check_fraction(threshold, "--threshold")
        self.margin = margin
        self.alert = alert or None
        self.reference = reference
        self.frames: collections.deque[tuple[int, int, bool]] = collections.deque(maxlen=window)
        self.sum_top1 = 0
        self.uncertain = 0
        self.alerting = False
        self.drift: float | None = None
        if reference is not None and reference.images > 0:
            self.edges = np.asarray(reference.edges, dtype=np.float64)
            self.group_of_bin = bin_groups(reference.counts, MIN_GROUP_SHARE)
            groups = int(self.group_of_bin.max()) + 1
            self.reference_shares = np.bincount(self.group_of_bin, weights=reference.shares(), minlength=groups)
            self.counts = np.zeros(groups, dtype=np.int64)
        else:
            self.reference = None

    def add(self, probabilities: np.ndarray) -> list[dict]:
        """Count one frame; returns the events to log (usually none)."""
        best, margin = top_two(probabilities)
        scaled = round(best * SCALE)
        bin_ = int(self.group_of_bin[bin_index(self.edges, best)]) if self.reference is not None else -1
        uncertain = is_uncertain(best, margin, self.threshold, self.margin)
        if len(self.frames) == self.window:
            old_scaled, old_bin, old_uncertain = self.frames[0]
            self.sum_top1 -= old_scaled
            self.uncertain -= old_uncertain
            if old_bin >= 0:
                self.counts[old_bin] -= 1
        self.frames.append((scaled, bin_, uncertain))
        self.sum_top1 += scaled
        self.uncertain += uncertain
        if bin_ >= 0:
            self.counts[bin_] += 1
        if self.reference is None or len(self.frames) < self.window:
            return []
        self.drift = psi(self.counts / self.window, self.reference_shares)
        return self._crossing()

    def _crossing(self) -> list[dict]:
        if self.alert is None:
            return []
        if not self.alerting and self.drift > self.alert:
            self.alerting = True
            return [self._event("drift_alert")]
        if self.alerting and self.drift < self.alert * CLEAR_RATIO:
            self.alerting = False
            return [self._event("drift_cleared")]
        return []

    def _event(self, name: str) -> dict:
        return {"event": name, "time": round(time.time(), 6), "psi": round(self.drift, 4), "window": self.window,
                "alert": self.alert}

    def snapshot(self) -> dict:
        """The "watch" part of /stats.json: every number finite or None."""
        frames = len(self.frames)
        return {
            "window": self.window,
            "frames": frames,
            "mean_confidence": round(self.sum_top1 / SCALE / frames, 6) if frames else None,
            "uncertain_share": round(self.uncertain / frames, 6) if frames else None,
            "drift": None if self.drift is None else round(self.drift, 6),
            "drift_metric": "psi",
            "alert": self.alerting,
        }
