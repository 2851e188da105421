"""The card's typed parity record: written and read back the same way, and old cards still read."""

from __future__ import annotations

import json

import pytest

from deploy.card import ModelCard, Parity
from deploy.errors import EdgevisionError
from tests.runtime.onnx_models import tiny_card


def card_with(parity) -> ModelCard:
    data = tiny_card().to_dict()
    data["parity"] = parity
    return ModelCard.from_json(json.dumps(data))


def test_parity_round_trips_through_json() -> None:
    parity = Parity(passed=True, images=64, source="folder/val", top1_agreement=0.98, reference="fp32 onnx",
                    top1=0.97, reference_top1=0.975, allowed_top1_drop=0.01)
    card = tiny_card().evolve(parity=parity)
    again = ModelCard.from_json(card.to_json())
    assert again.parity == parity and again == card
    assert ModelCard.from_json(tiny_card().to_json()).parity is None


def test_old_cards_still_read() -> None:
    assert card_with({}).parity is None  # checkpoints and artifacts written without a check
    export = {"images": 6, "top1_agreement": 1.0, "max_abs_logit_diff": 2e-6, "mean_abs_logit_diff": 1e-7,
              "required_top1_agreement": 1.0, "required_max_abs_logit_diff": 1e-3, "passed": False,
              "source": "generated", "backend": "onnxruntime", "provider": "CPUExecutionProvider"}
    old_export = card_with(export).parity
    assert old_export == Parity(**export) and not old_export.passed
    quantized = card_with({"top1_agreement_fp32": 0.99, "quantization": {"name": "qdq-u8s8-pc-minmax"}}).parity
    assert quantized.passed and quantized.top1_agreement == 0.99 and quantized.reference == "fp32"
    assert "99.00%" in quantized.line() and "passed" in quantized.line()


def test_a_parity_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(EdgevisionError, match="parity must be a mapping"):
        card_with([1, 2])
