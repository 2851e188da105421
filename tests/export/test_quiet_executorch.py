"""ExecuTorch's runtime logs (cpuinfo, its thread pool) stay out of a command's output unless verbose:
they come up through Python's streams (pybind11), not only straight to fd 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("executorch")

from deploy.card import ModelCard
from deploy.export.torch2pte import torch2pte
from deploy.preprocess import Preprocessing
from tests.helpers import NATIVE

REPO = Path(__file__).resolve().parents[2]
PREDICT = (
    "import sys, warnings\n"
    "import numpy as np, deploy\n"
    "from deploy.cli_util import run_cli\n"
    "warnings.simplefilter('ignore')  # the tiny model is unverified; its warning is not what this test is about\n"
    "def command():\n"
    "    classifier = deploy.load(sys.argv[1], threads=1)\n"
    "    print('top:', classifier.predict(np.zeros((20, 30, 3), np.uint8)).label)\n"
    "raise SystemExit(run_cli(command, 'predict', verbose=sys.argv[2] == 'verbose'))\n"
)


@pytest.fixture(scope="module")
def pte(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2)).eval()
    card = ModelCard("tiny", ["a", "b"], Preprocessing((16, 16), 18), artifact_format="executorch")
    return torch2pte(model, card, tmp_path_factory.mktemp("pte") / "m.pte")


def predict(pte: Path, mode: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PREDICT, str(pte), mode], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
    return done.stdout.splitlines()


@pytest.mark.slow
def test_executorch_runtime_logs_held_unless_verbose(pte):
    verbose = predict(pte, "verbose")
    if not any(NATIVE.search(line) for line in verbose):
        pytest.skip(f"ExecuTorch's runtime logs nothing on this machine: {verbose}")
    assert predict(pte, "quiet") == [line for line in verbose if line.startswith("top:")]
