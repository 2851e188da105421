"""Named recipes: each lesson of "Computer vision with PyTorch" as options of `edgevision train`.

A recipe is data: the data set, the model, its options and only what the lesson changed (epochs,
freezing, a fine-tuning schedule). Everything else comes from the per-model defaults beneath
(`train.recipes`), and any option given on the command line overrides the recipe's
(`edgevision train --recipe mnist-cnn --epochs 5`). Torch-free, so that
`edgevision train --list-recipes` answers at once. docs/recipes.md holds each recipe's measured
accuracy next to the lesson's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from deploy.data_spec import NAMED_SETS
from deploy.errors import EdgevisionError


@dataclass(frozen=True)
class LessonRecipe:
    """`edgevision train --recipe NAME`.

    data: a named set (`mnist`, `cifar10`) or a folder of the data folder (`cats_vs_dogs`: a
      class-folder tree, `DATA_ROOT/cats_vs_dogs`; see `train.data_root`).
    options: other `edgevision train` options by their destination name (`freeze`, `epochs`, ...);
      the from-scratch lessons trained on the images as they are, hence `augment: none`; two MNIST
      recipes take 16 images per step, as the offline copy's 7,200 training images leave few steps
      at the default 64 in 2 to 5 epochs (the choice was made on val top-1).
    lesson: the lesson it reproduces; reported: what that lesson reported (top-1 on its test set).
    """

    name: str
    lesson: str
    reported: str
    data: str
    model: str
    options: dict = field(default_factory=dict)

    def defaults(self) -> dict:
        """The parser defaults this recipe sets (the data is resolved apart: it needs the data folder)."""
        return {"model": self.model, **{k: dict(v) if isinstance(v, dict) else v for k, v in self.options.items()}}


LESSON_RECIPES: dict[str, LessonRecipe] = {recipe.name: recipe for recipe in (
    LessonRecipe("mnist-dense", "a dense network: one linear layer on MNIST's pixels", "about 0.90",
                 "mnist", "dense", {"epochs": 5, "augment": "none"}),
    LessonRecipe("mnist-mlp", "a multilayer network: 784-100-10 on MNIST", "0.964 after 5 epochs",
                 "mnist", "mlp", {"model_options": {"hidden": 100, "hidden_layers": 1}, "epochs": 5, "augment": "none",
                                  "batch_size": 16}),
    LessonRecipe("mnist-cnn", "a convolutional network on MNIST", "0.979 after 2 epochs",
                 "mnist", "cnn", {"epochs": 2, "augment": "none", "batch_size": 16}),
    LessonRecipe("mnist-multilayer-cnn", "a multilayer convolutional network on MNIST", "0.985 after 2 epochs",
                 "mnist", "multilayer-cnn", {"epochs": 2, "augment": "none"}),
    LessonRecipe("cifar10-cnn", "a LeNet-style network on CIFAR-10", "0.523 after 2 epochs",
                 "cifar10", "lenet", {"epochs": 2, "augment": "none"}),
    LessonRecipe("cats-dogs-vgg16", "transfer learning: VGG-16 pretrained on ImageNet, backbone frozen, "
                 "a new head for cats vs dogs", "0.983",
                 "cats_vs_dogs", "vgg16", {"weights": "DEFAULT", "freeze": "backbone"}),
    LessonRecipe("cats-dogs-vgg16-finetune", "transfer learning, then fine-tuning the whole VGG-16",
                 "0.967 (after the frozen 0.983)",
                 "cats_vs_dogs", "vgg16", {"weights": "DEFAULT", "schedule": "two-phase", "head_epochs": 1,
                                           "epochs": 2, "backbone_lr_scale": 0.1}),
    LessonRecipe("cats-dogs-mobilenet", "lightweight networks: MobileNetV2 as a frozen feature extractor",
                 "0.979 after 1 epoch",
                 "cats_vs_dogs", "mobilenet_v2", {"weights": "DEFAULT", "freeze": "backbone", "epochs": 1}),
)}


def get_recipe(name: str) -> LessonRecipe:
    if name not in LESSON_RECIPES:
        raise EdgevisionError(f"unknown recipe {name!r}; choose from {', '.join(LESSON_RECIPES)}")
    return LESSON_RECIPES[name]


def recipe_data(recipe: LessonRecipe, root: Path) -> str:
    """The `--data` spec of `recipe` with the data folder `root`: a named set as it is (found in or
    downloaded into the data folder when read), a folder as `folder:ROOT/NAME`, which must exist."""
    if recipe.data in NAMED_SETS:
        return recipe.data
    folder = root / recipe.data
    if not folder.is_dir():
        raise EdgevisionError(
            f"--recipe {recipe.name} trains on {folder}, which is not there: put the images there as "
            f"train/<class>/ and val/<class>/ (as ../shared/data/{recipe.data}), point --data-root or "
            f"$EDGEVISION_DATA at the folder holding {recipe.data}/, or pass --data folder:PATH"
        )
    return f"folder:{folder}"


def _option_text(name: str, value: object) -> str:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, dict):
        return f"{flag} '{json.dumps(value)}'"
    return f"{flag} {value}"


def recipe_options_text(recipe: LessonRecipe) -> str:
    """The options a recipe stands for, as they would be typed (`--model cnn --epochs 2`)."""
    data = recipe.data if recipe.data in NAMED_SETS else f"folder:DATA_ROOT/{recipe.data}"
    return " ".join(_option_text(name, value) for name, value in
                    {"data": data, "model": recipe.model, **recipe.options}.items())


def recipes_table() -> str:
    """`edgevision train --list-recipes`: one block per recipe."""
    lines = []
    for recipe in LESSON_RECIPES.values():
        lines += [f"{recipe.name}", f"  lesson:   {recipe.lesson}", f"  reported: {recipe.reported}",
                  f"  options:  {recipe_options_text(recipe)}"]
    lines.append("Run one with: edgevision train --recipe NAME [--data-root DIR] [options that override it] "
                 "(docs/recipes.md: our numbers)")
    return "\n".join(lines)
