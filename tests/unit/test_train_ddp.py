"""`torchrun --nproc_per_node 2 -m train train ...` on CPU (gloo): same outputs as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from train.checkpoint import load_model

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_cpu_processes_train_one_epoch(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
        "-m", "train", "train", "--data", "digits", "--model", "cnn", "--epochs", "1",
        "--out", str(out), "--threads", "1", "--quiet", "--device", "cpu",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["count"] == 270
    # each rank saw half of the 1,257 training images: 629 per rank, batch 64 -> 10 steps
    model, card = load_model(out / "model.pt")
    assert card.architecture == "cnn"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "config.json", "confusion.png", "last.pt", "metrics.json", "model.pt"
    ]
