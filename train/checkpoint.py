"""Checkpoints: a dict saved atomically with torch.save and always read with weights_only=True.

    {"edgevision_checkpoint": 1, "card": ModelCard.to_dict(), "state_dict": {...}}

`model.pt` holds that (the best epoch on val, metrics filled in after the test evaluation);
`last.pt` adds what `--resume` needs: "optimizer", "schedule", "epoch", "best_top1", "history",
"rng" and "config". Everything in them is tensors, numbers, strings, lists and dicts, so the safe
`weights_only` loader reads them and no pickled code ever runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from deploy.atomic import atomic_path
from deploy.card import ModelCard, check_card_size
from deploy.errors import EdgevisionError, first_line
from deploy.reference import sha256_file as sha256_file  # re-exported: cards record their source's
from train.pruned import STRUCTURE_KEY, rebuild_pruned

CHECKPOINT_KEY = "edgevision_checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, card: ModelCard, state_dict: dict, **extra) -> Path:
    """Write a checkpoint at `path` in one rename (a reader never sees half a file).

    The weights are stored as CPU tensors, so a model trained on a GPU loads anywhere, also with
    a plain `torch.load(path, weights_only=True)` (seen on the H200: CUDA tensors otherwise).
    """
    weights = {name: tensor.detach().cpu() for name, tensor in state_dict.items()}
    data = {CHECKPOINT_KEY: CHECKPOINT_VERSION, "card": card.to_dict(), "state_dict": weights, **extra}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """An edgevision checkpoint as a dict; anything else is a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise EdgevisionError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code in it, not a torch file at all
        raise EdgevisionError(
            f"cannot read checkpoint {path}: corrupt or not a safe torch file ({first_line(exc)})"
        ) from None
    if not isinstance(data, dict) or data.get(CHECKPOINT_KEY) != CHECKPOINT_VERSION:
        raise EdgevisionError(f"{path} is not an edgevision checkpoint (no '{CHECKPOINT_KEY}' key)")
    if "card" not in data or "state_dict" not in data:
        raise EdgevisionError(f"{path} is an incomplete edgevision checkpoint (no card or state_dict)")
    return data


def card_of(checkpoint: dict, path: str | os.PathLike = "checkpoint") -> ModelCard:
    try:
        check_card_size(len(json.dumps(checkpoint["card"], default=str)))
        return ModelCard.from_dict(checkpoint["card"])
    except EdgevisionError as exc:
        raise EdgevisionError(f"{path}: {exc}") from None


def load_model(path: str | os.PathLike) -> tuple[nn.Module, ModelCard]:
    """Rebuild the network a checkpoint describes (pruned or not), with its weights, in eval mode, on the CPU."""
    from train.models import build_model

    checkpoint = load_checkpoint(path)
    card = card_of(checkpoint, path)
    options = {k: v for k, v in card.model_options.items() if k not in (STRUCTURE_KEY, "weights")}

    def build() -> nn.Module:
        model = build_model(
            card.architecture, card.num_classes, card.preprocessing.channels, card.preprocessing.input_size, **options
        )
        # A pruned model records its per-layer channel counts (plain JSON) in the card: thin the
        # fresh network to them, so loading never unpickles code.
        return rebuild_pruned(model, card.model_options)

    # A card can describe a network far larger than the weights beside it (a width of 100000 in an
    # 89 kB file took 2.4 GB): size it on the meta device first, which allocates nothing.
    with torch.device("meta"):
        wanted = sum(t.numel() for t in build().state_dict().values())
    found = sum(t.numel() for t in checkpoint["state_dict"].values() if isinstance(t, torch.Tensor))
    if wanted > found:
        raise EdgevisionError(
            f"{path}: its card describes a {card.architecture} of {wanted:,} values but the file holds {found:,}: "
            "the card does not match the weights"
        )
    model = build()
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        # torch's first line only says "Error(s) in loading state_dict for X:"; the second names the tensor
        lines = str(exc).splitlines()
        detail = lines[1].strip() if len(lines) > 1 else first_line(exc)
        raise EdgevisionError(f"{path}: weights do not fit {card.architecture} ({detail})") from None
    return model.eval(), card
