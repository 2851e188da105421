"""The camera app's numbers in fixed memory: a windowed frame rate, recent and whole-run latency.

- `RateMeter`: frames completed over the last few seconds of wall time. An average of
  instantaneous rates (1/dt per frame) overstates a paced source, because bursts of short gaps
  weigh as much as the long ones; counting frames over elapsed time cannot exceed the source.
- `RecentWindow`: the last few hundred values, for live p50/p95 and a windowed mean.
- `StreamingStats`: count/mean/min/max plus log-spaced histogram buckets 2 % wide, so a run of any
  length gives p50/p95/p99 within about 1 % of the exact value in constant memory.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from deploy.timing import LatencyStats


class RateMeter:
    """Completions per second over the last `window_s` seconds: (n - 1) / (newest - oldest).

    n completions span n - 1 intervals. The oldest kept completion may lie before the window when
    fewer than two lie inside it, so a pipeline slower than one frame per window still has a rate.
    Until the completions span a whole window (the start of a run) the span is measured from
    `started`, when frames began to be read: from the first completions alone, one late result would
    overstate the rate many times over, while n frames from a source with its own clock cannot have
    come in less than n - 1 of its intervals after reading began. Past that, a late completion at
    the window's edge moves the rate by its lateness over the window (1 % per 30 ms).
    `max_events` bounds the memory at any speed.
    """

    def __init__(self, window_s: float = 3.0, started: float | None = None, max_events: int = 4096) -> None:
        self.window_s = window_s
        self.started = started
        self.times: collections.deque[float] = collections.deque(maxlen=max_events)

    def tick(self, done: float) -> None:
        self.times.append(done)
        while len(self.times) > 2 and self.times[1] <= done - self.window_s:
            self.times.popleft()

    def rate(self) -> float:
        if len(self.times) < 2:
            return 0.0
        span = self.times[-1] - self.times[0]
        if span < self.window_s and self.started is not None:
            span = self.times[-1] - min(self.started, self.times[0])
        return (len(self.times) - 1) / span if span > 0 else 0.0


class RecentWindow:
    """The last `size` values."""

    def __init__(self, size: int = 300) -> None:
        self.values: collections.deque[float] = collections.deque(maxlen=size)

    def add(self, value: float) -> None:
        self.values.append(value)

    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    def percentiles(self) -> dict[str, float] | None:
        """{"p50", "p95"} of the window, None while empty."""
        if not self.values:
            return None
        p50, p95 = np.percentile(np.fromiter(self.values, float, len(self.values)), [50, 95])
        return {"p50": float(p50), "p95": float(p95)}


class StreamingStats:
    """Running count/mean/min/max and a fixed log-spaced histogram of non-negative values.

    Buckets grow by `growth` (2 %) from `low` to `high`; a value below `low` (0 included) or above
    `high` goes to an end bucket. A percentile is the geometric middle of its bucket, clamped to the
    observed min/max, so it is within sqrt(growth) - 1 (about 1 %) of the exact nearest-rank value
    inside [low, high] and exact when every value is the same.
    """

    def __init__(self, low: float = 1e-3, high: float = 1e7, growth: float = 1.02) -> None:
        self.low = low
        self.log_growth = math.log(growth)
        self.buckets = int(math.ceil(math.log(high / low) / self.log_growth))
        self.counts = [0] * (self.buckets + 2)  # [below low] + buckets + [above high]; a list: cheaper to bump
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        value = max(0.0, float(value))
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value < self.low:
            self.counts[0] += 1
        else:
            self.counts[min(self.buckets + 1, 1 + int(math.log(value / self.low) / self.log_growth))] += 1

    def percentile(self, q: float) -> float:
        """The value at rank round(q * (count - 1)) (as `deploy.timing.LatencyStats`), approximately."""
        if not self.count:
            return math.nan
        rank = int(round(q * (self.count - 1)))
        index = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        if index == 0:
            return self.min
        if index > self.buckets:
            return self.max
        middle = self.low * math.exp((index - 0.5) * self.log_growth)
        return min(self.max, max(self.min, middle))

    def summary(self) -> dict[str, float]:
        """p50/p95/p99/mean/min/max, {} when empty (the same keys as `stage_stats`)."""
        if not self.count:
            return {}
        return {"p50": self.percentile(0.5), "p95": self.percentile(0.95), "p99": self.percentile(0.99),
                "mean": self.total / self.count, "min": self.min, "max": self.max}


def stage_stats(values_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean/min/max in ms of a list in hand (an offline log), {} when empty."""
    if not values_ms:
        return {}
    stats = LatencyStats.from_samples([v / 1000.0 for v in values_ms])
    return {"p50": stats.p50_ms, "p95": stats.p95_ms, "p99": stats.p99_ms, "mean": stats.mean_ms,
            "min": stats.min_ms, "max": stats.max_ms}


LIVE_STAGES = ("preprocess", "inference", "postprocess", "overlay", "output")
NO_PERCENTILES = {"p50": 0.0, "p95": 0.0}


class PipelineNumbers:
    """Everything counted per processed frame, in fixed memory: the live figures that the overlay,
    the page and the log show (one windowed FPS, recent p50/p95) and the whole run's summary.

    stages: the names of the per-frame stage timings (ms); live percentiles are recomputed at most
    every `refresh_s` (sorting a few hundred values per stage on every frame would cost more than a
    fast model's inference).
    """

    def __init__(self, stages: tuple[str, ...], started: float, window_s: float = 3.0, recent: int = 300,
                 refresh_s: float = 0.25) -> None:
        self.stages = stages
        self.started = started
        self.meter = RateMeter(window_s, started)
        self.recent = {name: RecentWindow(recent) for name in (*stages, "age")}
        self.run = {name: StreamingStats() for name in (*stages, "age", "overhead")}
        self.frames = 0
        self.last_done: float | None = None
        self.refresh_s = refresh_s
        self.refreshed_at = -math.inf
        self.percentiles: dict[str, dict[str, float]] = {}

    def add(self, stages_ms: dict[str, float], age_ms: float, busy_ms: float, done: float) -> None:
        """One frame done at monotonic time `done`; busy_ms: from taking the frame to done."""
        self.frames += 1
        self.last_done = done
        self.meter.tick(done)
        for name in self.stages:
            self.recent[name].add(stages_ms[name])
            self.run[name].add(stages_ms[name])
        self.recent["age"].add(age_ms)
        self.run["age"].add(age_ms)
        self.run["overhead"].add(busy_ms - stages_ms["preprocess"] - stages_ms["inference"])

    @property
    def pipeline_fps(self) -> float:
        return self.meter.rate()

    @property
    def model_fps(self) -> float:
        """1000 / mean inference ms over the recent frames (a mean of times, not of rates)."""
        mean = self.recent["inference"].mean()
        return 1e3 / mean if mean else 0.0

    def live(self, now: float) -> dict:
        """The live figures: pipeline_fps, model_fps, latency_ms {stage: {p50, p95}}, age_ms {p50, p95}."""
        if now - self.refreshed_at >= self.refresh_s:
            self.refreshed_at = now
            self.percentiles = {name: window.percentiles() or NO_PERCENTILES for name, window in self.recent.items()}
        latency = {name: self.percentiles.get(name, NO_PERCENTILES) for name in LIVE_STAGES if name in self.stages}
        return {"pipeline_fps": self.pipeline_fps, "model_fps": self.model_fps, "latency_ms": latency,
                "age_ms": self.percentiles.get("age", NO_PERCENTILES)}

    @property
    def seconds(self) -> float:
        """From the start of reading to the last result."""
        return self.last_done - self.started if self.frames else 0.0

    def summary(self) -> dict:
        """The run: pipeline_fps = (frames - 1) / seconds, the live meter's start-of-run formula over the
        whole run (n frames from a paced source take at least n - 1 of its intervals);
        model_fps from the mean inference time; every stage's p50/p95/p99/mean/min/max."""
        stage = {name: self.run[name].summary() for name in self.stages}
        model_ms = stage.get("inference", {}).get("mean", 0.0)
        classifier_ms = model_ms + stage.get("preprocess", {}).get("mean", 0.0)
        return {
            "duration_s": self.seconds,
            "pipeline_fps": (self.frames - 1) / self.seconds if self.seconds > 0 else 0.0,
            "model_fps": 1e3 / model_ms if model_ms else 0.0,
            "classifier_fps": 1e3 / classifier_ms if classifier_ms else 0.0,
            "latency_ms": stage,
            "age_ms": self.run["age"].summary(),
            "overhead_ms": self.run["overhead"].summary(),
        }
