"""Bad input, answered: `edgevision train --init` with data of other classes, contradicting options,
a missing checkpoint, or a checkpoint inside the --out it would replace."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from train.cli import main

FAST = ["--threads", "1", "--quiet", "--batch-size", "128", "--epochs", "1"]


@pytest.fixture
def two_classes(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        folder = tmp_path / "pets" / name
        folder.mkdir(parents=True)
        for i in range(12):
            cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (8, 8), dtype=np.uint8))
    return tmp_path / "pets"


@pytest.fixture
def untrained(tmp_path) -> Path:
    """A digits `cnn` checkpoint, untrained: enough for the checks that come before any training."""
    import torch

    from deploy.card import ModelCard
    from tests.digits_cnn import OPTIONS, SPEC
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    torch.manual_seed(0)
    card = ModelCard("cnn", [str(d) for d in range(10)], SPEC, model_options=OPTIONS, dataset="digits")
    (tmp_path / "first").mkdir()
    model = build_model("cnn", 10, 1, (8, 8), **OPTIONS)
    return save_checkpoint(tmp_path / "first" / "model.pt", card, model.state_dict())


def test_mistakes_are_one_line(untrained, two_classes, tmp_path, capsys):
    init, first_run = str(untrained), untrained.parent
    cases = [
        (["--data", f"folder:{two_classes}", "--init", init], "the data's classes [cat, dog] are not the model's "
                                                              "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"),
        (["--data", "digits", "--init", init, "--weights", init], "--init and --weights"),
        (["--data", "digits", "--init", init, "--model", "mobilenet_v2"], "--model mobilenet_v2 differs from"),
        (["--data", "digits", "--init", init, "--input-size", "16"], "--input-size 16 differs from --init's input"),
        (["--data", "digits", "--init", str(tmp_path / "missing.pt")], "--init: checkpoint not found"),
        (["--resume", "--init", init], "--resume continues OUT/last.pt; --init starts a new run"),
        (["--data", "digits", "--init", init, "--out", str(first_run), "--overwrite"], "is one of the files this run"),
    ]
    for args, says in cases:
        out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
        assert main(["train", *args, *out, *FAST]) == 2, args
        err = [line for line in capsys.readouterr().err.splitlines() if line]
        assert len(err) == 1 and says in err[0], (args, err)
    assert (first_run / "model.pt").is_file() and not (tmp_path / "out" / "model.pt").exists()
