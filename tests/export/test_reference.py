"""Export and quantize store a reference set with the artifact; `edgevision verify` replays it:
honest files pass (ONNX, int8 ONNX, .pte, int8 .pte), a file whose weights were altered fails."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from deploy.card import read_sidecar
from deploy.cli import main as deploy_main
from deploy.export.pipeline import ExportSpec, export_model
from deploy.reference import load_reference, reference_path, sha256_file
from tests.helpers import card, tiny_cnn

pytestmark = pytest.mark.filterwarnings("ignore:.*unverified:UserWarning")


def verify_status(path, capsys, *extra: str) -> tuple[int, str]:
    status = deploy_main(["verify", "--model", str(path), *extra])
    out = capsys.readouterr()
    return status, out.out + out.err


def alter_one_initializer(path) -> None:
    """Scale the largest weight tensor (float, or int8 in a quantized model) by 1.5, keeping everything
    else (the card included)."""
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    largest = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(largest)
    if values.dtype.kind in "iu":
        limits = np.iinfo(values.dtype)
        scaled = np.clip(values.astype(np.int64) * 3 // 2, limits.min, limits.max).astype(values.dtype)
    else:
        scaled = values * np.float32(1.5)
    largest.CopyFrom(numpy_helper.from_array(scaled, largest.name))
    onnx.save_model(proto, str(path))


def test_onnx_export_stores_a_reference_set_that_catches_altered_weights(tmp_path, shared_data, capsys):
    out = tmp_path / "m.onnx"
    result = export_model(tiny_cnn(classes=2), card(2), "onnx", out,
                          ExportSpec(data=f"folder:{shared_data / 'cats_vs_dogs'}", verify_images=6,
                                     reference_images=4))
    note = result.card.reference
    assert (note.file, note.images) == ("m.onnx.ref.npz", 4)
    reference = load_reference(reference_path(out))
    assert reference.images.shape == (4, 36, 36, 3) and reference.images.dtype == np.uint8
    assert reference.precision == "fp32" and reference.source.endswith("cats_vs_dogs/val")
    assert reference.artifact_sha256 == sha256_file(out) and reference.measured_max_abs_logit_diff < 1e-4
    status, text = verify_status(out, capsys)
    assert status == 0 and "top-1 agreement 4/4" in text and "-> passed" in text
    alter_one_initializer(out)
    assert onnx.load(str(out)).metadata_props, "the card is kept"
    status, text = verify_status(out, capsys)
    assert status == 1 and "FAILED" in text and "not the one the reference set was made for" in text


def test_no_reference_set_when_asked_for_none_and_the_old_one_goes(tmp_path, capsys):
    out = tmp_path / "g.onnx"
    export_model(tiny_cnn(), card(), "onnx", out, ExportSpec(verify_images=2, reference_images=3))  # generated images
    assert load_reference(reference_path(out)).source == "generated"
    result = export_model(tiny_cnn(), card(), "onnx", out, ExportSpec(verify_images=2, reference_images=0))
    assert result.card.reference is None and not reference_path(out).exists()
    status, text = verify_status(out, capsys)
    assert status == 2 and "no reference set" in text


@pytest.mark.slow
def test_pte_export_verifies(tmp_path, capsys):
    pytest.importorskip("executorch")
    out = tmp_path / "m.pte"
    export_model(tiny_cnn(), card(), "executorch", out, ExportSpec(verify_images=2, reference_images=3))
    assert read_sidecar(out).reference.file == "m.pte.ref.npz"
    status, text = verify_status(out, capsys)
    assert status == 0 and "fp32) -> passed" in text


@pytest.mark.slow
@pytest.mark.parametrize("target, suffix", [("onnx-int8", ".onnx"), ("pte-int8", ".pte")])
def test_quantized_artifacts_verify(digits_checkpoint, tmp_path, capsys, target, suffix):
    if target == "pte-int8":
        pytest.importorskip("executorch")
        pytest.importorskip("torchao")
    from quantize.cli import main as quantize_main

    out = tmp_path / f"digits.int8{suffix}"
    argv = ["quantize", "--model", str(digits_checkpoint), "--data", "digits", "--to", target, "-o", str(out),
            "--calib-size", "32", "--no-latency", "--reference-images", "8"]
    assert quantize_main(argv) == 0, capsys.readouterr().err
    reference = load_reference(reference_path(out))
    assert reference.precision == "int8" and reference.images.shape == (8, 8, 8, 1)
    assert reference.source == "val split of digits" and reference.measured_agreement >= 0.75
    status, text = verify_status(out, capsys)
    assert status == 0 and "int8) -> passed" in text, text
    if suffix == ".onnx":
        alter_one_initializer(out)
        status, text = verify_status(out, capsys)
        assert status == 1 and "int8) -> FAILED" in text, text

