"""`edgevision train --init MODEL.pt`: fine-tune a trained checkpoint (fresh optimizer and schedule).

The checkpoint's card decides what is built: architecture, model options, preprocessing and class
names. Options that would contradict it are refused rather than silently ignored, and so is data
whose classes are not the card's (same names, same order: output i must stay class i).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from train.checkpoint import card_of, load_checkpoint
from train.config import TrainConfig

SHOWN = 20  # class names quoted per list in the error


def init_card(path: str | os.PathLike) -> ModelCard:
    """The card of the checkpoint to start from (a one-line error for a missing or foreign file)."""
    try:
        return card_of(load_checkpoint(path), path)
    except EdgevisionError as exc:
        raise EdgevisionError(f"--init: {exc}") from None


def check_init(path: str | os.PathLike, out: Path, outputs: tuple[str, ...]) -> None:
    """Before the run folder is touched: the checkpoint reads, and is not a file this run replaces."""
    init_card(path)
    if Path(path).resolve().parent == out.resolve() and Path(path).name in outputs:
        raise EdgevisionError(f"--init {path} is one of the files this run writes in --out {out}: copy it elsewhere "
                              "or train into another --out")


def apply_init(config: TrainConfig, card: ModelCard) -> TrainConfig:
    """`config` with the checkpoint's architecture; an option that contradicts the card is an error."""
    if config.weights:
        raise EdgevisionError("--init and --weights both say where the weights come from: give one")
    if config.model and config.model != card.architecture:
        raise EdgevisionError(f"--model {config.model} differs from --init's architecture {card.architecture} "
                              "(leave --model out)")
    if config.model_options and config.model_options != card.model_options:
        raise EdgevisionError("--model-options cannot change a network started from --init (leave them out)")
    if config.input_size and (config.input_size, config.input_size) != tuple(card.preprocessing.input_size):
        raise EdgevisionError(f"--input-size {config.input_size} differs from --init's input "
                              f"{tuple(card.preprocessing.input_size)} (leave it out)")
    return replace(config, model=card.architecture, model_options=dict(card.model_options))


def shown(names: list[str]) -> str:
    more = f" (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return f"[{', '.join(names[:SHOWN])}]{more}"


def check_classes(card: ModelCard, data_classes: list[str], path: str | os.PathLike) -> None:
    if list(data_classes) != list(card.class_names):
        raise EdgevisionError(f"--init {Path(path).name}: the data's classes {shown(list(data_classes))} are not "
                              f"the model's {shown(list(card.class_names))} (same names, same order)")
