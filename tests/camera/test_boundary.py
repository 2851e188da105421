"""Every camera_app module imports without torch (and without onnxruntime until a model is loaded)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import camera_app

REPO = Path(__file__).resolve().parents[2]


def test_camera_app_modules_import_no_torch():
    modules = sorted(f"camera_app.{m.name}" for m in pkgutil.iter_modules(camera_app.__path__))
    assert "camera_app.cli" in modules and "camera_app.pipeline" in modules
    code = (
        f"import sys, importlib\nfor name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('torch', 'torchvision', 'onnx', 'onnxruntime', 'executorch'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
