"""ConfidenceWatch on synthetic confidence distributions: PSI small for the same, large for a shift,
alert events once per crossing, running sums equal to recounting the window."""

from __future__ import annotations

import json

import numpy as np
import pytest

from camera_app.watch import ConfidenceWatch, WatchOptions, bin_groups, psi, top_two
from deploy.confidence import ConfidenceCounter
from deploy.errors import EdgevisionError


def frames(rng: np.random.Generator, count: int, low: float, high: float) -> np.ndarray:
    """`count` probability vectors over 3 classes whose top-1 is uniform in [low, high] (low >= 0.5)."""
    best = rng.uniform(low, high, count)
    rest = 1.0 - best
    return np.stack([best, rest * 0.7, rest * 0.3], axis=1)


def card_histogram(probabilities: np.ndarray):
    counter = ConfidenceCounter()
    counter.add(np.log(probabilities))
    return counter.histogram("val split of synthetic")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def reference(rng):
    return card_histogram(frames(rng, 3000, 0.6, 1.0))


def feed(watch: ConfidenceWatch, probabilities: np.ndarray) -> list[dict]:
    events = []
    for row in probabilities:
        events += watch.add(row)
    return events


def test_same_distribution_is_stable_and_a_shift_is_drift(rng, reference):
    same = ConfidenceWatch(window=300, reference=reference)
    feed(same, frames(rng, 300, 0.6, 1.0))
    shifted = ConfidenceWatch(window=300, reference=reference)
    feed(shifted, frames(rng, 300, 0.5, 0.8))
    assert same.snapshot()["drift"] < 0.1
    assert shifted.snapshot()["drift"] > 0.25


def test_drift_waits_for_a_full_window(rng, reference):
    watch = ConfidenceWatch(window=100, reference=reference)
    feed(watch, frames(rng, 99, 0.5, 0.6))
    assert watch.snapshot()["drift"] is None and watch.snapshot()["frames"] == 99
    watch.add(frames(rng, 1, 0.5, 0.6)[0])
    assert watch.snapshot()["drift"] > 0.25


def test_alert_once_per_crossing_and_cleared_once(rng, reference):
    watch = ConfidenceWatch(window=200, reference=reference, alert=0.25)
    assert feed(watch, frames(rng, 400, 0.6, 1.0)) == []
    events = feed(watch, frames(rng, 400, 0.5, 0.75))
    assert [e["event"] for e in events] == ["drift_alert"]
    assert events[0]["psi"] > 0.25 and events[0]["window"] == 200 and watch.snapshot()["alert"] is True
    events = feed(watch, frames(rng, 400, 0.6, 1.0))
    assert [e["event"] for e in events] == ["drift_cleared"] and watch.snapshot()["alert"] is False
    assert [e["event"] for e in feed(watch, frames(rng, 400, 0.5, 0.75))] == ["drift_alert"]
    json.dumps(events, allow_nan=False)


def test_no_alert_level_no_events(rng, reference):
    watch = ConfidenceWatch(window=50, reference=reference, alert=None)
    assert feed(watch, frames(rng, 200, 0.5, 0.6)) == [] and watch.snapshot()["drift"] > 0.25


def test_running_sums_equal_a_recount_of_the_window(rng):
    watch = ConfidenceWatch(window=50, threshold=0.7, margin=0.3)
    probabilities = frames(rng, 1234, 0.5, 1.0)
    feed(watch, probabilities)
    last = probabilities[-50:]
    margins = last[:, 0] - last[:, 1]
    snapshot = watch.snapshot()
    assert len(watch.frames) == 50 == snapshot["frames"] == snapshot["window"]
    assert snapshot["mean_confidence"] == pytest.approx(last[:, 0].mean(), abs=1e-6)
    assert snapshot["uncertain_share"] == pytest.approx(np.mean((last[:, 0] < 0.7) | (margins < 0.3)))


def test_without_the_cards_distribution_everything_but_drift(rng):
    watch = ConfidenceWatch(window=20, threshold=0.9)
    assert watch.snapshot() == {"window": 20, "frames": 0, "mean_confidence": None, "uncertain_share": None,
                                "drift": None, "drift_metric": "psi", "alert": False}
    feed(watch, [np.array([0.95, 0.05]), np.array([0.6, 0.4])])
    snapshot = watch.snapshot()
    assert snapshot["mean_confidence"] == pytest.approx(0.775) and snapshot["uncertain_share"] == 0.5
    assert snapshot["drift"] is None
    json.dumps(snapshot, allow_nan=False)


def test_broken_probabilities_count_as_unsure():
    watch = ConfidenceWatch(window=20, threshold=0.5)
    watch.add(np.array([np.nan, np.nan]))
    watch.add(np.array([np.inf, 0.0]))
    snapshot = watch.snapshot()
    assert snapshot["mean_confidence"] == 0.5 and snapshot["uncertain_share"] == 0.5
    json.dumps(snapshot, allow_nan=False)
    assert top_two(np.array([0.5, 0.45, 0.05])) == pytest.approx((0.5, 0.05))


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    reference = np.array([0.0, 0.1, 0.2, 0.7])
    assert psi(reference, reference) == 0.0
    assert 0 < psi(np.array([0.0, 0.15, 0.2, 0.65]), reference) < psi(np.array([0.2, 0.3, 0.2, 0.3]), reference)


@pytest.mark.parametrize(("options", "says"), [
    ({"window": 5}, "--watch-window must be an integer >= 20"),
    ({"window": 30.5}, "--watch-window must be an integer"),
    ({"drift_alert": float("nan")}, "--drift-alert must be a finite PSI >= 0"),
    ({"drift_alert": -1}, "--drift-alert must be a finite PSI"),
    ({"margin": 1.5}, "--margin must be a number between 0 and 1"),
    ({"margin": float("inf")}, "--margin must be a number between 0 and 1"),
])
def test_options_out_of_range_are_one_line(options, says):
    with pytest.raises(EdgevisionError, match=says):
        WatchOptions(**options)


def test_threshold_checked_too():
    with pytest.raises(EdgevisionError, match="--threshold must be a number between 0 and 1"):
        ConfidenceWatch(threshold=float("nan"))


def test_reference_warning_says_when_drift_cannot_be_trusted(reference):
    from camera_app.watch import reference_warning

    assert reference_warning(reference) is None
    assert "no drift score" in reference_warning(None)
    small = card_histogram(frames(np.random.default_rng(2), 64, 0.6, 1.0))
    assert "only 64 images" in reference_warning(small)


def test_bin_groups_hold_a_fifth_each_and_stay_in_order():
    counts = [0] * 10 + [2, 3, 3, 5, 7, 2, 15, 25, 68, 126]  # a real card: cats vs dogs, 256 images
    groups = bin_groups(counts, 0.2)
    assert list(groups) == sorted(groups)  # contiguous, least confident first
    held = np.bincount(groups, weights=counts)
    assert (held >= 0.2 * sum(counts)).all() and len(held) >= 2


def test_scenes_held_for_several_frames_do_not_cry_drift(rng, reference):
    """A camera sees each scene for many frames: 300 frames of 60 in-distribution scenes held 5 frames
    each must stay under the default alert (over the card's 20 bins they reached it)."""
    scenes = frames(rng, 60 * 5, 0.6, 1.0)
    watch = ConfidenceWatch(300, reference=reference, alert=0.25)
    events = feed(watch, np.repeat(scenes, 5, axis=0))
    assert events == []
    shifted = np.repeat(frames(rng, 60, 0.5, 0.6), 5, axis=0)
    assert [e["event"] for e in feed(watch, shifted)] == ["drift_alert"]


def test_the_summary_line_says_what_the_last_window_saw():
    from camera_app.outputs import watch_line

    watch = {"window": 300, "frames": 300, "mean_confidence": 0.665, "uncertain_share": 0.25, "drift": 4.53,
             "drift_metric": "psi", "alert": True}
    assert watch_line(watch, {"saved": 3, "dropped": 1, "uncertain": 9}) == (
        "watch    last 300 frames: mean confidence 66.5%, uncertain 25.0%, drift (PSI) 4.530, ALERT; "
        "uncertain frames saved 3 (dropped 1)")
    assert "no card distribution" in watch_line({**watch, "drift": None, "alert": False}, None)
    assert watch_line({**watch, "frames": 0}, None) is None
