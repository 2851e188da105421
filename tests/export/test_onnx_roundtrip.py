"""Export a tiny CNN to ONNX, load it with the runtime, compare with torch; the card survives."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import deploy
from deploy.card import CARD_KEY, ModelCard
from deploy.errors import EdgevisionError
from deploy.export.pipeline import ExportSpec, export_model
from deploy.export.torch2onnx import torch2onnx
from deploy.export.verify import compare, val_images
from tests.helpers import card, tiny_cnn


def test_roundtrip_matches_torch_with_dynamic_batch(tmp_path):
    model = tiny_cnn()
    path = torch2onnx(model, card(), tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version >= 18
    stored = {p.key: p.value for p in proto.metadata_props}
    assert ModelCard.from_json(stored[CARD_KEY]).class_names == ["c0", "c1", "c2"]
    clf = deploy.load(path)
    assert clf.card.metrics == {"top1": 0.5} and clf.info["input_shape"][0] is None
    batch = np.random.default_rng(0).normal(size=(5, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(clf.run(batch), expected, atol=1e-4)
    np.testing.assert_allclose(clf.run(batch[:1]), expected[:1], atol=1e-4)


def test_gray_model_and_simplify(tmp_path):
    model = tiny_cnn(classes=10, channels=1)
    path = torch2onnx(model, card(10, "GRAY"), tmp_path / "g.onnx", simplify=True, dynamic_batch=False)
    clf = deploy.load(path)
    assert clf.info["input_shape"] == [1, 1, 28, 28]
    image = np.random.default_rng(1).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    assert len(clf.predict_batch([image, image])) == 2


def test_export_model_records_parity_in_the_file(tmp_path, shared_data):
    model = tiny_cnn(classes=2)
    c = card(2)
    result = export_model(model, c, "onnx", tmp_path / "m.onnx",
                          ExportSpec(data=f"folder:{shared_data / 'cats_vs_dogs'}", verify_images=6),
                          source_sha256="ab" * 32)
    parity = result.card.parity
    assert parity.images == 6 and parity.source.endswith("cats_vs_dogs/val")
    assert parity.top1_agreement == 1.0 and parity.max_abs_logit_diff <= 1e-3 and parity.passed
    on_disk = deploy.load(result.path).card
    assert on_disk.parity == parity and on_disk.source_sha256 == "ab" * 32
    assert on_disk.artifact_format == "onnx" and on_disk.precision == "fp32"


def test_parity_compare_can_fail():
    reference = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert compare(reference, reference + 1e-5, "fp32").passed
    drifted = compare(reference, reference + 2e-3, "fp32")
    assert not drifted.passed and drifted.top1_agreement == 1.0
    flipped = compare(reference, reference[:, ::-1], "fp16")
    assert not flipped.passed and flipped.top1_agreement == 0.0


def test_data_spec_errors(tmp_path):
    with pytest.raises(EdgevisionError, match="data folder not found"):
        val_images(f"folder:{tmp_path / 'nope'}", 4)
    with pytest.raises(EdgevisionError, match="is not a class-folder tree"):
        val_images(str(tmp_path), 4)
    with pytest.raises(EdgevisionError, match="unknown data spec 'mnist:whatever'"):
        val_images("mnist:whatever", 4)
