"""`edgevision train --init MODEL.pt`: fine-tuning really starts from the checkpoint's weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from train.checkpoint import load_model
from train.cli import main

SAME = ["--threads", "1", "--quiet", "--batch-size", "128", "--lr", "3e-3", "--label-smoothing", "0",
        "--augment", "none", "--epochs", "1"]


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("first") / "run"
    assert main(["train", "--data", "digits", "--model", "cnn", "--out", str(out), *SAME]) == 0
    return out


@pytest.mark.slow  # two training runs: about 20 s on 2 shared cores
def test_init_starts_from_the_checkpoints_weights(first_run, tmp_path):
    out = tmp_path / "again"
    assert main(["train", "--data", "digits", "--init", str(first_run / "model.pt"), "--out", str(out), *SAME]) == 0
    fresh, tuned = metrics(first_run), metrics(out)
    # the starting model is the first run's: the same score on the same val split
    assert tuned["init"]["checkpoint"] == "model.pt"
    assert tuned["init"]["val_top1"] == fresh["history"][0]["val_top1"]
    assert tuned["init"]["val_loss"] == pytest.approx(fresh["history"][0]["val_loss"], rel=1e-4)
    # and so its loss starts where the first run ended, far below a fresh start's
    assert tuned["init"]["val_loss"] < fresh["history"][0]["train_loss"]
    assert tuned["history"][0]["train_loss"] < fresh["history"][0]["train_loss"]
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "cnn" and config["recipe"] == "finetune" and config["init"].endswith("model.pt")
    _, card = load_model(out / "model.pt")
    _, first_card = load_model(first_run / "model.pt")
    assert card.class_names == first_card.class_names and card.preprocessing == first_card.preprocessing
