"""The card's `confidence`: the artifact's own top-1 probabilities on the images export and quantize score."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

import cv2

import deploy
from deploy.card import ModelCard
from deploy.confidence import ConfidenceCounter, split_label, top1_probabilities
from deploy.export.pipeline import ExportSpec, export_checkpoint
from quantize.guard import Attempt, Guard
from quantize.quantize_pipeline import quantized_card
from tests.digits_cnn import OPTIONS, SPEC

PER_CLASS = 4


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    """The digits `cnn`, untrained (the record is about counting, not about a good model: training takes 30 s)."""
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    torch.manual_seed(0)
    card = ModelCard("cnn", [str(d) for d in range(10)], SPEC, model_options=OPTIONS, dataset="digits")
    model = build_model("cnn", 10, 1, (8, 8), **OPTIONS)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "digits.pt", card, model.eval().state_dict())


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    """val/<digit>/*.png: the last PER_CLASS images of each digit as 8x8 grey PNGs."""
    root = tmp_path_factory.mktemp("digits_tree")
    digits = sklearn_datasets.load_digits()
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    for label in range(10):
        folder = root / "val" / str(label)
        folder.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(digits.target == label)[-PER_CLASS:]):
            cv2.imwrite(str(folder / f"{i}.png"), images[index])
    return root


def test_counter_bins_and_threshold_shares():
    counter = ConfidenceCounter(bins=4)
    probabilities = np.array([[0.3, 0.3, 0.4], [0.15, 0.15, 0.7], [0.0, 0.0, 1.0], [0.025, 0.95, 0.025]])
    counter.add(np.log(probabilities + 1e-12))
    histogram = counter.histogram("val split of digits")
    assert histogram.edges == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert histogram.counts == [0, 1, 1, 2] and histogram.images == 4  # 1.0 falls in the last bin
    assert histogram.threshold_share == {"0.5": 0.25, "0.8": 0.5, "0.9": 0.5}
    np.testing.assert_allclose(top1_probabilities(np.log(probabilities + 1e-12)), [0.4, 0.7, 1.0, 0.95], atol=1e-6)
    assert ConfidenceCounter().histogram("val") is None  # nothing counted: no record


def test_split_label_names_a_folder_without_its_path():
    assert split_label("val", "digits") == "val split of digits"
    assert split_label("val", "folder:/home/someone/data/pets/") == "val split of folder:pets"
    assert split_label("test", "/srv/pets") == "test split of folder:pets"


def test_export_records_the_artifacts_confidence(digits_checkpoint, digits_folder, tmp_path):
    out = tmp_path / "digits.onnx"
    result = export_checkpoint(digits_checkpoint, "onnx", out,
                               ExportSpec(data=f"folder:{digits_folder}", verify_images=30))
    assert result.passed
    confidence = deploy.load(out).card.confidence  # read back from the ONNX metadata
    assert confidence is not None and confidence == result.card.confidence
    assert len(confidence.counts) == 20 and len(confidence.edges) == 21
    assert sum(confidence.counts) == confidence.images == result.card.parity.images == 30
    assert confidence.split == f"val split of folder:{digits_folder.name}"
    assert set(confidence.threshold_share) == {"0.5", "0.8", "0.9"}
    assert confidence.threshold_share["0.5"] <= confidence.threshold_share["0.8"] <= confidence.threshold_share["0.9"]


def test_export_on_generated_images_records_none(digits_checkpoint, tmp_path):
    result = export_checkpoint(digits_checkpoint, "onnx", tmp_path / "digits.onnx", ExportSpec(verify_images=4))
    assert result.card.parity.source == "generated" and result.card.confidence is None


def test_quantized_card_keeps_the_chosen_attempts_confidence():
    labels = np.array([0, 1, 0, 1])
    logits = np.array([[4.0, 0.0], [0.0, 4.0], [0.3, 0.0], [0.0, 0.1]])
    guard = Guard(logits, labels)
    chosen = guard.judge(Attempt("int8", "int8"), logits)
    card = ModelCard.from_dict({"architecture": "cnn", "class_names": ["a", "b"],
                                "preprocessing": {"input_size": [8, 8]}})
    confidence = quantized_card(card, guard, chosen, "onnx", "fp32 onnx", "val split of digits").confidence
    assert confidence.images == 4 and confidence.split == "val split of digits"
    assert confidence.counts[-1] == 2 and confidence.threshold_share["0.8"] == 0.5
    assert "confidence" not in chosen.to_dict()  # the report stays as it was
    assert ModelCard.from_json(card.evolve(confidence=confidence).to_json()).confidence == confidence


@pytest.mark.slow  # a quantize run: about 20 s on 2 shared cores
def test_quantize_records_the_artifacts_confidence(digits_checkpoint, tmp_path):
    from quantize.quantize_pipeline import QuantizeSpec, quantize_checkpoint

    out = tmp_path / "digits.fp16.onnx"
    result = quantize_checkpoint(digits_checkpoint, out, QuantizeSpec(target="onnx-fp16", calib_size=16), data="digits")
    confidence = deploy.load(out).card.confidence
    assert confidence == result.card.confidence and confidence.split == "val split of digits"
    assert sum(confidence.counts) == confidence.images == result.card.parity.images == result.report["eval_images"]
