"""A model whose logits are huge, overflow to infinity or are NaN: real ONNX models, every path.

Large finite logits still give probabilities (the softmax subtracts the max, in float64); NaN or
infinite logits mark the prediction invalid: `edgevision predict` says so in one line per image
and exits 2, and the camera app counts the frames as invalid, logs one warning event, draws no label
and writes only finite JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import camera_app
import deploy
from deploy.errors import EdgevisionError

pytest.importorskip("onnx", reason="the test models are built with onnx (the export extra)")

REPO = Path(__file__).resolve().parents[2]


def scaled_model(path: Path, kind: str) -> Path:
    """input -> global average pool -> a 3x3 matrix -> logits, then: "large" times 1e4 (finite, but
    exp() of it overflows), "overflow" times 1e38 twice (+-inf in float32), "nan" (l - l) / 0."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from deploy.card import CARD_KEY
    from tests.runtime.onnx_models import tiny_card

    constants = {
        "w": np.array([[1.0, -0.5, 0.2], [0.3, 1.0, -0.7], [-0.4, 0.6, 1.0]], np.float32),
        "big": np.array(1e4 if kind == "large" else 1e38, np.float32),
        "zero": np.zeros(3, np.float32),
    }
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["l"]),
    ]
    if kind == "large":
        nodes.append(helper.make_node("Mul", ["l", "big"], ["logits"]))
    elif kind == "overflow":
        nodes += [helper.make_node("Mul", ["l", "big"], ["l2"]), helper.make_node("Mul", ["l2", "big"], ["logits"])]
    else:
        nodes += [helper.make_node("Sub", ["l", "l"], ["z"]), helper.make_node("Div", ["z", "zero"], ["logits"])]
    graph = helper.make_graph(
        nodes, kind,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    model.metadata_props.add(key=CARD_KEY, value=tiny_card(classes=3).to_json())
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def photo(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as a browser's JSON.parse does."""
    def refuse(constant: str):
        raise AssertionError(f"non-finite number in JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("nonfinite")
    return {kind: scaled_model(folder / f"{kind}.onnx", kind) for kind in ("large", "overflow", "nan")}


@pytest.mark.filterwarnings("ignore:.*unverified")
def test_large_logits_still_give_probabilities(models):
    classifier = deploy.load(models["large"])
    logits = classifier.run(np.stack([np.ones((3, 32, 32), np.float32)]))
    assert np.isfinite(logits).all() and np.abs(logits).max() > 1e3  # exp() of these overflows
    prediction = classifier.predict(photo(), top_k=3)
    assert prediction.valid and np.isfinite(prediction.probabilities).all()
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert prediction.score == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore:.*unverified")
@pytest.mark.parametrize("kind", ["overflow", "nan"])
def test_nonfinite_logits_make_the_prediction_invalid(models, kind):
    classifier = deploy.load(models[kind])
    assert not np.isfinite(classifier.run(np.stack([np.ones((3, 32, 32), np.float32)]))).all()
    prediction = classifier.predict(photo(), top_k=2)
    assert not prediction.valid and prediction.top == []
    assert np.isnan(prediction.probabilities).all()
    with pytest.raises(EdgevisionError, match="not finite"):
        _ = prediction.label


@pytest.mark.parametrize("kind", ["overflow", "nan"])
@pytest.mark.parametrize("as_json", [False, True])
def test_predict_command_says_so_in_one_line_per_image(models, tmp_path, kind, as_json):
    images = []
    for seed in range(2):
        images.append(tmp_path / f"{seed}.png")
        cv2.imwrite(str(images[-1]), photo(seed))
    done = subprocess.run(
        [sys.executable, "-m", "edgevision", "predict", "--model", str(models[kind]), *(["--json"] if as_json else []),
         *map(str, images)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [f"edgevision predict: error: {image}: the model's output is not finite (NaN or inf logits): "
                      "no prediction" for image in images]
    assert "nan" not in done.stdout.lower()


@pytest.mark.filterwarnings("ignore:.*unverified")
@pytest.mark.parametrize("kind", ["overflow", "nan"])
def test_camera_counts_invalid_frames_and_writes_finite_json(models, tmp_path, kind):
    from tests.helpers import write_video

    video = write_video(tmp_path / "clip.avi", 12, "MJPG")
    summary = camera_app.run(models[kind], video, log=str(tmp_path / "log.jsonl"), report=str(tmp_path / "report.json"),
                             record=str(tmp_path / "out.avi"), threshold=0.5)
    assert summary["frames"]["invalid"] == 12 and summary["frames"]["classified"] == 0
    records = [strict_json(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    events = [r for r in records if "event" in r]
    frames = [r for r in records if "frame" in r]
    assert [e["event"] for e in events] == ["invalid_output"]
    assert len(frames) == 12 and all(not f["valid"] and f["top_k"] == [] and not f["uncertain"] for f in frames)
    strict_json((tmp_path / "report.json").read_text())
    recorded = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(recorded.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
