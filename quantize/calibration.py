"""Real images for calibration and for the accuracy guard, as preprocessed float32 arrays.

Images come from a training data spec (`train.data`: digits, mnist, cifar10, folder:PATH, ...)
and go through the model card's evaluation preprocessing (`train.transforms.eval_transform`, the
same steps `deploy.preprocess` runs on the device). Calibration draws a class-balanced sample
from the training split; the guard scores on a held-out split (val by default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.atomic import atomic_path
from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing

MIN_CALIBRATION_IMAGES = 8


def balanced_indices(labels: np.ndarray, count: int | None, seed: int = 0) -> np.ndarray:
    """Up to `count` indices, an equal share from each class (drawn at random with `seed`), sorted.

    When a class has fewer images than its share, the rest is filled from the other classes.
    """
    labels = np.asarray(labels)
    if count is None or count >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    share = count // len(classes)
    chosen = [pools[c][:share] for c in classes]
    rest = np.concatenate([pools[c][share:] for c in classes])
    chosen.append(rng.permutation(rest)[: count - sum(len(c) for c in chosen)])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def training_split_seed(card: ModelCard) -> int:
    """The seed `edgevision train` split the data with (the card's `dataset_info`; 0 for an older card):
    any other redraws the split, and the held-out images are no longer held out."""
    seed = card.dataset_info.get("split_seed", 0)
    return seed if isinstance(seed, int) else 0


@dataclass(frozen=True)
class SplitDraw:
    """Which images of a data spec: `limit` class-balanced images (None: all) of `split`, drawn with
    `seed`, of the data `spec` (under `data_root`) split as training split it. `split_seed` must
    match the one training used (`training_split_seed`), so that the held-out split stays held out."""

    spec: str
    split: str
    limit: int | None = None
    seed: int = 0
    split_seed: int = 0
    data_root: str | os.PathLike | None = None


def load_split(
    draw: SplitDraw, preprocessing: Preprocessing, class_names: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images float32 NCHW, labels int64, class names) of the images `draw` names, preprocessed.

    `class_names`, the model's, must be the data's (in order): labels are indices into both.
    """
    import torch

    from train.data import load_data
    from train.transforms import eval_transform

    spec, split, limit, seed = draw.spec, draw.split, draw.limit, draw.seed
    data_root, split_seed = draw.data_root, draw.split_seed
    splits = load_data(spec, data_root=data_root, seed=split_seed)
    if class_names is not None and list(class_names) != list(splits.class_names):
        raise EdgevisionError(f"{spec} has classes {splits.class_names[:5]}..., the model was trained on "
                              f"{list(class_names)[:5]}...")
    dataset = getattr(splits, split, None)
    if dataset is None:
        raise EdgevisionError(f"data {spec!r} has no {split} split")
    labels = np.asarray(dataset.targets)
    index = balanced_indices(labels, limit, seed)
    transform = eval_transform(preprocessing)
    images = []
    with torch.no_grad():
        for i in index:
            image, _ = dataset[int(i)]
            images.append(transform(image).numpy())
    if not images:
        raise EdgevisionError(f"the {split} split of {spec!r} is empty")
    return np.stack(images).astype(np.float32), labels[index].astype(np.int64), list(splits.class_names)


def held_out_images(draw: SplitDraw, count: int) -> list[np.ndarray]:
    """`count` of the images `load_split(draw, ...)` returns, class-balanced, before any
    preprocessing: uint8 (H, W, C) OpenCV arrays (BGR, or one channel), as a camera gives them."""
    from train.data import load_data

    spec, split, limit, seed = draw.spec, draw.split, draw.limit, draw.seed
    data_root, split_seed = draw.data_root, draw.split_seed
    dataset = getattr(load_data(spec, data_root=data_root, seed=split_seed), split, None)
    if dataset is None:
        raise EdgevisionError(f"data {spec!r} has no {split} split")
    labels = np.asarray(dataset.targets)
    index = balanced_indices(labels, limit, seed)
    index = index[balanced_indices(labels[index], count, seed)]
    images = []
    for i in index:
        image = dataset[int(i)][0].permute(1, 2, 0).numpy()  # RGB or gray (C, H, W) -> (H, W, C)
        images.append(np.ascontiguousarray(image[:, :, ::-1] if image.shape[2] == 3 else image))
    return images


def check_calibration_set(labels: np.ndarray, minimum: int = MIN_CALIBRATION_IMAGES, what: str = "calibration") -> None:
    """Fail in one line when a calibration (or evaluation) set is too small or has one class."""
    labels = np.asarray(labels)
    if len(labels) < minimum:
        raise EdgevisionError(f"{what} set too small: {len(labels)} images, need at least {minimum}")
    present = np.unique(labels)
    if len(present) < 2:
        raise EdgevisionError(
            f"{what} set has a single class (label {int(present[0])}): its activation ranges would not "
            "represent the other classes; draw images from every class"
        )


def write_calibration(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Save calibration images (float32 NCHW, preprocessed) as `.npy` for a quantizer outside
    edgevision (e.g. NVIDIA Model Optimizer's `--calibration_data`); labels (when given) go to
    `<path>.labels.npy`."""
    path = Path(path)
    if path.suffix != ".npy":
        raise EdgevisionError(f"calibration data file must end in .npy, got {path.name}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(images, dtype=np.float32))
    if labels is not None:
        with atomic_path(f"{path}.labels.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, np.asarray(labels, dtype=np.int64))
    return path
