"""ExecuTorch round trip: torch -> .pte (XNNPACK) -> deploy.load -> same logits; bad .pte files."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("executorch")

import deploy
from deploy.card import ModelCard, read_sidecar
from deploy.errors import EdgevisionError
from deploy.export.torch2pte import torch2pte
from deploy.preprocess import Preprocessing


@pytest.fixture(scope="module")
def pte(tmp_path_factory):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3),
    ).eval()
    card = ModelCard("tiny", ["a", "b", "c"], Preprocessing((32, 32), 36), artifact_format="executorch")
    path = torch2pte(model, card, tmp_path_factory.mktemp("pte") / "m.pte")
    return model, path


@pytest.mark.slow
def test_pte_matches_torch_and_loops_batches(pte):
    model, path = pte
    assert read_sidecar(path).artifact_format == "executorch"
    clf = deploy.load(path)
    assert clf.info["max_batch"] == 1 and clf.info["input_shape"] == [1, 3, 32, 32]
    batch = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(clf.run(batch), expected, atol=1e-4)
    preds = clf.predict_batch([np.zeros((20, 30, 3), np.uint8)] * 2)
    assert preds[0].top == preds[1].top


@pytest.mark.slow
def test_corrupt_pte(pte, tmp_path):
    _, path = pte
    truncated = tmp_path / "t.pte"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(EdgevisionError, match="t.pte: truncated or corrupt ExecuTorch program"):
        deploy.load(truncated, labels=None)
