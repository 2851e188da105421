"""Defaults that depend on the model and the data: training recipes and preprocessing.

A recipe fills every training option the user left out, so that `edgevision train --data digits
--model cnn` works as it stands. The numbers were chosen by runs on 2 CPU cores (see
docs and the report in the commit history); change them here, not in the command line parser.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from train.data import DataSplits
from train.models import get_model_entry


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    weight_decay: float
    warmup_epochs: float
    label_smoothing: float
    augment: str  # "data" means the data set's own policy
    patience: int


RECIPES = {
    # small nets from scratch: quick, little regularisation
    "lesson": Recipe(15, 64, 3e-3, "adamw", 1e-4, 1, 0.0, "data", 0),
    # big nets from scratch on small data: longer, more weight decay and label smoothing
    "scratch": Recipe(30, 64, 2e-3, "adamw", 0.05, 2, 0.1, "data", 0),
    # pretrained, only the head trains on cached features: many cheap epochs
    "frozen": Recipe(30, 64, 1e-3, "adamw", 1e-4, 1, 0.1, "none", 0),
    # pretrained, everything trains (backbone at a lower rate, see --backbone-lr-scale)
    "finetune": Recipe(8, 32, 1e-3, "adamw", 1e-4, 1, 0.1, "data", 0),
}


def recipe_name(model: str, pretrained: bool, freeze: str) -> str:
    if get_model_entry(model).family == "lesson" and not pretrained:
        return "lesson"
    if not pretrained:
        return "scratch"
    return "frozen" if freeze == "backbone" else "finetune"


def default_preprocessing(
    model: str, data: DataSplits, pretrained: bool, input_size: int | None = None
) -> Preprocessing:
    """The eval preprocessing a model trains with (and is deployed with, through its card).

    Lesson models: the data's native size and colour with the training set's mean/std (with or
    without weights: their weights are our own checkpoints, not ImageNet's).
    Pretrained torchvision models: ImageNet's resize 256 -> crop 224, RGB, ImageNet mean/std.
    torchvision models from scratch: RGB at max(native, 32) (nets that downsample 32x need 32).
    `input_size` overrides the size; mixed-size folders get a short-side resize and centre crop.
    """
    family = get_model_entry(model).family
    stats = data.mean_std()
    if family == "lesson":
        color = data.color
        mean, std = stats if stats else (IMAGENET_MEAN, IMAGENET_STD)
        size = input_size or (max(data.size) if data.size else 64)
    else:
        color = "RGB"
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if pretrained or not stats else stats
        size = input_size or (224 if pretrained else max(max(data.size) if data.size else 224, 32))
    if len(mean) == 1 and color != "GRAY":
        mean, std = mean * 3, std * 3
    # Fixed-size data is resized straight to the input (ImageNet weights keep ImageNet's
    # resize-and-crop); mixed sizes keep their aspect ratio: short-side resize, centre crop.
    if data.size and (family == "lesson" or not pretrained):
        resize = None
    else:
        resize = round(size * 256 / 224)
    return Preprocessing((size, size), resize, tuple(mean), tuple(std), color)
