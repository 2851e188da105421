"""The runtime boundary: deploy and camera_app run without torch.

(1) Importing them in a fresh interpreter leaves torch out of sys.modules.
(2) With EDGEVISION_RUNTIME_PYTHON (a venv holding only `.[runtime,dev]`, made by `make runtime`),
    a model exported here with torch is loaded and run there, where `import torch` fails, and gives
    the probabilities that torch gives here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def test_runtime_imports_no_torch():
    code = (
        "import sys, deploy, camera_app, deploy.classifier, deploy.backends, deploy.cli, deploy.labels\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('torch', 'torchvision', 'onnxruntime', 'executorch'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_exported_model_runs_where_torch_is_absent(tmp_path):
    runtime_python = os.environ.get("EDGEVISION_RUNTIME_PYTHON")
    if not runtime_python:
        pytest.skip("EDGEVISION_RUNTIME_PYTHON is not set "
                    "(`make test` sets it to .venv-runtime, made by `make runtime`)")
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import cv2

    from deploy.card import ModelCard
    from deploy.export.torch2onnx import torch2onnx
    from deploy.preprocess import Preprocessing, preprocess, read_image

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 4),
    ).eval()
    card = ModelCard("tiny", ["w", "x", "y", "z"], Preprocessing((24, 24), 28))
    onnx_path = torch2onnx(model, card, tmp_path / "tiny.onnx")
    image_path = tmp_path / "image.png"
    rng = np.random.default_rng(3)
    cv2.imwrite(str(image_path), rng.integers(0, 256, (40, 57, 3), dtype=np.uint8))
    with torch.inference_mode():
        tensor = torch.from_numpy(preprocess(read_image(str(image_path)), card.preprocessing)[None])
        expected = torch.softmax(model(tensor), dim=1)[0].numpy()

    script = textwrap.dedent(
        f"""
        import json, sys
        try:
            import torch
        except ModuleNotFoundError:
            pass
        else:
            sys.exit("torch is importable in the runtime environment")
        import deploy
        clf = deploy.load({str(onnx_path)!r})
        pred = clf.predict({str(image_path)!r}, top_k=4)
        assert "torch" not in sys.modules
        print(json.dumps({{"probabilities": pred.probabilities.tolist(), "label": pred.label}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([runtime_python, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-4)
    assert result["label"] == card.class_names[int(expected.argmax())]
