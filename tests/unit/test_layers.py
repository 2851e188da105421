"""The layers of docs/architecture.md, checked by import-linter on the real tree and shown to bite:
a copy of the tree with one upward import added must fail the same contracts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("edgevision", "benchmarks", "camera_app", "quantize", "train", "deploy")
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(),
                                reason="import-linter is not installed (pip install edgevision[dev])")


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=folder, capture_output=True, text=True, timeout=120)


def copy_tree(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("deploy/card.py", "import train.models", "Packages depend downwards only"),
        ("train/data.py", "from quantize import prune", "Packages depend downwards only"),
        ("deploy/preprocess.py", "import torch", "imports no torch"),
        ("camera_app/__init__.py", "import onnx", "imports no torch"),
        ("deploy/classifier.py", "from deploy.export import pipeline", "exporter above the runtime core"),
        ("deploy/__main__.py", "from deploy.export.cli import main", "exporter above the runtime core"),
        # the exporter reads checkpoints, so training importing it is a cycle
        ("train/checkpoint.py", "from deploy.export.pipeline import export_checkpoint",
         "Training never imports the exporter"),
        # the exporter pulls in torch; camera_app is the runtime
        ("camera_app/overlay.py", "import deploy.export.pipeline", "The camera app never imports the exporter"),
        # `edgevision report` reads JSON: the runner (tqdm, worker processes) is the measuring side's
        ("benchmarks/schema.py", "from benchmarks.runner import run_benchmark", "Reading and rendering bench reports"),
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path, module, line, broken):
    tree = copy_tree(tmp_path)
    with open(tree / module, "a", encoding="utf-8") as f:
        f.write(f"\n{line}  # added by the test\n")
    result = lint(tree)
    assert result.returncode != 0, result.stdout[-3000:]
    assert broken in result.stdout.split("Broken contracts")[-1]


def test_python_m_deploy_leaves_the_exporter_unimported():
    """`python -m deploy` runs the runtime's commands only; `export` there says where the exporter is."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['deploy', 'export', '--help']\n"
        "try:\n"
        "    runpy.run_module('deploy', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    print(exc.code)\n"
        "print(sorted(m for m in sys.modules if m.startswith('deploy.export') or m == 'torch'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    *_, message, imported = done.stdout.strip().splitlines()
    assert "python -m deploy.export" in message and imported == "[]"
