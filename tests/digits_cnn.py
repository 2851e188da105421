"""A real `cnn` (train.models) trained for a few seconds on sklearn's digits, saved by
train.checkpoint: the small real model the quantize and sweep tests start from."""

from __future__ import annotations

from pathlib import Path

from deploy.preprocess import Preprocessing

SPEC = Preprocessing(input_size=(8, 8), mean=(0.5,), std=(0.5,), color="GRAY")
OPTIONS = {"width": 16}


def train_digits_cnn(path: Path) -> Path:
    """Train (12 epochs, seed 0) and save the checkpoint at `path`; returns `path`."""
    import torch
    from torch import nn

    from deploy.card import ModelCard
    from quantize.calibration import SplitDraw, load_split
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    torch.manual_seed(0)
    images, labels, names = load_split(SplitDraw("digits", "train"), SPEC)
    model = build_model("cnn", 10, 1, (8, 8), **OPTIONS)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    model.train()
    for _ in range(12):
        for index in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    card = ModelCard("cnn", names, SPEC, model_options=OPTIONS, dataset="digits")
    return save_checkpoint(path, card, model.eval().state_dict())
