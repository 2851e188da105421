"""A quantized artifact's card carries the same typed parity record as an exported one, so
`deploy.load` warns when it records a failed check (int8 files included)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import deploy
from quantize.guard import Attempt, Guard
from quantize.quantize_pipeline import quantized_card
from tests.runtime.onnx_models import make_onnx, tiny_card

pytest.importorskip("onnx")

LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])


def judged(wrong: int) -> tuple[Guard, Attempt]:
    guard = Guard(np.eye(3)[LABELS], LABELS, budget=1.0)
    predictions = LABELS.copy()
    predictions[:wrong] = (predictions[:wrong] + 1) % 3
    return guard, guard.judge(Attempt("qdq-u8s8-pc-minmax", "int8", {"per_channel": True}), np.eye(3)[predictions])


def test_quantized_card_records_the_guard_as_parity() -> None:
    guard, attempt = judged(wrong=0)
    card = quantized_card(tiny_card().evolve(metrics={"top1": 0.5, "pruning": {"ratio": 0.5}}), guard, attempt,
                          "onnx", "fp32 onnx", "val split of digits")
    parity = card.parity
    assert parity.passed and parity.images == 10 and parity.top1 == parity.reference_top1 == 1.0
    assert parity.top1_agreement == 1.0 and parity.allowed_top1_drop == 0.01 and parity.source == "val split of digits"
    assert card.precision == "int8" and card.metrics == {
        "top1": 1.0, "quantization": {"name": "qdq-u8s8-pc-minmax", "per_channel": True}
    }


def test_int8_artifact_with_a_failed_check_warns_on_load(tmp_path) -> None:
    guard, attempt = judged(wrong=3)
    assert not attempt.passed
    failed = make_onnx(tmp_path / "failed.int8.onnx",
                       card=quantized_card(tiny_card(), guard, attempt, "onnx", "fp32 onnx"))
    with pytest.warns(UserWarning,
                      match=r"failed parity check: top-1 agreement 70.00% .*top-1 70.00% vs 100.00% -> FAILED"):
        deploy.load(failed)
    guard, attempt = judged(wrong=0)
    passed = make_onnx(tmp_path / "ok.int8.onnx", card=quantized_card(tiny_card(), guard, attempt, "onnx", "fp32 onnx"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert deploy.load(passed).card.parity.passed
