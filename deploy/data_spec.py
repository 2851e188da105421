"""`--data SPEC`, the one meaning of `--data` in every command that reads data, without torch.

    digits | mnist | fashion-mnist | cifar10    a named set
    folder:PATH | PATH                          a class-folder tree: PATH/<class>/* or PATH/{train,val,test}/<class>/*
    idx:DIR                                     MNIST-format IDX files (train-*/t10k-*)

A name wins over a folder of the same name (write ./digits or folder:digits for the folder).
`parse_data_spec` checks what can be checked without reading the images; the loaders (training's
`train.data`, the runtime's `labelled_images`) check the rest.

The split of a named set is drawn here, by index, for training and the runtime alike
(`split_three`, `carve_val`): `edgevision train`, `eval` and `bench` see the same images in the
same split for the same seed. sklearn's stratified split draws it, imported when it is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.errors import EdgevisionError
from deploy.image_folder import class_folders, has_split_folders, list_labelled_images

NAMED_SETS = ("digits", "mnist", "fashion-mnist", "cifar10")
SPEC_FORMS = (*NAMED_SETS, "folder:PATH", "idx:DIR", "PATH")
DIGITS_FRACTIONS = (0.15, 0.15)  # test, val: digits' 1,797 images split 70/15/15
SKLEARN_HINT = "pip install scikit-learn (the train extra, edgevision[train], has it)"


@dataclass(frozen=True)
class DataSpec:
    """A parsed `--data`: a named set (`name`) or a folder (`path`) of kind "folder" or "idx"."""

    kind: str  # "named" | "folder" | "idx"
    name: str = ""
    path: Path | None = None

    def __str__(self) -> str:
        return self.name if self.kind == "named" else f"{self.kind}:{self.path}"


def parse_data_spec(text: str) -> DataSpec:
    """`--data` text -> DataSpec, or a one-line error naming what is wrong with it."""
    text = str(text).strip()
    if not text:
        raise EdgevisionError(f"--data is empty; give one of {', '.join(SPEC_FORMS)}")
    if text in NAMED_SETS:
        return DataSpec("named", name=text)
    kind, sep, rest = text.partition(":")
    if sep and kind in ("folder", "idx"):
        if not rest:
            raise EdgevisionError(f"--data {text} names no folder: write {kind}:PATH")
        return _checked(DataSpec(kind, path=Path(rest).expanduser()))
    path = Path(text).expanduser()
    if path.exists():
        return _checked(DataSpec("folder", path=path))
    if sep and len(kind) > 1:  # mnist:x, foo:bar (a Windows drive letter is one character)
        raise EdgevisionError(f"unknown data spec {text!r}: {kind}: is not a kind of data; "
                              f"choose from {', '.join(SPEC_FORMS)}")
    if "/" in text or text.startswith((".", "~")):
        raise EdgevisionError(f"data folder not found: {text}")
    raise EdgevisionError(f"unknown data spec {text!r}: no named set and no folder of that name; "
                          f"choose from {', '.join(SPEC_FORMS)}")


def _checked(spec: DataSpec) -> DataSpec:
    path = spec.path
    if not path.exists():
        raise EdgevisionError(f"{'IDX' if spec.kind == 'idx' else 'data'} folder not found: {path}")
    if not path.is_dir():
        raise EdgevisionError(f"--data {path} is not a folder (a file, FIFO or device)")
    if spec.kind == "folder" and not has_split_folders(path) and not class_folders(path):
        raise EdgevisionError(f"{path} is not a class-folder tree: expected {path}/<class>/<images> "
                              f"or {path}/train/<class>/<images>")
    return spec


# --- splits by index (training and the runtime draw the same) ---------------------------


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, taken) with `fraction` of each class taken, reproducible for a seed."""
    try:
        from sklearn.model_selection import train_test_split
    except ModuleNotFoundError:
        raise EdgevisionError(f"splitting the data needs scikit-learn: {SKLEARN_HINT}") from None
    indices = np.arange(len(labels))
    try:
        kept, taken = train_test_split(indices, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as exc:  # too few images for a stratified split: one line naming the counts
        counts = np.bincount(np.unique(labels, return_inverse=True)[1])
        raise EdgevisionError(
            f"too few images to split {fraction:.0%} off per class: {len(labels)} images in {len(counts)} classes "
            f"(fewest {counts.min()} in a class); add images, or give train/ and val/ folders ({exc})"
        ) from None
    return np.sort(kept), np.sort(taken)


def split_three(labels: np.ndarray, test_fraction: float, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of the train, val and test splits: test first, then val from the rest, each stratified."""
    labels = np.asarray(labels)
    rest, test = stratified_split(labels, test_fraction, seed)
    train, val = stratified_split(labels[rest], val_fraction / (1 - test_fraction), seed)
    return {"train": rest[train], "val": rest[val], "test": test}


def carve_val(labels: np.ndarray, fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of the train and val splits of a training set whose test set is apart."""
    train, val = stratified_split(np.asarray(labels), fraction, seed)
    return {"train": train, "val": val}


# --- digits -------------------------------------------------------------------------------


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 1,797 8x8 digits as uint8 (N, 8, 8) (values 0..16 times 16) and int64 labels."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError:
        raise EdgevisionError(f"--data digits needs scikit-learn: {SKLEARN_HINT}") from None
    digits = load_digits()
    return np.clip(digits.images * 16, 0, 255).astype(np.uint8), digits.target.astype(np.int64)


def digits_splits(seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of digits' train/val/test splits (70/15/15, stratified, seeded) into `digits_arrays()`."""
    _, labels = digits_arrays()
    return split_three(labels, *DIGITS_FRACTIONS, seed)


# --- labelled images for the runtime (bench, export's parity check) -----------------------


Item = tuple[Path | np.ndarray, int]  # an image file or an OpenCV image (HxW gray, HxWx3 BGR), its class index


def balanced_first(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices grouped by class in class order, at most `limit` of them: the first equal share of
    each class, as `deploy.image_folder.list_labelled_images` takes files from class folders."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class = [np.flatnonzero(labels == c) for c in classes]
    if limit is not None:
        share = max(1, limit // max(len(classes), 1))
        per_class = [indices[:share] for indices in per_class]
    chosen = np.concatenate(per_class) if per_class else np.zeros(0, np.int64)
    return chosen[:limit] if limit is not None else chosen


def in_memory_items(images: np.ndarray | list[np.ndarray], labels: np.ndarray, limit: int | None) -> list[Item]:
    """(image, label) pairs of in-memory images, class-balanced as folders are (`balanced_first`)."""
    return [(images[i], int(labels[i])) for i in balanced_first(labels, limit)]


def labelled_images(spec: DataSpec, split: str = "val", limit: int | None = None,
                    seed: int = 0) -> tuple[list[Item], list[str]]:
    """[(image file or OpenCV image, class index)] of one split, and the class names, without torch.

    A class-folder tree gives its `split` folder (the whole tree when it has none); digits its
    split for `seed` (the one training drew). The other named sets and IDX files are read by the
    training package (`train.data`); here they are a one-line error saying how to get them.
    """
    if spec.kind == "folder":
        return list_labelled_images(spec.path, split, limit)
    if spec.name == "digits":
        if split not in ("train", "val", "test"):
            raise EdgevisionError(f"digits has train, val and test splits, not {split!r}")
        images, labels = digits_arrays()
        index = digits_splits(seed)[split]
        return in_memory_items(images[index], labels[index], limit), [str(i) for i in range(10)]
    raise EdgevisionError(f"reading --data {spec} needs the train extra (torch, torchvision: "
                          "pip install edgevision[train]); or write its images into class folders and pass folder:PATH")
