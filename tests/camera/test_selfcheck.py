"""`edgevision camera --self-check`: the model's reference set is replayed before the first frame;
an altered model does not start in strict mode (exit 2, one line) and starts with a warning in warn mode."""

from __future__ import annotations

import pytest

from camera_app.cli import main
from tests.runtime.onnx_models import make_onnx, tiny_card
from tests.runtime.reference_sets import referenced_onnx

pytestmark = pytest.mark.filterwarnings("ignore:.*unverified:UserWarning")  # the tiny models carry no parity record


@pytest.fixture
def model(tmp_path):
    return referenced_onnx(tmp_path / "tiny.onnx")


def camera(model, video, *flags: str, quiet: bool = True) -> int:
    return main(["camera", "--model", str(model), "--source", str(video), "--display", "none", "--max-frames", "3",
                 *(["--quiet"] if quiet else []), *flags])


def test_honest_model_starts(model, mjpg_video, capsys):
    assert camera(model, mjpg_video, "--self-check", quiet=False) == 0
    assert "self-check: top-1 agreement 6/6 (100.00%)" in capsys.readouterr().err


def test_altered_model_is_refused_in_strict_mode(model, mjpg_video, capsys):
    make_onnx(model, card=tiny_card(), seed=1)  # other weights, same card
    assert camera(model, mjpg_video, "--self-check", "strict") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--self-check strict" in err and "FAILED" in err


def test_altered_model_starts_with_a_warning_in_warn_mode(model, mjpg_video, capsys):
    make_onnx(model, card=tiny_card(), seed=1)
    assert camera(model, mjpg_video, "--self-check", "warn") == 0
    assert "self-check FAILED, starting anyway" in capsys.readouterr().err


def test_no_reference_set(tiny_model, mjpg_video, capsys):
    assert camera(tiny_model, mjpg_video, "--self-check") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no reference set" in err
    assert camera(tiny_model, mjpg_video, "--self-check", "warn") == 0
    err = capsys.readouterr().err
    assert "self-check skipped" in err and "no reference set" in err
