"""The openvino backend on tiny real ONNX models: same logits as onnxruntime, the card, bad files."""

from __future__ import annotations

import numpy as np
import pytest

import deploy
from deploy.card import write_sidecar
from deploy.errors import EdgevisionError
from tests.runtime.onnx_models import make_onnx, reference_logits, tiny_card

pytest.importorskip("onnx")
ov = pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install edgevision[openvino])")


def batch(n: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 3, 32, 32)).astype(np.float32)


def test_fp32_onnx_gives_onnxruntime_logits(tmp_path):
    path = make_onnx(tmp_path / "tiny.onnx", card=tiny_card())
    x = batch(3)
    classifier = deploy.load(path, backend="openvino")
    assert classifier.info["input_shape"] == [1, 3, 32, 32]  # the dynamic batch fixed to 1, looped over
    by_openvino = classifier.run(x)
    by_onnxruntime = deploy.load(path, backend="onnxruntime").run(x)
    np.testing.assert_allclose(by_openvino, by_onnxruntime, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(by_openvino, reference_logits(x), rtol=1e-4, atol=1e-4)


def test_qdq_int8_onnx_runs_close_to_onnxruntime(tmp_path):
    quantization = pytest.importorskip("onnxruntime.quantization")
    source = make_onnx(tmp_path / "tiny.onnx", card=tiny_card(), batch=1)
    target = tmp_path / "tiny.int8.onnx"
    calibration = [{"input": batch(1, seed)} for seed in range(16)]

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self):
            return next(self.items, None)

    quantization.quantize_static(str(source), str(target), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 activation_type=quantization.QuantType.QUInt8,
                                 weight_type=quantization.QuantType.QInt8)
    by_openvino = deploy.load(target, backend="openvino")
    by_onnxruntime = deploy.load(target, backend="onnxruntime")
    for seed in range(100, 104):
        x = batch(1, seed)
        a, b = by_openvino.backend.run(x), by_onnxruntime.backend.run(x)
        scale = np.abs(b).max()
        assert np.abs(a - b).max() <= 0.05 * scale, (a, b)
        assert np.abs(a - reference_logits(x)).max() <= 0.1 * scale  # int8, yet the same network


def test_card_from_onnx_metadata_and_from_a_converted_ir(tmp_path):
    card = tiny_card(classes=4)
    path = make_onnx(tmp_path / "tiny.onnx", classes=4, card=card)
    assert deploy.load(path, backend="openvino").card == card
    xml = tmp_path / "tiny.xml"
    ov.save_model(ov.Core().read_model(str(path)), str(xml))
    classifier = deploy.load(xml)  # the .xml suffix picks openvino
    assert classifier.backend.name == "openvino"
    assert classifier.card == card
    assert classifier.predict(np.full((40, 40, 3), 90, np.uint8), top_k=2).top[0][0] in card.class_names


def test_ir_without_card_reads_its_sidecar(tmp_path):
    path = make_onnx(tmp_path / "bare.onnx")
    xml = tmp_path / "bare.xml"
    ov.save_model(ov.Core().read_model(str(path)), str(xml))
    with pytest.raises(EdgevisionError, match="no model card"):
        deploy.load(xml)
    card = tiny_card().evolve(artifact_format="openvino")
    write_sidecar(xml, card)
    assert deploy.load(xml).card == card


def test_options_reach_openvino(tmp_path):
    path = make_onnx(tmp_path / "tiny.onnx", card=tiny_card())
    info = deploy.load(path, backend="openvino", threads=1).info
    assert (info["threads"], info["inference_precision"]) == (1, "f32")
    with pytest.raises(EdgevisionError, match="unknown inference_precision 'int4'"):
        deploy.load(path, backend="openvino", inference_precision="int4")


@pytest.mark.parametrize("name", ["junk.onnx", "junk.xml"])
def test_bad_file_is_a_one_line_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x08\x07this is not a model" * 20)
    with pytest.raises(EdgevisionError) as caught:
        deploy.load(path, backend="openvino", labels=None)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message


def test_not_a_classifier_refused(tmp_path):
    path = make_onnx(tmp_path / "gray5.onnx", channels=5)
    with pytest.raises(EdgevisionError, match="5 channels"):
        deploy.load(path, backend="openvino")
