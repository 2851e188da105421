"""Bad input, answered: model files that would crash a runtime, or carry a card that cannot be right.

No model file may abort the process (a native crash loses every result and says nothing): each is
refused in one line (exit 2) naming the file, before the runtime library sees it.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from deploy.card import ModelCard, write_sidecar
from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing
from deploy.pte_scan import check_pte_head


def run_edgevision(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`edgevision ARGS` in a fresh interpreter: a native abort shows as exit 134 there, not here."""
    return subprocess.run([sys.executable, "-m", "edgevision", *args], capture_output=True, text=True, timeout=timeout)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if "error:" in line]


@pytest.fixture
def image(tmp_path):
    import cv2

    path = tmp_path / "img.png"
    assert cv2.imwrite(str(path), np.zeros((20, 20, 3), np.uint8))
    return path


def pte_with_card(path, data: bytes):
    path.write_bytes(data)
    write_sidecar(path, ModelCard("tiny", ["a", "b"], Preprocessing((16, 16), 18), artifact_format="executorch"))
    return path


@pytest.mark.parametrize("seed", range(4))
def test_a_random_pte_is_refused_not_aborted(tmp_path, image, seed):
    """4 KiB of random bytes with a valid sidecar card: ExecuTorch aborted on 4 of 4 (exit 134)."""
    pytest.importorskip("executorch")
    model = pte_with_card(tmp_path / "x.pte", np.random.default_rng(seed).bytes(4096))
    command = ("predict", "--model", str(model), str(image)) if seed % 2 == 0 else ("info", str(model))
    done = run_edgevision(*command)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = error_lines(done)
    assert "x.pte: not an ExecuTorch program: file identifier" in line


@pytest.fixture(scope="module")
def real_pte(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("executorch")
    from deploy.export.torch2pte import torch2pte

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)
    ).eval()
    card = ModelCard("tiny", ["a", "b"], Preprocessing((16, 16), 18), artifact_format="executorch")
    return torch2pte(model, card, tmp_path_factory.mktemp("pte") / "good.pte")


@pytest.mark.parametrize(("cut", "says", "command"), [
    (200, "declares a", "predict"),  # inside the program
    (-100, "declares data up to byte", "info"),  # inside the segments
    (6, "too short for a header", "predict"),
])
def test_a_truncated_pte_is_refused_in_one_line(tmp_path, image, real_pte, cut, says, command):
    model = pte_with_card(tmp_path / "cut.pte", real_pte.read_bytes()[:cut])
    args = ("predict", "--model", str(model), str(image)) if command == "predict" else ("info", str(model))
    done = run_edgevision(*args)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = error_lines(done)
    assert "cut.pte:" in line and says in line


def test_a_real_pte_header_passes_and_each_field_is_checked(real_pte):
    data = real_pte.read_bytes()
    check_pte_head(data[:64], len(data))
    broken = {
        "identifier": data[:4] + b"\xdf\x80ET" + data[8:64],
        "root table offset": (len(data) + 1).to_bytes(4, "little") + data[4:64],
        "extended header length": data[:12] + (200).to_bytes(4, "little") + data[16:64],
        "-byte program": data[:16] + (len(data) * 2).to_bytes(8, "little") + data[24:64],
        "data up to byte": data[:32] + (len(data)).to_bytes(8, "little") + data[40:64],
    }
    for says, head in broken.items():
        with pytest.raises(EdgevisionError, match=says):
            check_pte_head(head, len(data))


@pytest.mark.parametrize("location", ["w\0.bin", ""], ids=["nul-byte", "empty"])
def test_an_onnx_external_data_path_with_a_nul_byte_is_refused(tmp_path, capsys, location):
    pytest.importorskip("onnx")
    from edgevision import main
    from tests.helpers import external_model

    model = external_model(tmp_path, location)
    assert main(["info", "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "refusing external data location" in err and len(err.strip().splitlines()) == 1
