"""`torchrun --nproc_per_node 2 -m train train ...` on CPU (gloo) writes what one process writes: the same
files, fields, config and model structure, and a card whose score is the saved model's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from train.checkpoint import load_model
from train.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_cpu_processes_write_what_one_process_writes(tmp_path: Path) -> None:
    args = ["train", "--data", "digits", "--model", "cnn", "--epochs", "1", "--threads", "1", "--quiet",
            "--device", "cpu"]
    ddp_out, one_out = tmp_path / "ddp", tmp_path / "one"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               "-m", "train", *args, "--out", str(ddp_out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert main([*args, "--out", str(one_out)]) == 0

    def files(out: Path) -> list[str]:
        return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))

    # only rank 0 writes, and it writes the same files, with the same fields, as one process does
    assert files(ddp_out) == files(one_out) == ["config.json", "confusion.png", "last.pt", "metrics.json", "model.pt"]
    ddp_metrics = json.loads((ddp_out / "metrics.json").read_text())
    one_metrics = json.loads((one_out / "metrics.json").read_text())
    assert set(ddp_metrics) == set(one_metrics)
    assert ddp_metrics["epochs"] == one_metrics["epochs"] == 1
    assert ddp_metrics["count"] == one_metrics["count"] == 270  # every test image scored once, by rank 0
    ddp_config, one_config = (json.loads((out / "config.json").read_text()) for out in (ddp_out, one_out))
    assert {**ddp_config, "out": None} == {**one_config, "out": None} and ddp_config["out"] == str(ddp_out)
    ddp_model, ddp_card = load_model(ddp_out / "model.pt")
    one_model, one_card = load_model(one_out / "model.pt")
    # the unwrapped model is saved (no DistributedDataParallel "module." prefix), loadable as one process's is
    shapes = {k: v.shape for k, v in one_model.state_dict().items()}
    assert {k: v.shape for k, v in ddp_model.state_dict().items()} == shapes
    same = ("architecture", "class_names", "preprocessing", "dataset", "dataset_info")
    assert {k: getattr(ddp_card, k) for k in same} == {k: getattr(one_card, k) for k in same}
    # the card's score is the saved model's: rank 0 evaluated the weights it wrote
    assert main(["eval", "--model", str(ddp_out / "model.pt"), "--split", "test"]) == 0
    assert json.loads((ddp_out / "eval_metrics.json").read_text())["top1"] == pytest.approx(ddp_metrics["top1"])
    assert ddp_card.metrics["top1"] == ddp_metrics["top1"]
