"""UncertainSaver: real frames in, real JPEGs and JSON lines out; rate, cap, drops, hostile labels, write errors."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from camera_app.uncertain import JSONL, SaveOptions, UncertainSaver, safe_folder_name
from deploy.errors import EdgevisionError
from tests.camera.mjpeg_server import read_stamp, stamped_frame
from tests.helpers import Records

UNSURE = np.array([0.4, 0.35, 0.25])
SURE = np.array([0.9, 0.06, 0.04])
LABELS = ["cats", "dogs", "birds"]


def top(probabilities: np.ndarray, labels=LABELS) -> list[tuple[str, float]]:
    return [(labels[i], float(probabilities[i])) for i in np.argsort(-probabilities)]


class Clock:
    """Seconds set by the test, so the rate limit is checked by order, not by wall time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / JSONL).read_text().splitlines()]


def test_saves_uncertain_frames_as_jpeg_with_a_jsonl_line_each(tmp_path):
    saver = UncertainSaver(SaveOptions(str(tmp_path / "unsure"), threshold=0.5, every=0))
    queued = [saver.offer(n, stamped_frame(n), top(p), p) for n, p in enumerate([UNSURE, SURE, UNSURE[[1, 0, 2]]])]
    assert saver.close()
    assert queued == [True, False, True]
    assert saver.counters == {"uncertain": 2, "saved": 2, "dropped": 0, "skipped_rate": 0, "skipped_cap": 0}
    records = lines(tmp_path / "unsure")
    assert [r["frame"] for r in records] == [0, 2] and [r["label"] for r in records] == ["cats", "dogs"]
    assert records[0]["top_k"][0] == {"label": "cats", "prob": 0.4}
    for record in records:
        path = tmp_path / "unsure" / record["file"]
        assert path.parent.name == record["label"] and path.suffix == ".jpg"
        image = cv2.imread(str(path))
        assert image.shape == (120, 160, 3) and read_stamp(image) == record["frame"]


def test_a_small_margin_is_uncertain_too(tmp_path):
    saver = UncertainSaver(SaveOptions(str(tmp_path), threshold=0.5, margin=0.2, every=0))
    close_call = np.array([0.55, 0.45])
    assert saver.offer(0, stamped_frame(0), top(close_call, ["a", "b"]), close_call)
    assert not saver.offer(1, stamped_frame(1), top(np.array([0.7, 0.3]), ["a", "b"]), np.array([0.7, 0.3]))
    assert saver.close() and saver.counters["saved"] == 1


def test_rate_limit_and_cap(tmp_path):
    clock = Clock()
    saver = UncertainSaver(SaveOptions(str(tmp_path), threshold=0.5, every=1.0, max_saved=3), clock=clock)
    queued = []
    for n, seconds in enumerate([0.0, 0.5, 1.0, 1.2, 2.5, 3.6, 5.0]):
        clock.now = seconds
        queued.append(saver.offer(n, stamped_frame(n), top(UNSURE), UNSURE))
    assert saver.close()
    assert queued == [True, False, True, False, True, False, False]
    assert saver.counters == {"uncertain": 7, "saved": 3, "dropped": 0, "skipped_rate": 2, "skipped_cap": 2}
    assert [r["frame"] for r in lines(tmp_path)] == [0, 2, 4]


class StalledSaver(UncertainSaver):
    """A saver whose writer waits for the test before each frame: a disk that does not keep up."""

    def __init__(self, *args, **kwargs) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        super().__init__(*args, **kwargs)

    def _write(self, *item) -> None:
        self.entered.set()
        self.release.wait()
        super()._write(*item)


def test_a_writer_that_does_not_keep_up_drops_frames_instead_of_waiting(tmp_path):
    saver = StalledSaver(SaveOptions(str(tmp_path), threshold=0.5, every=0))
    assert saver.offer(0, stamped_frame(0), top(UNSURE), UNSURE)
    assert saver.entered.wait(10)  # the writer holds frame 0
    queued = [saver.offer(n, stamped_frame(n), top(UNSURE), UNSURE) for n in range(1, 10)]
    assert queued == [True] * 4 + [False] * 5  # four wait in the queue, the rest are dropped at once
    assert saver.counters["dropped"] == 5
    saver.release.set()
    assert saver.close()
    assert saver.counters["saved"] == 5 and [r["frame"] for r in lines(tmp_path)] == [0, 1, 2, 3, 4]


def test_a_write_error_is_one_warning_and_stops_saving(tmp_path):
    root = tmp_path / "unsure"
    saver = UncertainSaver(SaveOptions(str(root), threshold=0.5, every=0))
    (root / JSONL).unlink()
    root.rmdir()
    root.write_bytes(b"not a folder any more")  # every later write fails, whoever the user is
    logger, collected = logging.getLogger("edgevision.camera"), Records(logging.WARNING)
    logger.addHandler(collected)
    try:
        assert saver.offer(0, stamped_frame(0), top(UNSURE), UNSURE)
        saver.thread.join(0.01)
        while saver.thread.is_alive() and not saver.failed:
            saver.thread.join(0.05)
        assert not saver.offer(1, stamped_frame(1), top(UNSURE), UNSURE)
        assert saver.close()
    finally:
        logger.removeHandler(collected)
    warnings = [r.getMessage() for r in collected.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot write" in warnings[0] and "saving stopped" in warnings[0]
    assert saver.counters["saved"] == 0


HOSTILE = ["../../etc", "a/b", "a_b", "..", ".", "", "CON", "nul.txt", "x\x00y", JSONL, "é/ü", "a" * 300,
           "\\windows\\system32", " spaced ", "com1", "cats", "ﬁsh", "😀" * 80]


def test_hostile_labels_become_safe_distinct_folder_names():
    names = [safe_folder_name(label) for label in HOSTILE]
    assert len(set(names)) == len(HOSTILE)
    for name in names:
        assert name not in ("", ".", "..") and not {"/", "\\", "\x00"} & set(name)
        assert len(name.encode()) <= 255 and name == name.strip(" .")
        assert name.split(".")[0].lower() not in ("con", "nul", "com1") and name != JSONL
    assert safe_folder_name("cats") == "cats" and safe_folder_name("golden retriever") == "golden retriever"


def test_hostile_labels_are_saved_inside_the_folder(tmp_path):
    root = tmp_path / "unsure"
    saver = UncertainSaver(SaveOptions(str(root), threshold=0.5, every=0))
    for n, label in enumerate(HOSTILE):
        probabilities = np.array([0.3, 0.3, 0.4])
        assert saver.offer(n, stamped_frame(n), [(label, 0.4), ("other", 0.3)], probabilities)
        while saver.queue.qsize() >= 3:  # let the writer keep up: this test is about names, not drops
            saver.thread.join(0.01)
    assert saver.close()
    records = lines(root)
    assert [r["label"] for r in records] == HOSTILE and saver.counters["saved"] == len(HOSTILE)
    for record in records:
        path = (root / record["file"]).resolve()
        assert path.is_relative_to(root.resolve()) and path.parent.parent == root.resolve()
        assert read_stamp(cv2.imread(str(path))) == record["frame"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unsure"]


@pytest.mark.parametrize(("options", "says"), [
    ({"threshold": 1.5}, "--threshold must be a number between 0 and 1"),
    ({"threshold": 0.0, "margin": 0.0}, "--save-uncertain needs --threshold or --margin"),
    ({"every": float("nan")}, "--save-every must be a finite number of seconds >= 0"),
    ({"every": -1}, "--save-every must be"),
    ({"max_saved": 0}, "--save-max must be an integer >= 1"),
    ({"max_saved": 2.5}, "--save-max must be an integer"),
])
def test_options_out_of_range_are_one_line(tmp_path, options, says):
    with pytest.raises(EdgevisionError, match=says):
        SaveOptions(str(tmp_path), **{"threshold": 0.5, **options})


def test_a_folder_that_cannot_be_made_is_one_line_before_the_run(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgevisionError, match="--save-uncertain .*file/unsure: cannot write there"):
        UncertainSaver(SaveOptions(str(tmp_path / "file" / "unsure"), threshold=0.5))
