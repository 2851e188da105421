"""`edgevision quantize --to pte-int8`: PT2E + XNNPACK int8 on a tiny digits CNN, and QAT."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("executorch")
pytest.importorskip("torchao")

from deploy.card import read_sidecar  # noqa: E402
from quantize.calibration import load_split  # noqa: E402
from quantize.cli import main  # noqa: E402
from train.checkpoint import load_model  # noqa: E402
from quantize.ptq_executorch import lower_to_pte, qat_pt2e  # noqa: E402
from quantize.scoring import artifact_logits  # noqa: E402
from tests.export.test_quantize_onnx import SPEC, digits_checkpoint  # noqa: E402, F401 (fixture)


@pytest.mark.slow
def test_pte_int8_keeps_accuracy(digits_checkpoint, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "digits.int8.pte"
    rc = main(["quantize", str(digits_checkpoint), "--data", "digits", "--to", "pte-int8", "-o", str(out),
               "--calib-size", "32", "--no-latency"])
    assert rc == 0, capsys.readouterr().err
    card = read_sidecar(out)
    assert card.precision == "int8" and card.artifact_format == "executorch"
    assert card.metrics["top1"] >= card.metrics["top1_fp32"] - 0.01
    images, labels, _ = load_split("digits", "val", SPEC)
    assert np.mean(artifact_logits(out, images).argmax(1) == labels) >= card.metrics["top1_fp32"] - 0.01


@pytest.mark.slow
def test_qat_converts_and_lowers(digits_checkpoint, tmp_path):  # noqa: F811
    model, card = load_model(digits_checkpoint)
    images, labels, _ = load_split("digits", "train", card.preprocessing, 128)
    quantized = qat_pt2e(model, images, labels, epochs=1, batch_size=16)
    path = tmp_path / "qat.pte"
    path.write_bytes(lower_to_pte(quantized, images))
    val, val_labels, _ = load_split("digits", "val", card.preprocessing)
    assert np.mean(artifact_logits(path, val).argmax(1) == val_labels) > 0.9
