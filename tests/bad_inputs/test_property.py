"""Bad input, answered for any bytes: what parses untrusted input either returns a valid result or
raises `EdgevisionError` (one line for the user), never anything else.

Property-based (Hypothesis): the model card (JSON text and parsed values), the ONNX external-data
scan, the `.pte` header check, IDX files and image decoding. Each property runs a bounded number
of examples, so the normal suite runs them; no per-example deadline (a loaded machine is slow, not wrong).
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from deploy.onnx_scan import check_external_data, external_data_locations
from deploy.preprocess import Preprocessing, read_image
from deploy.pte_scan import check_pte_head

QUICK = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GOOD = ModelCard("cnn", ["a", "b"], Preprocessing((16, 16), 18), model_options={"width": 4}).to_dict()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
card_fields = st.sampled_from(sorted(GOOD) + ["preprocessing.input_size", "preprocessing.resize", "preprocessing.mean",
                                              "preprocessing.std", "preprocessing.color", "parity.passed",
                                              "parity.images"])


def outcome(call, *args):
    """Run `call`: its result, or None when it raised EdgevisionError (anything else fails the test)."""
    try:
        return call(*args)
    except EdgevisionError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return None


@QUICK
@given(st.text(max_size=200))
def test_any_text_as_a_card(text):
    outcome(ModelCard.from_json, text)


@QUICK
@given(json_values)
def test_any_json_value_as_a_card(value):
    outcome(ModelCard.from_dict, value)


@QUICK
@given(st.lists(st.tuples(card_fields, json_values), min_size=1, max_size=3))
def test_a_good_card_with_any_fields_replaced(changes):
    card = json.loads(json.dumps(GOOD))
    for name, value in changes:
        part, _, field = name.partition(".")
        if field:
            card[part] = {**(card[part] if isinstance(card.get(part), dict) else {}), field: value}
        else:
            card[name] = value
    result = outcome(ModelCard.from_dict, card)
    if result is not None:  # what it accepted, it can write back and read again
        assert ModelCard.from_json(result.to_json()) == result


@QUICK
@given(st.binary(max_size=512))
def test_any_bytes_as_an_onnx_file(data):
    locations = outcome(external_data_locations, data)
    assert locations is None or all(isinstance(location, str) for location in locations)


@QUICK
@given(st.binary(max_size=256))
def test_any_bytes_after_a_model_header_as_an_onnx_file(data):
    # field 7 (graph), length-delimited: the scanner walks into nested messages
    with tempfile.TemporaryDirectory() as folder:
        outcome(check_external_data, Path(folder) / "m.onnx", b"\x3a" + bytes([min(len(data), 127)]) + data)


@QUICK
@given(st.binary(max_size=64), st.integers(0, 2**40))
def test_any_head_as_a_pte_file(head, size):
    outcome(check_pte_head, head, size)


@QUICK
@given(st.binary(min_size=56, max_size=56), st.integers(0, 2**40))
def test_any_header_fields_after_a_pte_identifier(rest, size):
    outcome(check_pte_head, rest[:4] + b"ET12" + b"eh00" + rest[4:], size)


@QUICK
@given(st.binary(max_size=300), st.integers(0, 4), st.booleans())
def test_any_bytes_as_an_idx_file(body, ndim, compress):
    pytest.importorskip("torch")
    from train.data import read_idx

    data = bytes([0, 0, 8, ndim]) + body
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("x.gz" if compress else "x")
        path.write_bytes(gzip.compress(data) if compress else data)
        array = outcome(read_idx, path)
    assert array is None or (array.dtype == np.uint8 and array.ndim == ndim)


IMAGE_HEADERS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"P5\n", b"RIFF\0\0\0\0WEBP", b"II*\0"]


@QUICK
@given(st.sampled_from(IMAGE_HEADERS), st.binary(max_size=300))
def test_any_bytes_as_an_image(header, body):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.img"
        path.write_bytes(header + body)
        image = outcome(read_image, str(path))
    assert image is None or image.ndim in (2, 3)
