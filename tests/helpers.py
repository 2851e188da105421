"""Helpers more than one test file uses (fixtures live in the conftest.py files). Libraries are imported
inside each helper, so a test file that needs none of them runs where they are not installed."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from camera_app.app import AppConfig

# What the libraries print when nothing holds it back: file:line tags of C++ logs, glog-style lines
# (torch's logger), Python warnings, ExecuTorch's cpuinfo complaints.
NATIVE = re.compile(r"\[\w+\.(cpp|cc|c|h):\d+\]|^[WIEF]\d{4} \d\d:\d\d:\d\d|\w+Warning: |KernelPreference|dont match")


def tiny_cnn(classes: int = 3, channels: int = 3):
    """A real two-convolution CNN (with BatchNorm) in eval mode, weights seeded."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, classes),
    ).eval()


def card(classes: int = 3, color: str = "RGB"):
    """The card of `tiny_cnn`: 32x32 RGB (from 36) or 28x28 grey."""
    from deploy.card import ModelCard
    from deploy.preprocess import Preprocessing

    spec = Preprocessing((32, 32), 36) if color == "RGB" else Preprocessing((28, 28), None, (0.5,), (0.25,), "GRAY")
    return ModelCard("tiny_cnn", [f"c{i}" for i in range(classes)], spec, metrics={"top1": 0.5})


def external_model(folder: Path, location: str, in_subgraph: bool = False) -> Path:
    """folder/model.onnx: y = x + w, with w's four floats stored in the external file `location`."""
    from onnx import TensorProto, helper

    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        w.external_data.add(key=key, value=value)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    if in_subgraph:  # hide the tensor in a Constant inside an If branch
        const = helper.make_node("Constant", [], ["w"], value=w)
        branch = helper.make_graph([const], "branch", [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, [4])])
        cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
        nodes = [
            helper.make_node("If", ["cond"], ["w2"], then_branch=branch, else_branch=branch),
            helper.make_node("Add", ["x", "w2"], ["y"]),
        ]
        graph = helper.make_graph(nodes, "g", [x], [y], [cond])
    else:
        graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def write_video(path: Path, frames: int, fourcc: str = "MJPG", fps: float = 30.0) -> Path:
    """An OpenCV video of `frames` stamped frames (each carries its number, `mjpeg_server.read_stamp`)."""
    import cv2

    from tests.camera.mjpeg_server import stamped_frame

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (160, 120))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for number in range(frames):
        writer.write(stamped_frame(number))
    writer.release()
    return path


class SlowClassifier:
    """A real `deploy.Classifier` that takes at least `delay_s` per call (a slower device)."""

    def __init__(self, classifier, delay_s: float) -> None:
        self.classifier = classifier
        self.delay_s = delay_s
        self.card = classifier.card
        self.info = classifier.info

    def predict(self, image: np.ndarray, top_k: int = 5):
        start = time.monotonic()
        prediction = self.classifier.predict(image, top_k=top_k)
        time.sleep(max(0.0, self.delay_s - (time.monotonic() - start)))
        prediction.timings_ms["inference"] = (time.monotonic() - start) * 1e3 - prediction.timings_ms["preprocess"]
        return prediction


class Background:
    """run_app in a thread, with a stop switch and a bounded join."""

    def __init__(self, config: AppConfig, classifier) -> None:
        self.stop = threading.Event()
        self.summary: dict | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(config, classifier), daemon=True)
        self.thread.start()

    def _run(self, config: AppConfig, classifier) -> None:
        from camera_app.app import run_app

        try:
            self.summary = run_app(config, classifier=classifier, stop=self.stop)
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def join(self, timeout: float) -> dict:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the app did not end within {timeout} s"
        if self.error:
            raise self.error
        return self.summary


def records(path: Path) -> list[dict]:
    """The JSON lines of a camera log written so far (a line still being written is left out)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for(condition, timeout: float) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False): a stuck run fails a
    test instead of hanging it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def serving(config: AppConfig) -> tuple[Background, str]:
    """run_app with `config` (which has `serve`) in the background, once /stats.json answers: the app
    and its base URL."""
    import urllib.request

    app = Background(config, None)
    base = f"http://127.0.0.1:{config.serve}/"

    def up() -> bool:
        try:
            return urllib.request.urlopen(base + "stats.json", timeout=1).status == 200
        except OSError:
            return False

    assert wait_for(up, 10), "the server did not come up"
    return app, base


class Records(logging.Handler):
    """The records of one logger, whatever an earlier in-process command did to propagation (which
    pytest's caplog, listening on the root logger, depends on differently across pytest versions)."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


MD_ESCAPED = re.compile(r"\\([\\|`<>*\[\]_])")


def md_unescape(text: str) -> str:
    """Markdown text as `benchmarks.table.md_cell` escaped it, its backslash escapes undone."""
    return MD_ESCAPED.sub(r"\1", text)


def md_cells(line: str) -> list[str]:
    """The cells of one table row written by `benchmarks.table`: every `|` inside a cell is
    escaped, so the row splits at its bare ` | `."""
    return [md_unescape(cell) for cell in line.strip()[1:-1].strip().split(" | ")]
