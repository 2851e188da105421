"""Checkpoints: atomic writes, safe loading, one-line errors for files that are not ours."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch

from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing
from train.checkpoint import load_checkpoint, load_model, save_checkpoint, sha256_file
from train.models import build_model


def card() -> ModelCard:
    return ModelCard("cnn", [str(i) for i in range(10)], Preprocessing((8, 8), None, (0.3,), (0.37,), "GRAY"))


def test_round_trip_rebuilds_the_model(tmp_path: Path) -> None:
    model = build_model("cnn", 10, 1, (8, 8))
    path = save_checkpoint(tmp_path / "model.pt", card(), model.state_dict(), epoch=3)
    loaded, loaded_card = load_model(path)
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(loaded(x), model.eval()(x))
    assert not loaded.training and loaded_card == card()
    assert load_checkpoint(path)["epoch"] == 3
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "model.pt", card(), build_model("cnn", 10, 1, (8, 8)).state_dict())
    before = path.read_bytes()
    with pytest.raises((AttributeError, pickle.PicklingError)):
        save_checkpoint(path, card(), {"x": lambda: 0})  # torch.save fails half-way: lambdas do not pickle
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_corrupt_or_foreign_files_are_one_line_errors(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.pt", card(), build_model("cnn", 10, 1, (8, 8)).state_dict())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(EdgevisionError, match="truncated.pt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(EdgevisionError, match="foreign.pt is not an edgevision checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(EdgevisionError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_pickled_code_is_never_run(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"edgevision_checkpoint": 1, "card": {}, "state_dict": {}, "x": Boom()}, path)
    with pytest.raises(EdgevisionError, match="evil.pt"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
