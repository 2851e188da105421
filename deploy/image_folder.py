"""Labelled image files from a class-folder tree, without torch (for parity checks and benchmarks).

Accepts `root/<class>/*.jpg`, or a split tree `root/{train,val,test}/<class>/*.jpg` from which
`split` is taken. The order is sorted and a limit takes an equal share from every class, so a
small sample is still balanced and the same on every machine. Training (`train.data`) scans class
folders with the same two functions, `class_folders` and `image_files`: images anywhere below a
class folder, hidden files and folders left out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from deploy.errors import EdgevisionError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
SPLITS = ("train", "val", "test")


def _hidden(path: Path, below: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(below).parts)


def class_folders(root: Path) -> list[Path]:
    """The class folders of `root`, sorted by name (hidden ones left out)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_files(folder: Path) -> list[Path]:
    """Image files anywhere below `folder`, sorted; hidden files and folders left out."""
    return sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p, folder) and p.is_file()
    )


def has_split_folders(root: str | Path) -> bool:
    """Whether `root` is a split tree (train/, val/ or test/ inside) rather than plain class folders."""
    return any((Path(root) / name).is_dir() for name in SPLITS)


def class_root(root: str | Path, split: str = "val") -> Path:
    """The folder whose sub-folders are the classes: `root/split` in a split tree, else `root`."""
    root = Path(root)
    if not root.is_dir():
        raise EdgevisionError(f"image folder not found: {root}")
    if has_split_folders(root):
        if not (root / split).is_dir():
            raise EdgevisionError(f"{root} has no {split}/ split")
        return root / split
    return root


def list_labelled_images(
    root: str | Path, split: str = "val", limit: int | None = None
) -> tuple[list[tuple[Path, int]], list[str]]:
    """[(path, class index)] and the sorted class names; `limit` keeps a balanced subset."""
    base = class_root(root, split)
    classes = [p.name for p in class_folders(base)]
    if not classes:
        raise EdgevisionError(f"{base} has no class folders")
    per_class: list[list[Path]] = []
    for name in classes:
        files = image_files(base / name)
        if not files:
            raise EdgevisionError(f"class folder {base / name} has no images")
        per_class.append(files)
    if limit is not None:
        share = max(1, limit // len(classes))
        per_class = [files[:share] for files in per_class]
    items = [(path, index) for index, files in enumerate(per_class) for path in files]
    if limit is not None:
        items = items[:limit]  # more classes than `limit`: one image from each of the first `limit`
    return items, classes


def tree_fingerprint(root: str | Path) -> str:
    """sha256 over the sorted relative paths and sizes of the files below `root` (hidden ones left
    out): recognises a data set wherever it lies, without reading its images. A model card keeps it
    instead of the training machine's path (`ModelCard.dataset_info["sha256"]`)."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if not _hidden(p, root) and p.is_file()):
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()
