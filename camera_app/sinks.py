"""The outputs as sinks (`camera_app.results.Sink`): a window, a recording, the browser view, the log."""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from camera_app.display import KEY_PAUSE, KEY_QUIT, KEY_SNAPSHOT, Window, save_snapshot
from camera_app.jsonsafe import finite
from camera_app.outputs import FrameLog, Recorder
from camera_app.results import BaseSink, FrameResult, RunControl
from camera_app.serve import FrameServer
from camera_app.uncertain import UncertainSaver
from camera_app.watch import ConfidenceWatch

log = logging.getLogger("edgevision.camera")

JPEG_QUALITY = 80


class WindowSink(BaseSink):
    """An OpenCV window with keys: q/Esc quit, space pause (until space again), s snapshot PNG."""

    def __init__(self, window: Window, control: RunControl, snapshot_dir: str) -> None:
        self.window = window
        self.control = control
        self.snapshot_dir = snapshot_dir
        self.last: np.ndarray | None = None
        self.index = 0

    def needs_image(self) -> bool:
        return True

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self.last, self.index = image, result.index
        self.key(self.window.show(image))

    def idle(self) -> None:
        if self.last is not None:
            self.key(self.window.show(self.last))

    def key(self, key: int) -> None:
        if key in KEY_QUIT:
            self.control.end("quit")
        elif key == KEY_SNAPSHOT:
            save_snapshot(self.last, self.snapshot_dir, self.index)
        elif key == KEY_PAUSE:
            while not self.control.stopping:
                key = self.window.show(self.last)
                if key in KEY_QUIT:
                    self.control.end("quit")
                elif key == KEY_PAUSE:
                    return

    def close(self) -> None:
        self.window.close()


class RecordSink(BaseSink):
    """The annotated frames as a video file."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def needs_image(self) -> bool:
        return True

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self.recorder.write(image)

    def close(self) -> None:
        self.recorder.close()


class ServeSink(BaseSink):
    """The browser view: a JPEG only when the server wants one, the live figures on every frame."""

    def __init__(self, server: FrameServer, source_fps: float | None) -> None:
        self.server = server
        self.source_fps = source_fps
        self.wanted = False

    def needs_image(self) -> bool:
        self.wanted = self.server.wants_frame(self.source_fps)
        return self.wanted

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if self.wanted and image is not None:
            self.server.publish(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes())
        self.server.update_stats(finite({"frame": result.index, "top_k": result.top_records(),
                                         "uncertain": result.uncertain, **result.live}))

    def close(self) -> None:
        self.server.close()


class LogSink(BaseSink):
    """One JSON line per processed frame (put it last: its "output" time covers the sinks before it)."""

    def __init__(self, frame_log: FrameLog) -> None:
        self.frame_log = frame_log

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self.frame_log.write({
            "frame": result.index, "time": round(result.wall, 6), "valid": result.valid,
            "top_k": result.top_records(), "uncertain": result.uncertain, "fps": round(result.live["pipeline_fps"], 3),
            "latency_ms": {name: round(value, 3) for name, value in result.stages_ms.items()},
            "age_ms": round(result.age_ms, 3),
        })

    def close(self) -> None:
        self.frame_log.close()


class WatchSink(BaseSink):
    """The confidence watch: fed each valid frame's probabilities; its figures go to `result.live`
    ("watch", for the browser view and the log after it), its events (drift alerts) to the log."""

    def __init__(self, watch: ConfidenceWatch, on_event: Callable[[dict], None]) -> None:
        self.watch = watch
        self.on_event = on_event

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if result.valid:
            for event in self.watch.add(result.probabilities):
                log.warning("%s: drift score (PSI) %.3f over the last %d frames (alert at %g)",
                            event["event"], event["psi"], event["window"], event["alert"])
                self.on_event(event)
        result.live["watch"] = self.watch.snapshot()


class SaverSink(BaseSink):
    """Offers every valid frame, as captured, to the saver of uncertain frames (it never blocks)."""

    def __init__(self, saver: UncertainSaver) -> None:
        self.saver = saver

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if result.valid:
            self.saver.offer(result.index, result.image, result.top, result.probabilities)

    def close(self) -> None:
        self.saver.close()
