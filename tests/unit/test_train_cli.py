"""End to end through `train.cli.main`: train -> outputs -> eval, resume after a kill, frozen heads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from train.checkpoint import load_checkpoint, load_model
from train.cli import main

REPO = Path(__file__).resolve().parents[2]
FAST = ["--threads", "1", "--quiet", "--batch-size", "128"]


def test_train_then_eval_writes_all_outputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--model", "cnn", "--epochs", "3", "--out", str(out), *FAST]) == 0
    for name in ("model.pt", "last.pt", "metrics.json", "confusion.png", "config.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["epochs"] == 3 and len(metrics["history"]) == 3
    assert metrics["top1"] > 0.5 and set(metrics["per_class"]) == {str(i) for i in range(10)}
    assert json.loads((out / "config.json").read_text())["recipe"] == "lesson"
    model, card = load_model(out / "model.pt")
    assert card.metrics["top1"] == metrics["top1"] and card.dataset == "digits"
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"

    capsys.readouterr()
    assert main(["eval", "--model", str(out / "model.pt"), "--split", "test"]) == 0
    again = json.loads((out / "eval_metrics.json").read_text())
    assert again["top1"] == pytest.approx(metrics["top1"])  # the card's preprocessing is the training one
    summary = capsys.readouterr().err.splitlines()[0]
    assert summary.startswith(f"test top-1 {again['top1']:.2%} on {again['count']} images (test split of digits), ")
    assert main(["eval", "--model", str(out / "model.pt"), "--split", "all"]) == 0
    assert f"on {1797} images (all splits of digits)" in capsys.readouterr().err


def test_user_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--data", "nope", "--model", "cnn", "--out", str(tmp_path)]) == 2
    assert main(["train", "--data", "digits", "--model", "vgg", "--out", str(tmp_path)]) == 2
    assert main(["eval", "--model", str(tmp_path / "missing.pt")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 3 and all(line.startswith("edgevision ") for line in lines)
    assert "unknown data spec" in lines[0] and "unknown model" in lines[1] and "not found" in lines[2]


def test_frozen_backbone_trains_only_the_head(tmp_path: Path) -> None:
    from train.models import build_model

    init = tmp_path / "init.pth"
    torch.manual_seed(0)
    torch.save(build_model("multilayer-cnn", 10, 1, (8, 8)).state_dict(), init)
    out = tmp_path / "frozen"
    args = ["train", "--data", "digits", "--model", "multilayer-cnn", "--weights", str(init), "--freeze", "backbone",
            "--epochs", "2", "--input-size", "8", "--out", str(out), *FAST]
    assert main(args) == 0
    before = torch.load(init, weights_only=True)
    after = load_checkpoint(out / "model.pt")["state_dict"]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}
    assert json.loads((out / "config.json").read_text())["augment"] == "none"  # the cached-feature path


def test_freezing_a_random_backbone_warns_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["train", "--data", "digits", "--model", "cnn", "--freeze", "backbone", "--epochs", "1", *FAST]
    assert main([*args, "--out", str(tmp_path / "random")]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "--freeze backbone" in line]
    assert warned == ["--freeze backbone without --weights or --init freezes a randomly initialised backbone: only "
                      "the head trains, on random features, and the loss stays near its start; give pretrained "
                      "weights (--weights DEFAULT or a file, --init MODEL.pt) or leave --freeze out"]
    assert main([*args, "--out", str(tmp_path / "init"), "--init", str(tmp_path / "random" / "model.pt")]) == 0
    assert "--freeze backbone" not in capsys.readouterr().err, "a pretrained backbone is worth freezing"


# `python -m train` whose process SIGKILLs itself right after the first epoch's last.pt is written: the
# kill lands at the same point on a fast or a loaded machine (no race between the run and a poller).
KILLED_AFTER_EPOCH_1 = """
import os, signal, sys
import train.fit as fit
from train.cli import main

save = fit.save_checkpoint

def save_then_die(path, *args, **kwargs):
    save(path, *args, **kwargs)
    if path.name == "last.pt" and kwargs.get("epoch") == 1:
        os.kill(os.getpid(), signal.SIGKILL)

fit.save_checkpoint = save_then_die
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_resume_after_the_process_is_killed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", "digits", "--model", "mlp", "--epochs", "3", "--out", str(out), "--threads", "1",
            "--quiet", "--batch-size", "16"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_EPOCH_1, *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    killed_at = load_checkpoint(out / "last.pt")
    assert killed_at["epoch"] == 1 and not (out / "metrics.json").exists()
    command = [sys.executable, "-m", "train", *args]
    resumed = subprocess.run([*command, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert metrics["history"][0] == killed_at["history"][0]  # epoch 1 was kept, not trained again
    model, card = load_model(out / "model.pt")
    assert card.architecture == "mlp" and card.metrics["split"] == "test"


def test_two_phase_schedule_unfreezes_the_backbone(tmp_path: Path) -> None:
    out = tmp_path / "two-phase"
    args = ["train", "--data", "digits", "--model", "cnn", "--schedule", "two-phase", "--head-epochs", "1",
            "--epochs", "2", "--backbone-lr-scale", "0.1", "--out", str(out), *FAST]
    assert main(args) == 0
    last = load_checkpoint(out / "last.pt")
    assert [group["initial_lr"] for group in last["optimizer"]["param_groups"]] == pytest.approx([3e-4, 3e-3])
    assert len(last["history"]) == 2
