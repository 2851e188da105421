"""Hostile reference sets (`<model>.ref.npz`) and card notes: every one is a one-line
`EdgevisionError` naming the file, decided from the member headers before any large read."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from deploy.reference import MAX_REFERENCE_BYTES, load_reference, save_reference
from tests.runtime.onnx_models import tiny_card
from tests.runtime.reference_sets import tiny_reference


def members(tmp_path) -> dict[str, np.ndarray]:
    path = save_reference(tmp_path / "good.npz", tiny_reference(tiny_card()))
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def write_npz(path, arrays: dict, raw: dict[str, bytes] | None = None):
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=True)
            archive.writestr(f"{name}.npy", buffer.getvalue())
        for name, data in (raw or {}).items():
            archive.writestr(f"{name}.npy", data)
    return path


def huge_header(shape: tuple[int, ...], dtype: str) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 64


def refused(path, message: str) -> None:
    with pytest.raises(EdgevisionError, match=message) as info:
        load_reference(path)
    assert len(str(info.value).splitlines()) == 1 and str(path) in str(info.value)


def test_not_a_zip_or_missing(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really" * 10)
    refused(tmp_path / "junk.npz", "not a readable .npz")
    with pytest.raises(EdgevisionError, match="reference set not found"):
        load_reference(tmp_path / "none.npz")


@pytest.mark.parametrize("name, value, message", [
    ("logits", lambda m: m["logits"].astype(np.float64), "member logits has dtype float64"),
    ("images", lambda m: m["images"][0], "expected 4 dimensions"),
    ("images", lambda m: m["images"].astype(np.int16), "member images has dtype"),
    ("images", lambda m: np.array([{"pickled": 1}], dtype=object), "member images has dtype object"),
    ("images", lambda m: np.repeat(m["images"][..., :1], 2, axis=3), r"images must be \(N"),
    ("logits", lambda m: np.where(np.arange(3) == 1, np.nan, m["logits"]).astype(np.float32), "NaN"),
    ("logits", lambda m: m["logits"][:2], "do not fit 6 images"),
    ("top_k", lambda m: m["top_k"] + 7, "names classes outside"),
    ("top_k", lambda m: m["top_k"][:, ::-1].copy(), "does not match the logits"),
    ("precision", lambda m: np.str_("fp64"), "precision must be one of"),
    ("precision", lambda m: np.str_("x" * 5000), "longer than"),
    ("version", lambda m: np.int64(9), "version 9"),
    ("measured_agreement", lambda m: np.float64(np.nan), "must lie in"),
    ("source", lambda m: None, "member source is missing"),
])
def test_wrong_members(tmp_path, name, value, message):
    arrays = members(tmp_path)
    replacement = value(arrays)
    if replacement is None:
        del arrays[name]
    else:
        arrays[name] = replacement
    refused(write_npz(tmp_path / "bad.npz", arrays), message)


def test_a_huge_declared_array_is_refused_before_it_is_read(tmp_path):
    arrays = members(tmp_path)
    del arrays["images"]
    path = write_npz(tmp_path / "huge.npz", arrays, {"images": huge_header((100_000, 4096, 4096, 3), "|u1")})
    refused(path, f"larger than {MAX_REFERENCE_BYTES:,} bytes")
    del arrays["logits"]
    path = write_npz(tmp_path / "huge2.npz", arrays | {"images": members(tmp_path)["images"]},
                     {"logits": huge_header((6, 10**12), "<f4")})
    refused(path, "larger than")


def test_truncated_member(tmp_path):
    arrays = members(tmp_path)
    del arrays["images"]
    refused(write_npz(tmp_path / "short.npz", arrays, {"images": huge_header((6, 40, 40, 3), "|u1")}),
            "not a readable .npz")


@pytest.mark.parametrize("note, message", [
    ({"file": "../../etc/passwd", "images": 4}, "reference.file must be a file name"),
    ({"file": "m.ref.npz", "images": "4"}, "reference.images must be an integer"),
    ({"images": 4}, "reference.file must be a string"),
    ([1, 2], "reference must be a mapping"),
])
def test_card_reference_note(note, message):
    data = tiny_card().to_dict() | {"reference": note}
    with pytest.raises(EdgevisionError, match=message):
        ModelCard.from_dict(data)
