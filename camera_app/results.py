"""What one frame gives (`FrameResult`), the one interface every output has (`Sink`), and the run's
stop switch (`RunControl`).

A frame goes Capture -> classify -> render -> each sink's `write`, whatever the sink is: a window,
a recording, the browser view, the log, or anything added later (a confidence watch fed the
probabilities, a saver of uncertain frames fed the raw image), as jetson-utils' `videoOutput.Render`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class FrameResult:
    """One processed frame.

    index: the source's 0-based frame index; wall: its capture moment (Unix seconds);
    image: the frame as captured (BGR, never drawn on);
    valid: False when the model's output was not finite (NaN/inf): then `top` is empty, the
      probabilities are NaN and the frame counts as invalid, not classified;
    probabilities: the model's own for this frame; top: (label, probability) best first, after
      `--smooth` when set; uncertain: the best probability is below `--threshold`;
    stages_ms: capture_wait, preprocess, inference, postprocess, overlay, output (output grows as
      each sink is written: a sink sees the time spent in the sinks before it);
    age_ms: capture to result;
    live: the live figures in the shape of /stats.json (pipeline_fps, model_fps, latency_ms,
      age_ms, classified, invalid, dropped, reconnects, uptime_s); a sink may add a key for the
      sinks after it (a confidence watch adds "watch");
    events: records to log with this frame (a sink may append; the log sink writes them first).
    """

    index: int
    wall: float
    image: np.ndarray = field(repr=False)
    valid: bool
    probabilities: np.ndarray = field(repr=False)
    top: list[tuple[str, float]]
    uncertain: bool
    stages_ms: dict[str, float]
    age_ms: float
    live: dict = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)

    def top_records(self) -> list[dict]:
        return [{"label": label, "prob": round(prob, 6)} for label, prob in self.top]


class Sink(Protocol):
    """An output. Per processed frame the loop asks every sink's `needs_image()` once, draws the
    overlay if any said yes, then calls each `write` in the order the sinks were given; `image` is
    the annotated frame (None when no sink asked for one).

    A sink fed probabilities (a confidence watch) reads `result.probabilities` when `result.valid`,
    sends its events to the log through the event callback it was built with, and adds its figures
    to `result.live` for the sinks after it (the browser view); a sink fed the raw frame (a saver of
    uncertain frames) reads `result.image` and `result.top`.
    """

    def needs_image(self) -> bool: ...

    def write(self, result: FrameResult, image: np.ndarray | None) -> None: ...

    def idle(self) -> None:
        """Called when no frame came for a moment (a window keeps answering keys)."""

    def close(self) -> None: ...


class BaseSink:
    """Defaults for a sink that needs no pixels, has nothing to do while idle and nothing to close."""

    def needs_image(self) -> bool:
        return False

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        pass

    def close(self) -> None:
        pass


class RunControl:
    """The stop switch shared by the loop, the signal handler and the sinks (a window's q key);
    the first reason given is the one reported."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()
        self.reason: str | None = None

    def end(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.stop.set()

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()
