"""MobileNetV2 (ImageNet weights from ../shared) exported to ONNX and .pte, parity on cats-vs-dogs val."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
pytest.importorskip("onnx")

from deploy.card import ModelCard
from deploy.export.pipeline import ExportSpec, export_model
from deploy.preprocess import Preprocessing


@pytest.fixture(scope="module")
def mobilenet():
    from tests.conftest import shared_root

    weights = shared_root().parent / "weights" / "mobilenet_v2_imagenet.pth"
    if not weights.is_file():
        pytest.skip(f"ImageNet MobileNetV2 weights not found at {weights}")
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(weights, weights_only=True))
    names = (weights.parent / "imagenet_classes.txt").read_text().splitlines()
    return model.eval(), ModelCard("mobilenet_v2", names, Preprocessing((224, 224), 256))


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("executorch", ".pte")])
def test_mobilenet_parity(tmp_path, mobilenet, shared_data, fmt, suffix):
    if fmt == "executorch":
        pytest.importorskip("executorch")
    model, card = mobilenet
    result = export_model(model, card, fmt, tmp_path / f"m{suffix}",
                          ExportSpec(data=f"folder:{shared_data / 'cats_vs_dogs'}", verify_images=8))
    parity = result.card.parity
    assert parity.passed, parity
    assert parity.top1_agreement == 1.0 and parity.max_abs_logit_diff <= 1e-3
