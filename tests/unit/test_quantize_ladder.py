"""The one ladder runner of `edgevision quantize`: every rung is judged or recorded as failed, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantize.guard import Guard
from quantize.quantize_pipeline import Rung, climb

LABELS = np.array([0, 1, 0, 1, 0, 1, 0, 1])
FP32 = np.eye(2)[LABELS]  # fp32 gets all 8 right


def rung(name: str, wrong: int = 0, error: Exception | None = None) -> Rung:
    """A rung whose candidate is a real .npy of logits with `wrong` mistakes, or that raises `error`."""

    def write(path: Path) -> None:
        if error is not None:
            raise error
        predictions = LABELS.copy()
        predictions[:wrong] = 1 - predictions[:wrong]
        np.save(path, np.eye(2)[predictions])

    return Rung(name, "int8", {"wrong": wrong}, write)


def score(path: Path) -> np.ndarray:
    return np.load(path)


def test_an_exception_in_a_rung_is_a_failed_attempt_and_the_ladder_goes_on(tmp_path: Path) -> None:
    guard = Guard(FP32, LABELS, budget=1.0)
    best = climb(guard, [
        rung("crashes", error=RuntimeError("XNNPACK lowering failed\nlong traceback text")),
        rung("no-message", error=ValueError()),
        rung("misses", wrong=1),
        rung("passes"),
        rung("never-tried"),
    ], tmp_path, ".npy", score)
    assert [a.name for a in guard.attempts] == ["crashes", "no-message", "misses", "passes"]
    assert guard.attempts[0].error == "RuntimeError: XNNPACK lowering failed"
    assert guard.attempts[1].error == "ValueError: ValueError"
    assert guard.attempts[2].top1 == 0.875 and guard.attempts[2].drop == 0.125 and not guard.attempts[2].passed
    assert best is guard.attempts[3] and best.passed and best.path == tmp_path / "try3.npy"


def test_exhaustive_tries_every_rung_and_keeps_the_most_accurate(tmp_path: Path) -> None:
    guard = Guard(FP32, LABELS, budget=20.0)  # one mistake in 8 (12.5 points) is allowed
    best = climb(guard, [rung("one-wrong", wrong=1), rung("exact"), rung("exact-too")], tmp_path, ".npy", score,
                 exhaustive=True)
    assert len(guard.attempts) == 3 and best.name == "exact"  # the earliest on a tie


def test_a_ladder_where_everything_fails_names_every_reason(tmp_path: Path) -> None:
    guard = Guard(FP32, LABELS, budget=1.0)
    climb(guard, [rung("a", error=OSError()), rung("b", wrong=2)], tmp_path, ".npy", score)
    with pytest.raises(Exception, match=r"a: OSError: OSError; b: top-1 75.00% \(drop 25.00\)"):
        guard.require_best()
