"""`edgevision show-data SPEC --out grid.png`: a look at the data before training on it.

The images are read as training reads them (`train.data.load_data`, the same split for the same
split seed) and drawn as they are, before any preprocessing: one row per class, a few images of
each picked at random with `--seed` (the same picture for the same seed), the class name under
each image.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

import numpy as np

from deploy.cli_util import CommandParser, Subcommand, run_subcommand
from deploy.data_spec import SPEC_FORMS
from deploy.errors import EdgevisionError

logger = logging.getLogger("edgevision.train")

SPLITS = ("train", "val", "test", "all")


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision show-data",
        description="Draw a grid of a data set's images with their class names, as training reads them.",
        examples=[
            "edgevision show-data digits --out grid.png",
            "edgevision show-data folder:../shared/data/cats_vs_dogs --split val --per-class 6 --out cats.png",
            "edgevision show-data cifar10 --data-root ../shared/data --per-class 4 --seed 1 --out cifar.png",
        ],
    )
    parser.add_argument("data", metavar="SPEC", help=f"the data, as --data of train: {', '.join(SPEC_FORMS)}")
    parser.add_argument("--out", default="grid.png", help="the PNG to write (default grid.png)")
    parser.add_argument("--split", choices=SPLITS, default="train",
                        help="which split to draw from, drawn as training draws it (default train)")
    parser.add_argument("--per-class", type=int, default=8, help="images of each class (default 8)")
    parser.add_argument("--max-classes", type=int, default=20,
                        help="draw the first N classes only (default 20; 0: all)")
    parser.add_argument("--seed", type=int, default=0, help="which images are picked (default 0)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="the seed the split is drawn with: train's --seed (default 0)")
    parser.add_argument("--data-root", help="where torchvision data sets are kept or downloaded to")
    parser.add_argument("--no-labels", action="store_true", help="draw the images without their class names")
    return parser


def pick_per_class(labels: np.ndarray, classes: list[int], per_class: int, seed: int) -> list[int]:
    """Up to `per_class` indices of each class in `classes` (in that order), picked at random with
    `seed` and kept in the data set's order within a class: the same indices for the same seed."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in classes:
        members = np.flatnonzero(labels == label)
        if len(members) > per_class:
            members = np.sort(rng.choice(members, per_class, replace=False))
        chosen += members.tolist()
    return chosen


def split_of(data, split: str, spec: str):
    """One split of a loaded `train.data.DataSplits` ("all": every split in turn)."""
    from torch.utils.data import ConcatDataset

    if split == "all":
        parts = [s for s in (data.train, data.val, data.test) if s is not None]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)
    dataset = getattr(data, split)
    if dataset is None:
        raise EdgevisionError(f"{spec} has no {split} split; use --split train, val or all")
    return dataset


def targets_of(dataset) -> np.ndarray:
    parts = getattr(dataset, "datasets", [dataset])
    return np.concatenate([np.asarray(part.targets, dtype=np.int64) for part in parts])


def show_data(
    spec: str,
    out: str | os.PathLike,
    split: str = "train",
    per_class: int = 8,
    seed: int = 0,
    split_seed: int = 0,
    data_root: str | None = None,
    labels: bool = True,
    max_classes: int = 20,
):
    """Write the grid of `spec`'s `split` to `out`; returns the `train.gallery.Grid`."""
    from deploy.atomic import check_writable
    from train.data import load_data
    from train.gallery import Tile, as_picture, draw_grid, thumbnail

    if per_class < 1:
        raise EdgevisionError(f"--per-class must be at least 1, not {per_class}")
    if max_classes < 0:
        raise EdgevisionError(f"--max-classes must be 0 (all) or more, not {max_classes}")
    check_writable(out, "--out")
    data = load_data(spec, data_root, split_seed)
    dataset = split_of(data, split, spec)
    targets = targets_of(dataset)
    present = [c for c in range(len(data.class_names)) if (targets == c).any()]
    shown = present[:max_classes] if max_classes else present
    if len(shown) < len(present):
        logger.info(f"drawing {len(shown)} of {len(present)} classes (--max-classes 0 draws all)")
    indices = pick_per_class(targets, shown, per_class, seed)
    columns = min(per_class, max(int((targets == c).sum()) for c in shown))
    places: list = []  # one row per class: a class with fewer images leaves the rest of its row empty
    for label in shown:
        row = [Tile(thumbnail(as_picture(dataset[i][0])), data.class_names[label]) for i in indices
               if targets[i] == label]
        places += row + [None] * (columns - len(row))
    title = f"{data.spec}: {split} split, {len(indices)} images"
    grid = draw_grid(out, places, columns, title=title, captions=labels)
    logger.info(f"wrote {out} ({len(indices)} images of {len(shown)} classes from the {split} split of {data.spec})")
    return grid


@dataclass(frozen=True)
class ShowDataSpec:
    """`edgevision show-data`'s options (see `build_parser`), filled by `deploy.cli_util.run_subcommand`."""

    data: str
    out: str = "grid.png"
    split: str = "train"
    per_class: int = 8
    seed: int = 0
    split_seed: int = 0
    data_root: str | None = None
    no_labels: bool = False
    max_classes: int = 20


def show_data_command(spec: ShowDataSpec) -> int:
    show_data(spec.data, spec.out, spec.split, spec.per_class, spec.seed, spec.split_seed, spec.data_root,
              labels=not spec.no_labels, max_classes=spec.max_classes)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`["show-data", *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    return run_subcommand(argv, {"show-data": Subcommand(build_parser, show_data_command, spec=ShowDataSpec)})


if __name__ == "__main__":
    sys.exit(main(["show-data", *sys.argv[1:]]))
