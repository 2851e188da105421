"""The loop: take a frame, classify it, draw it if an output needs pixels, hand it to every sink.

Capture -> Classify -> Overlay -> Render, as in jetson-inference's `imagenet.py`: each output is a
`camera_app.results.Sink` with one call per frame. Every stage is timed and the frame's age
(capture to result) kept, so pipeline speed and model speed are reported apart; the numbers live
in `camera_app.stats.PipelineNumbers`, in fixed memory however long the run.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from camera_app.capture import Capture, Frame
from camera_app.config import PipelineOptions
from camera_app.overlay import OverlayView, draw_overlay
from camera_app.results import FrameResult, RunControl, Sink
from camera_app.stats import PipelineNumbers
from deploy.classifier import Prediction

log = logging.getLogger("edgevision.camera")
STAGES = ("capture_wait", "preprocess", "inference", "postprocess", "overlay", "output")
INVALID_OUTPUT = "the model's output is not finite (NaN or inf logits); such frames are counted as invalid, not shown"


class Smoother:
    """Moving average of the probability vectors of the last `frames` frames."""

    def __init__(self, frames: int) -> None:
        self.window: collections.deque[np.ndarray] = collections.deque(maxlen=frames)
        self.total: np.ndarray | None = None

    def add(self, probabilities: np.ndarray) -> np.ndarray:
        if self.window.maxlen == 1:
            return probabilities
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if len(self.window) == self.window.maxlen:
            self.total -= self.window[0]
        self.window.append(probabilities)
        self.total = probabilities.copy() if self.total is None else self.total + probabilities
        return (self.total / len(self.window)).astype(np.float32)


def top_k(probabilities: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(labels[i], float(probabilities[i])) for i in order]


class FrameClassifier:
    """A frame -> a `FrameResult`: the model's prediction, smoothed and thresholded, with its timings."""

    def __init__(self, classify: Callable[[np.ndarray], Prediction], labels: list[str],
                 options: PipelineOptions) -> None:
        self.classify = classify
        self.labels = labels
        self.options = options
        self.smoother = Smoother(options.smooth)

    def __call__(self, frame: Frame, wait_ms: float) -> FrameResult:
        prediction = self.classify(frame.image)
        t0 = time.monotonic()
        top: list[tuple[str, float]] = []
        if prediction.valid:
            smoothed = self.smoother.add(prediction.probabilities)
            top = (top_k(smoothed, self.labels, self.options.top_k) if self.options.smooth > 1
                   else prediction.top[: self.options.top_k])
        done = time.monotonic()
        timings = prediction.timings_ms
        stages = {"capture_wait": wait_ms, "preprocess": timings["preprocess"], "inference": timings["inference"],
                  "postprocess": timings["postprocess"] + (done - t0) * 1e3, "overlay": 0.0, "output": 0.0}
        return FrameResult(
            frame.index, frame.wall, frame.image, prediction.valid, prediction.probabilities, top,
            bool(top) and top[0][1] < self.options.threshold, stages, (done - frame.captured) * 1e3,
        )


def render(result: FrameResult, options: PipelineOptions) -> np.ndarray:
    """The overlay on a copy of the frame (the result keeps the frame as captured)."""
    live = result.live
    view = OverlayView(
        result.top, result.uncertain, live["pipeline_fps"], live["model_fps"],
        {name: value["p50"] for name, value in live["latency_ms"].items()}, live["age_ms"]["p50"], options.caption,
    )
    return draw_overlay(result.image.copy(), view, options.threshold)


@dataclass
class PipelineResult:
    """classified + invalid = frames processed; numbers: their timings (`PipelineNumbers`)."""

    numbers: PipelineNumbers
    classified: int = 0
    invalid: int = 0
    end_reason: str = "stopped"


class Pipeline:
    """Runs frames from a `Capture` through a `FrameClassifier` into sinks until the run ends."""

    def __init__(self, capture: Capture, classify: FrameClassifier, sinks: list[Sink], control: RunControl,
                 on_event: Callable[[dict], None]) -> None:
        self.capture = capture
        self.classify = classify
        self.options = classify.options
        self.sinks = sinks
        self.control = control
        self.on_event = on_event
        self.started = time.monotonic()
        self.result = PipelineResult(PipelineNumbers(STAGES, self.started))
        self.first_frame: float | None = None

    def run(self) -> PipelineResult:
        """Start the capture (an opened one) and run until the source ends, a limit is reached, or a
        sink or a signal ends the run (`control`)."""
        wait_from = time.monotonic()
        self.capture.start()  # after `started`: the rate's start-of-run span begins no later than reading
        while not self.control.stopping and not self.limit_reached():
            self.log_events()
            frame = self.capture.get(timeout=0.1)
            if frame is None:
                self.no_frame()
                continue
            got = time.monotonic()
            self.first_frame = self.first_frame or got
            self.process(self.classify(frame, (got - wait_from) * 1e3), got)
            wait_from = time.monotonic()
        self.log_events()  # what happened while the loop was ending (a lost source)
        self.result.end_reason = self.control.reason or "stopped"
        return self.result

    def process(self, result: FrameResult, got: float) -> None:
        """Count the frame, draw it if a sink needs pixels, write it to every sink, time it all."""
        self.count(result)
        result.live = self.live(got)
        wanted = [sink.needs_image() for sink in self.sinks]  # each sink asked once per frame
        t0 = time.monotonic()
        image = render(result, self.options) if any(wanted) else None
        t1 = time.monotonic()
        result.stages_ms["overlay"] = (t1 - t0) * 1e3
        for sink in self.sinks:
            sink.write(result, image)
            result.stages_ms["output"] = (time.monotonic() - t1) * 1e3
        done = time.monotonic()
        self.result.numbers.add(result.stages_ms, result.age_ms, (done - got) * 1e3, done)

    def count(self, result: FrameResult) -> None:
        if result.valid:
            self.result.classified += 1
            return
        if not self.result.invalid:
            log.warning("frame %d: %s", result.index, INVALID_OUTPUT)
            self.on_event({"event": "invalid_output", "time": time.time(),
                           "detail": f"frame {result.index}: {INVALID_OUTPUT}"})
        self.result.invalid += 1

    def live(self, now: float) -> dict:
        """The live figures of /stats.json, as of the frames done before this one."""
        counters = self.capture.counters
        return {**self.result.numbers.live(now), "classified": self.result.classified,
                "invalid": self.result.invalid, "dropped": counters.dropped, "reconnects": counters.reconnects,
                "uptime_s": now - self.started}

    def limit_reached(self) -> bool:
        options = self.options
        if options.max_frames is not None and self.result.numbers.frames >= options.max_frames:
            self.control.end("max frames")
        elif (options.duration is not None and self.first_frame is not None
              and time.monotonic() - self.first_frame >= options.duration):
            self.control.end("duration")
        return self.control.stopping

    def no_frame(self) -> None:
        if self.capture.finished:
            error = self.capture.error
            self.control.end(f"source lost: {error}" if error else "end of source")
            return
        for sink in self.sinks:
            sink.idle()

    def log_events(self) -> None:
        for event in self.capture.drain_events():
            self.on_event(event)
