"""The accuracy guard: a budget on top-1 loss, every attempt recorded, a miss never shipped.

A quantized artifact is scored on held-out images against its float32 source. An attempt
passes when its top-1 is at most `budget` points (percentage points) below fp32. The guard keeps
every attempt for the report, picks the best passing one, and when none passes raises
`BudgetMissed` with the numbers, so that the command exits non-zero and writes nothing.
Accuracies, drops and agreements are stored as fractions (0.97; a drop of 0.01 is one point) and
shown in percent; only the budget, a user's setting, is given in points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from deploy.confidence import ConfidenceCounter, ConfidenceHistogram
from deploy.errors import EdgevisionError

DEFAULT_BUDGET = 1.0  # top-1 points


class BudgetMissed(EdgevisionError):
    """No attempt met the accuracy budget (the message carries every attempt's numbers).

    `report` holds the guard's full report, so a caller can still save what was tried.
    """

    def __init__(self, message: str, report: dict | None = None) -> None:
        super().__init__(message)
        self.report = report or {}


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy as a fraction."""
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(labels)))


@dataclass
class Attempt:
    """One configuration tried: what it was and how it scored (top1, drop, agreement as fractions).

    confidence: its top-1 probability histogram on the guard's images (the card's record when it is
    chosen; left out of the report)."""

    name: str
    precision: str
    config: dict = field(default_factory=dict)
    top1: float | None = None
    drop: float | None = None
    agreement: float | None = None
    latency_ms: float | None = None
    passed: bool = False
    error: str | None = None
    path: Path | None = None
    confidence: ConfidenceHistogram | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = None if self.path is None else str(self.path)
        del data["confidence"]
        return data

    def line(self) -> str:
        if self.error:
            return f"  {self.name:<34} failed: {self.error}"
        speed = f"  {self.latency_ms:7.2f} ms" if self.latency_ms is not None else ""
        verdict = "ok  " if self.passed else "MISS"
        return (
            f"  {self.name:<34} {verdict} top-1 {self.top1:7.2%}  drop {self.drop * 100:+6.2f}  "
            f"agree {self.agreement:7.2%}{speed}"
        )


class Guard:
    """Scores attempts against fp32 logits on the same held-out images."""

    def __init__(self, fp32_logits: np.ndarray, labels: np.ndarray, budget: float = DEFAULT_BUDGET) -> None:
        if budget < 0:
            raise EdgevisionError(f"accuracy budget must be >= 0 points, got {budget}")
        self.labels = np.asarray(labels)
        self.fp32_pred = np.argmax(fp32_logits, axis=1)
        self.fp32_top1 = top1(fp32_logits, labels)
        self.budget = float(budget)
        self.attempts: list[Attempt] = []

    def judge(self, attempt: Attempt, logits: np.ndarray) -> Attempt:
        attempt.top1 = top1(logits, self.labels)
        attempt.drop = self.fp32_top1 - attempt.top1
        attempt.agreement = float(np.mean(np.argmax(logits, axis=1) == self.fp32_pred))
        attempt.passed = attempt.drop * 100.0 <= self.budget + 1e-9
        counter = ConfidenceCounter()
        counter.add(logits)
        attempt.confidence = counter.histogram("")
        self.attempts.append(attempt)
        return attempt

    def failed(self, attempt: Attempt, error: str) -> Attempt:
        attempt.error = error
        self.attempts.append(attempt)
        return attempt

    def best(self) -> Attempt | None:
        """The passing attempt with the highest top-1 (the earliest on a tie: ladders go fastest first)."""
        passing = [a for a in self.attempts if a.passed]
        return max(passing, key=lambda a: (a.top1, -passing.index(a))) if passing else None

    def require_best(self) -> Attempt:
        best = self.best()
        if best is None:
            tried = "; ".join(
                f"{a.name}: {a.error}" if a.error else f"{a.name}: top-1 {a.top1:.2%} (drop {a.drop * 100:.2f})"
                for a in self.attempts
            )
            raise BudgetMissed(
                f"no configuration met the budget of {self.budget:.2f} top-1 points below fp32 "
                f"{self.fp32_top1:.2%} ({tried}); nothing written",
                self.report(),
            )
        return best

    def report(self) -> dict:
        best = self.best()
        return {
            "fp32_top1": self.fp32_top1,
            "budget_points": self.budget,
            "eval_images": int(len(self.labels)),
            "attempts": [a.to_dict() for a in self.attempts],
            "chosen": None if best is None else best.name,
        }
