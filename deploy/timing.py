"""Latency statistics: warm-up, a time budget, percentiles, and interleaved rounds (no torch).

The benchmarks, the quantization guard and the camera app all time with these.

This machine is noisy, so configurations are compared side by side in one run: each round runs
every configuration a few times in turn (A B C A B C ...), and the report gives ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per call over `samples` timed calls."""

    samples: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float

    @classmethod
    def from_samples(cls, seconds: list[float]) -> LatencyStats:
        ms = sorted(s * 1000.0 for s in seconds)

        def pct(q: float) -> float:
            return ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]

        return cls(len(ms), statistics.fmean(ms), pct(0.5), pct(0.9), pct(0.99), ms[0])


def measure_interleaved(
    calls: Mapping[str, Callable[[], object]],
    warmup: int = 5,
    budget_s: float = 20.0,
    per_round: int = 5,
    min_rounds: int = 3,
) -> dict[str, LatencyStats]:
    """Time each callable in turn, round after round, until the time budget is spent.

    Every callable is warmed up first; then each round calls each one `per_round` times, so slow
    drifts of the machine (another process, clocks) affect all of them alike.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or time.perf_counter() - start < budget_s:
        for name, call in calls.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: LatencyStats.from_samples(values) for name, values in samples.items()}
