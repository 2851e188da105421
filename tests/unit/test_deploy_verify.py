"""Reference sets and `edgevision verify` on tiny real ONNX models (no torch): the stored images
replay exactly, an honest file passes, altered weights or preprocessing fail, and the tolerance
follows the precision."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the tiny test models are built with onnx")

import deploy
from deploy.cli import main
from deploy.preprocess import Preprocessing, preprocess
from deploy.reference import compact_image, load_reference, reference_path, save_reference, stored_shape
from deploy.verify import tolerance, verify
from tests.conftest import REPO
from tests.runtime.onnx_models import make_onnx, tiny_card
from tests.runtime.reference_sets import camera_like_images, referenced_onnx, tiny_reference

pytestmark = pytest.mark.filterwarnings("ignore:.*unverified:UserWarning")  # the tiny models carry no parity record


@pytest.fixture
def model(tmp_path):
    return referenced_onnx(tmp_path / "tiny.onnx")


@pytest.mark.parametrize("spec", [Preprocessing((32, 32), 40), Preprocessing((24, 40), 30, color="BGR"),
                                  Preprocessing((16, 16), None, (0.5,), (0.25,), "GRAY")])
def test_stored_images_need_no_resize_and_replay_exactly(spec):
    for image in [*camera_like_images(3), camera_like_images(1)[0][:, :, 0], np.zeros((90, 20, 4), np.uint16)]:
        stored = compact_image(image, spec)
        assert stored.dtype == np.uint8 and stored.shape == (*stored_shape(spec), spec.channels)
        assert min(stored.shape[:2]) == (spec.resize or min(spec.input_size))
        # stored in OpenCV order: compacting it again changes nothing, so preprocessing crops and normalises only
        np.testing.assert_array_equal(compact_image(stored, spec), stored)
        assert preprocess(stored, spec).shape == (spec.channels, *spec.input_size)


def test_compact_image_keeps_what_preprocessing_sees():
    spec = Preprocessing((32, 32), 36)
    image = camera_like_images(1)[0]  # 48 x 64: the short side is resized to 36 either way
    difference = np.abs(preprocess(compact_image(image, spec), spec) - preprocess(image, spec))
    assert difference.mean() < 0.05  # the same picture, up to a pixel of crop offset


def test_save_and_load_round_trip(tmp_path):
    reference = tiny_reference(tiny_card(), precision="int8", measured_max_abs_logit_diff=0.25,
                               measured_agreement=0.75)
    loaded = load_reference(save_reference(tmp_path / "r.npz", reference))
    np.testing.assert_array_equal(loaded.images, reference.images)
    np.testing.assert_array_equal(loaded.logits, reference.logits)
    assert (loaded.precision, loaded.measured_max_abs_logit_diff, loaded.measured_agreement) == ("int8", 0.25, 0.75)
    assert loaded.top_k.shape == (6, 3) and loaded.source == "generated"


def test_honest_file_passes_and_altered_weights_fail(model):
    classifier = deploy.load(model)
    honest = verify(classifier, load_reference(reference_path(model)), model)
    assert honest.passed and honest.top1_agreement == 1.0 and honest.same_file
    assert honest.max_abs_logit_diff < 1e-4 and honest.line().endswith("-> passed")
    make_onnx(model, card=tiny_card(), seed=1)  # other weights, same card
    altered = verify(deploy.load(model), load_reference(reference_path(model)), model)
    assert not altered.passed and altered.same_file is False
    assert "FAILED" in altered.line() and "not the one the reference set was made for" in altered.line()


def test_a_changed_card_preprocessing_fails(model):
    classifier = deploy.load(model)
    spec = classifier.card.preprocessing
    classifier.card = classifier.card.evolve(preprocessing=replace(spec, mean=(0.4, 0.4, 0.4)))
    assert not verify(classifier, load_reference(reference_path(model))).passed


def test_tolerance_follows_precision(model):
    classifier = deploy.load(model)
    exact = tiny_reference(tiny_card())
    scale = max(1.0, float(exact.logits.max() - exact.logits.min()))
    assert tolerance(exact).max_abs_logit_diff == pytest.approx(1e-3 * scale)
    assert tolerance(exact).min_top1_agreement is None
    noisy = replace(exact, logits=exact.logits + np.float32(5e-3 * scale))
    assert not verify(classifier, noisy).passed  # fp32: 5e-3 of the range is too far
    assert verify(classifier, replace(noisy, precision="fp16")).passed  # fp16 allows 1e-2
    # int8: the logit bound grows with what was measured where it was made ...
    int8 = replace(exact, precision="int8", logits=exact.logits + np.float32(0.5), measured_max_abs_logit_diff=0.3)
    assert verify(classifier, int8).passed
    assert not verify(classifier, replace(int8, measured_max_abs_logit_diff=0.1)).passed
    # ... and top-1 must agree on 90 % of what agreed there: one image of six flipped is 83 %
    flipped = int8.top_k.copy()
    flipped[0, 0] = (flipped[0, 0] + 1) % 3
    result = verify(classifier, replace(int8, top_k=flipped))
    assert not result.passed and result.top1_agreement == pytest.approx(5 / 6)
    assert verify(classifier, replace(int8, top_k=flipped, measured_agreement=5 / 6)).passed


def test_cli_exit_status(model, tmp_path, capsys):
    assert main(["verify", "--model", str(model)]) == 0
    assert "-> passed" in capsys.readouterr().out
    moved = tmp_path / "elsewhere.npz"
    reference_path(model).rename(moved)
    assert main(["verify", "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no reference set" in err and "--reference-images" in err
    assert main(["verify", "--model", str(model), "--reference", str(moved)]) == 0
    capsys.readouterr()
    make_onnx(model, card=tiny_card(), seed=2)
    assert main(["verify", "--model", str(model), "--reference", str(moved)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_verify_help_has_examples_and_imports_no_torch():
    code = ("import sys\nfrom edgevision import main\n"
            "try:\n    main(['verify', '--help'])\nexcept SystemExit:\n    pass\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'onnx'))\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True, text=True).stdout
    assert "edgevision verify --model " in out and "--reference" in out


def test_a_reference_set_of_another_model_is_bad_input(model, capsys):
    from tests.runtime.reference_sets import write_tiny_reference

    other = make_onnx(model.with_name("other.onnx"), classes=4, card=tiny_card(classes=4))
    write_tiny_reference(other, tiny_card(classes=4), classes=4)
    assert main(["verify", "--model", str(model), "--reference", str(reference_path(other))]) == 2
    assert "the reference set has 4 classes, the model 3" in capsys.readouterr().err
    gray = make_onnx(model.with_name("gray.onnx"), channels=1, card=tiny_card(channels=1))
    write_tiny_reference(gray, tiny_card(channels=1))
    assert main(["verify", "--model", str(model), "--reference", str(reference_path(gray))]) == 2
    assert "the reference images have 1 channel(s), the model takes RGB" in capsys.readouterr().err
