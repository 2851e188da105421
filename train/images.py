"""Labelled images of a `--data` spec as the runtime reads them: for bench's top-1 and export's parity check.

Torch is imported only when it is needed. A class-folder tree gives image files and digits gives
in-memory images without torch (`deploy.data_spec`); the other named sets and IDX files come
from `train.data`'s loaders, the same splits training drew, when torchvision is installed.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from deploy.data_spec import DataSpec, Item, balanced_first, labelled_images, parse_data_spec
from deploy.errors import EdgevisionError


def labelled_items(data: str | DataSpec, split: str = "val", limit: int | None = None,
                   seed: int = 0) -> tuple[list[Item], list[str]]:
    """[(image file or OpenCV image, class index)] of one split of `data`, class-balanced up to
    `limit`, and the class names; `seed` draws a named set's split as training drew it."""
    spec = data if isinstance(data, DataSpec) else parse_data_spec(data)
    if spec.kind == "folder" or spec.name == "digits" or importlib.util.find_spec("torchvision") is None:
        return labelled_images(spec, split, limit, seed)
    from train.data import load_data, opencv_images

    splits = load_data(str(spec), seed=seed)
    dataset = getattr(splits, split, None) if split in ("train", "val", "test") else None
    if dataset is None:
        raise EdgevisionError(f"--data {spec} has no {split} split")
    labels = np.asarray(dataset.targets)
    index = balanced_first(labels, limit)
    return list(zip(opencv_images(dataset, index), labels[index].tolist(), strict=True)), list(splits.class_names)
