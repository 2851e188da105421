"""The window sink's keys (q/Esc quit, space pause, s snapshot) with a scripted stand-in for the
OpenCV window (a real one needs a display), and the order and timing the loop gives sinks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from camera_app.capture import Capture
from camera_app.config import PipelineOptions
from camera_app.display import KEY_PAUSE, KEY_QUIT, KEY_SNAPSHOT
from camera_app.pipeline import FrameClassifier, Pipeline, PipelineResult
from camera_app.results import FrameResult, RunControl
from camera_app.sinks import WindowSink
from camera_app.sources import SourceOptions, open_source, parse_source


class ScriptedWindow:
    """Answers `show` with the next scripted key (-1 when the script is done)."""

    def __init__(self, keys: list[int]) -> None:
        self.keys = list(keys)
        self.shown = 0

    def show(self, image: np.ndarray) -> int:
        self.shown += 1
        return self.keys.pop(0) if self.keys else -1

    def close(self) -> None:
        pass


def result(index: int) -> FrameResult:
    image = np.full((40, 60, 3), index, np.uint8)
    return FrameResult(index, 0.0, image, True, np.ones(2) / 2, [("a", 0.5)], False, {}, 0.0)


def test_snapshot_pause_and_quit(tmp_path):
    control = RunControl()
    window = ScriptedWindow([KEY_SNAPSHOT, KEY_PAUSE, -1, -1, KEY_PAUSE, -1, KEY_QUIT[1]])
    sink = WindowSink(window, control, str(tmp_path))
    sink.write(result(7), np.full((40, 60, 3), 200, np.uint8))
    assert cv2.imread(str(tmp_path / "snapshot_000007.png"))[0, 0, 0] == 200  # the annotated frame
    sink.write(result(8), np.zeros((40, 60, 3), np.uint8))  # space: shown until space again
    assert window.shown == 5 and not control.stopping
    sink.write(result(9), np.zeros((40, 60, 3), np.uint8))
    sink.idle()  # Esc while no frame comes
    assert control.stopping and control.reason == "quit"


def test_quit_while_paused(tmp_path):
    control = RunControl()
    sink = WindowSink(ScriptedWindow([KEY_PAUSE, -1, KEY_QUIT[0]]), control, str(tmp_path))
    sink.write(result(1), np.zeros((40, 60, 3), np.uint8))
    assert control.reason == "quit"


class Recording:
    """A sink that notes what it was given; `pixels` says whether it asks for the annotated frame."""

    def __init__(self, pixels: bool) -> None:
        self.pixels = pixels
        self.seen: list[tuple[int, bool, float]] = []

    def needs_image(self) -> bool:
        return self.pixels

    def write(self, result: FrameResult, image) -> None:
        self.seen.append((result.index, image is not None, result.stages_ms["output"]))

    def idle(self) -> None:
        pass

    def close(self) -> None:
        pass


def run_with_sinks(tiny_model, video, sinks: list) -> PipelineResult:
    import deploy

    capture = Capture(lambda: open_source(parse_source(str(video)), SourceOptions()), live=False)
    capture.open()
    classifier = deploy.load(tiny_model)
    frames = FrameClassifier(lambda image: classifier.predict(image, top_k=2), classifier.card.class_names,
                             PipelineOptions(max_frames=10))
    try:
        return Pipeline(capture, frames, sinks, RunControl(), lambda event: None).run()
    finally:
        capture.close()


@pytest.mark.filterwarnings("ignore:.*unverified")
def test_every_sink_gets_every_frame_and_pixels_only_when_asked(tiny_model, mjpg_video):
    plain, drawing = Recording(False), Recording(True)
    run = run_with_sinks(tiny_model, mjpg_video, [plain, drawing])
    assert run.classified == 10 and run.end_reason == "max frames"
    assert [index for index, _, _ in plain.seen] == list(range(10)) == [index for index, _, _ in drawing.seen]
    assert all(has_image for _, has_image, _ in plain.seen + drawing.seen)  # one asked: all see the frame
    assert all(output == 0.0 for _, _, output in plain.seen)  # the first sink: nothing written before it
    assert run.numbers.summary()["latency_ms"]["overlay"]["min"] > 0

    alone = Recording(False)
    run = run_with_sinks(tiny_model, mjpg_video, [alone])
    assert [has_image for _, has_image, _ in alone.seen] == [False] * 10  # nobody asked: nothing drawn
