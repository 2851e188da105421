"""`edgevision export | predict | info` through the `edgevision` dispatcher, on a real (tiny) checkpoint."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
checkpoint = pytest.importorskip("train.checkpoint", reason="train/ (checkpoints) is not available")
models = pytest.importorskip("train.models")

import deploy
from deploy.card import ModelCard
from deploy.preprocess import Preprocessing
from edgevision import main


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    card = ModelCard("cnn", ["cats", "dogs"], Preprocessing((32, 32), 36), model_options={"width": 8},
                     dataset="folder:cats_vs_dogs", metrics={"top1": 0.61})
    model = models.build_model("cnn", 2, 3, (32, 32), width=8)
    return checkpoint.save_checkpoint(tmp_path / "model.pt", card, model.state_dict())


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, shape in enumerate([(40, 60, 3), (33, 33), (80, 20, 4)]):
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, shape, dtype=np.uint8))
        paths.append(str(path))
    return paths


def test_export_predict_info(tmp_path, ckpt, images, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(ckpt), "--format", "onnx", "--out", str(out), "--verify-images", "4"]) == 0
    printed = capsys.readouterr().out
    assert "top-1 agreement 100.00%" in printed and "passed" in printed
    card = deploy.load(out).card
    assert card.source_sha256 == checkpoint.sha256_file(ckpt) and card.metrics == {"top1": 0.61}
    assert card.parity.source == "generated" and card.artifact_format == "onnx"

    assert main(["predict", "--model", str(out), "--top-k", "1", *images]) == 0
    printed = capsys.readouterr().out
    assert printed.count("time ms: preprocess") == 3 and all(p in printed for p in images)

    assert main(["predict", "--model", str(out), "--json", "--backend", "onnxruntime", images[0]]) == 0
    row = json.loads(capsys.readouterr().out)
    assert {label for label, _ in row["top"]} == {"cats", "dogs"}

    # the torch reference backend runs the checkpoint itself and agrees
    assert main(["predict", "--model", str(ckpt), "--json", images[0]]) == 0
    torch_row = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose([p for _, p in torch_row["top"]], [p for _, p in row["top"]], atol=1e-5)

    assert main(["info", "--model", str(out)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["card"]["class_names"] == ["cats", "dogs"] and shown["runtime"]["backend"] == "onnxruntime"


def test_user_mistakes_are_one_line(tmp_path, ckpt, images, capsys):
    assert main(["export", "--model", str(ckpt), "--format", "onnx", "--precision", "int8", "--out", "x.onnx"]) == 2
    assert "takes precision fp32, not int8" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path / "no.pt"), "--format", "onnx",
                 "--out", str(tmp_path / "x.onnx")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    # the suffix comes from the format table: the checkpoint itself is never the target
    assert main(["export", "--model", str(ckpt), "--format", "onnx", "--out", str(ckpt)]) == 2
    assert "onnx artifacts end in .onnx; --out" in capsys.readouterr().err
    assert ckpt.is_file() and checkpoint.load_model(ckpt)
    assert main(["predict", "--model", str(tmp_path / "none.onnx"), images[0]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgevision predict: error: model file not found") and err.count("\n") == 1
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk" * 100)
    assert main(["info", "--model", str(bad)]) == 2
    assert "bad.onnx" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--help"])
    assert exit_info.value.code == 0
    assert "--top-k" in capsys.readouterr().out


def test_python_m_deploy(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "deploy", "info", str(tmp_path / "x.onnx")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "model file not found" in done.stderr


@pytest.mark.slow
def test_export_executorch_cli(tmp_path, ckpt, images, capsys):
    pytest.importorskip("executorch")
    out = tmp_path / "model.pte"
    assert main(["export", "--model", str(ckpt), "--format", "executorch", "--out", str(out),
                 "--verify-images", "3"]) == 0
    assert "passed" in capsys.readouterr().out
    assert deploy.load(out).card.parity.top1_agreement == 1.0
    assert main(["predict", "--model", str(out), *images]) == 0
