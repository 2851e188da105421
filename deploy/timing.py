"""Latency statistics: warm-up, a time budget, percentiles, and interleaved rounds (no torch).

The benchmarks, the quantization guard, the runtime's thread tuning (`deploy.backends.tune`) and
the camera app all time with these.

A shared or throttling machine drifts while it is timed, so configurations are compared side by
side in one run: each round runs every configuration a few times in turn (A B C A B C ...), and
the report gives ratios. Configurations are keyed by whatever the caller names them with (a
string, a setting, a row index): any hashable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per call over `samples` timed calls."""

    samples: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    p95_ms: float
    max_ms: float
    std_ms: float

    @classmethod
    def from_samples(cls, seconds: list[float]) -> LatencyStats:
        ms = sorted(s * 1000.0 for s in seconds)

        def pct(q: float) -> float:
            return ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]

        std = statistics.pstdev(ms) if len(ms) > 1 else 0.0
        return cls(len(ms), statistics.fmean(ms), pct(0.5), pct(0.9), pct(0.99), ms[0], pct(0.95), ms[-1], std)


Timer = Callable[[int], list[float]]  # runs its call n times, returns the n durations in seconds
Key = TypeVar("Key", bound=Hashable)  # what the caller names a configuration by


def measure_rounds(
    timers: Mapping[Key, Timer],
    warmup: int = 5,
    budget_s: float = 20.0,
    per_round: int = 5,
    min_rounds: int = 3,
) -> tuple[dict[Key, LatencyStats], dict[Key, Exception]]:
    """Warm every timer up, then ask each in turn for `per_round` timed calls, round after round,
    until the time budget is spent, so slow drifts of the machine (another process, clocks)
    affect all of them alike. A timer that raises is dropped from the rounds and reported in the
    second dict; the others go on. A timer may time calls in another process (benchmarks do).
    """
    active = dict(timers)
    failures: dict[Key, Exception] = {}

    def ask(name: Key, count: int) -> list[float]:
        try:
            return active[name](count)
        except Exception as exc:  # one failing target must not end the others
            failures[name] = exc
            del active[name]
            return []

    for name in list(active):
        ask(name, warmup)
    samples: dict[Key, list[float]] = {name: [] for name in active}
    start = time.perf_counter()
    rounds = 0
    while active and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        for name in list(active):
            samples[name].extend(ask(name, per_round))
        rounds += 1
    return {name: LatencyStats.from_samples(samples[name]) for name in active}, failures


def measure_interleaved(
    calls: Mapping[Key, Callable[[], object]],
    warmup: int = 5,
    budget_s: float = 20.0,
    per_round: int = 5,
    min_rounds: int = 3,
) -> dict[Key, LatencyStats]:
    """Time each callable in turn, round after round, until the time budget is spent (see
    `measure_rounds`); an exception in a call propagates."""

    def timer(call: Callable[[], object]) -> Timer:
        def run(count: int) -> list[float]:
            durations = []
            for _ in range(count):
                t0 = time.perf_counter()
                call()
                durations.append(time.perf_counter() - t0)
            return durations

        return run

    stats, failures = measure_rounds({name: timer(call) for name, call in calls.items()},
                                     warmup, budget_s, per_round, min_rounds)
    if failures:
        raise next(iter(failures.values()))
    return stats
