"""The loop: take a frame, classify it, smooth, threshold, draw, show/record/serve/log; time every stage.

Capture -> Classify -> Overlay -> Render, as in jetson-inference's `imagenet.py`, with each stage
timed per frame and the frame's age (capture to result) kept, so pipeline speed and model speed are
reported apart. `classify` is any callable from a BGR frame to a `deploy.classifier.Prediction`.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from camera_app.capture import Capture
from camera_app.display import KEY_PAUSE, KEY_QUIT, KEY_SNAPSHOT, Window, save_snapshot
from camera_app.outputs import FrameLog, Recorder
from camera_app.overlay import OverlayView, draw_overlay
from camera_app.serve import FrameServer
from deploy.classifier import Prediction
from deploy.errors import EdgevisionError
from deploy.timing import LatencyStats

STAGES = ("capture_wait", "preprocess", "inference", "postprocess", "overlay", "output")
JPEG_QUALITY = 80


@dataclass
class PipelineOptions:
    """top_k: labels kept per frame; smooth: average probabilities over this many frames (1: off);
    threshold: below this best probability the frame is "uncertain"; max_frames / duration: stop
    after this many classified frames / seconds (None: until the source ends)."""

    top_k: int = 3
    smooth: int = 1
    threshold: float = 0.0
    max_frames: int | None = None
    duration: float | None = None
    caption: str = ""
    snapshot_dir: str = "."

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise EdgevisionError(f"--top-k must be >= 1, got {self.top_k}")
        if self.smooth < 1:
            raise EdgevisionError(f"--smooth must be >= 1 frame, got {self.smooth}")
        if not 0.0 <= self.threshold <= 1.0:
            raise EdgevisionError(f"--threshold must be between 0 and 1, got {self.threshold}")


@dataclass
class Sinks:
    """Where annotated frames and results go; each one optional."""

    window: Window | None = None
    recorder: Recorder | None = None
    server: FrameServer | None = None
    log: FrameLog | None = None


@dataclass
class PipelineResult:
    classified: int = 0
    seconds: float = 0.0
    end_reason: str = "stopped"
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in STAGES})
    age_ms: list[float] = field(default_factory=list)
    overhead_ms: list[float] = field(default_factory=list)


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


def stage_stats(values_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean/min/max in ms (deploy.timing.LatencyStats), {} when empty."""
    if not values_ms:
        return {}
    stats = LatencyStats.from_samples([v / 1000.0 for v in values_ms])
    return {"p50": stats.p50_ms, "p95": stats.p95_ms, "p99": stats.p99_ms, "mean": stats.mean_ms,
            "min": stats.min_ms, "max": stats.max_ms}


class Ema:
    """Exponential moving average for the numbers on screen (the report uses every sample)."""

    def __init__(self, weight: float = 0.1) -> None:
        self.weight = weight
        self.value: float | None = None

    def add(self, sample: float) -> float:
        self.value = sample if self.value is None else self.value + self.weight * (sample - self.value)
        return self.value


def run_pipeline(
    capture: Capture,
    classify: Callable[[np.ndarray], Prediction],
    labels: list[str],
    options: PipelineOptions,
    sinks: Sinks,
    stop: threading.Event,
) -> PipelineResult:
    """Run until the source ends, a limit is reached, `q`/Esc, or `stop` is set."""
    result = PipelineResult()
    smoother = Smoother(options.smooth)
    shown_ms = {name: Ema() for name in STAGES[1:]}
    fps_ema, model_fps_ema, age_ema = Ema(), Ema(), Ema()
    started: float | None = None
    last_done: float | None = None
    last_image: np.ndarray | None = None
    paused = False
    wait_from = time.monotonic()

    while not stop.is_set():
        if options.max_frames is not None and result.classified >= options.max_frames:
            result.end_reason = "max frames"
            break
        if options.duration is not None and started is not None and time.monotonic() - started >= options.duration:
            result.end_reason = "duration"
            break
        for event in capture.drain_events():
            if sinks.log:
                sinks.log.write(event)
        if paused:
            key = sinks.window.show(last_image)
            if key in KEY_QUIT:
                result.end_reason = "quit"
                break
            paused = key != KEY_PAUSE
            wait_from = time.monotonic()
            continue
        frame = capture.get(timeout=0.1)
        if frame is None:
            if capture.finished:
                result.end_reason = f"source lost: {capture.error}" if capture.error else "end of source"
                break
            if sinks.window is not None and last_image is not None and sinks.window.show(last_image) in KEY_QUIT:
                result.end_reason = "quit"
                break
            continue
        got = time.monotonic()
        started = got if started is None else started
        stages = {"capture_wait": (got - wait_from) * 1e3}

        prediction = classify(frame.image)
        t0 = time.monotonic()
        probabilities = smoother.add(prediction.probabilities)
        top = top_k(probabilities, labels, options.top_k) if options.smooth > 1 else prediction.top[: options.top_k]
        uncertain = top[0][1] < options.threshold
        t1 = time.monotonic()
        stages["preprocess"] = prediction.timings_ms["preprocess"]
        stages["inference"] = prediction.timings_ms["inference"]
        stages["postprocess"] = prediction.timings_ms["postprocess"] + (t1 - t0) * 1e3
        age_ms = (t1 - frame.captured) * 1e3

        annotated = None
        serving = sinks.server is not None and sinks.server.wants_frame(capture.source.fps)
        if sinks.window is not None or sinks.recorder is not None or serving:
            view = OverlayView(
                top, uncertain, fps_ema.value or 0.0, model_fps_ema.value or 0.0,
                {k: e.value for k, e in shown_ms.items() if e.value is not None}, age_ema.value or 0.0, options.caption,
            )
            annotated = draw_overlay(frame.image, view, options.threshold)
        t2 = time.monotonic()
        stages["overlay"] = (t2 - t1) * 1e3

        key = -1
        if annotated is not None:
            last_image = annotated
            if sinks.window is not None:
                key = sinks.window.show(annotated)
            if sinks.recorder is not None:
                sinks.recorder.write(annotated)
            if serving:
                sinks.server.publish(cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes())
        top_k_records = [{"label": label, "prob": round(prob, 6)} for label, prob in top]
        if sinks.server is not None:
            sinks.server.update_stats({
                "frame": frame.index, "top_k": top_k_records, "uncertain": uncertain,
                "pipeline_fps": fps_ema.value or 0.0, "model_fps": model_fps_ema.value or 0.0,
                "age_ms": age_ms, "latency_ms": {k: round(v, 3) for k, v in stages.items()},
                "classified": result.classified + 1, "dropped": capture.counters.dropped,
            })
        done = time.monotonic()
        stages["output"] = (done - t2) * 1e3
        if sinks.log is not None:
            sinks.log.write({
                "frame": frame.index, "time": round(frame.wall, 6), "top_k": top_k_records, "uncertain": uncertain,
                "latency_ms": {k: round(v, 3) for k, v in stages.items()}, "age_ms": round(age_ms, 3),
            })

        result.classified += 1
        for name, value in stages.items():
            result.stage_ms[name].append(value)
            if name in shown_ms:
                shown_ms[name].add(value)
        result.age_ms.append(age_ms)
        result.overhead_ms.append((done - got) * 1e3 - stages["preprocess"] - stages["inference"])
        age_ema.add(age_ms)
        model_fps_ema.add(1e3 / max(stages["inference"], 1e-6))
        if last_done is not None:
            fps_ema.add(1.0 / max(done - last_done, 1e-9))
        last_done = done
        wait_from = done

        if key in KEY_QUIT:
            result.end_reason = "quit"
            break
        if key == KEY_PAUSE:
            paused = True
        elif key == KEY_SNAPSHOT:
            save_snapshot(annotated, options.snapshot_dir, frame.index)
    for event in capture.drain_events():  # what happened while the loop was ending (a lost source)
        if sinks.log:
            sinks.log.write(event)
    result.seconds = (last_done - started) if started is not None and last_done is not None else 0.0
    return result
