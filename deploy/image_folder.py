"""Labelled image files from a class-folder tree, without torch (for parity checks and benchmarks).

Accepts `root/<class>/*.jpg`, or a split tree `root/{train,val,test}/<class>/*.jpg` from which
`split` is taken. The order is sorted and a limit takes an equal share from every class, so a
small sample is still balanced and the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

from deploy.errors import EdgevisionError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
SPLITS = ("train", "val", "test")


def class_root(root: str | Path, split: str = "val") -> Path:
    """The folder whose sub-folders are the classes: `root/split` in a split tree, else `root`."""
    root = Path(root)
    if not root.is_dir():
        raise EdgevisionError(f"image folder not found: {root}")
    if any((root / name).is_dir() for name in SPLITS):
        if not (root / split).is_dir():
            raise EdgevisionError(f"{root} has no {split}/ split")
        return root / split
    return root


def list_labelled_images(
    root: str | Path, split: str = "val", limit: int | None = None
) -> tuple[list[tuple[Path, int]], list[str]]:
    """[(path, class index)] and the sorted class names; `limit` keeps a balanced subset."""
    base = class_root(root, split)
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    if not classes:
        raise EdgevisionError(f"{base} has no class folders")
    per_class: list[list[Path]] = []
    for name in classes:
        files = sorted(p for p in (base / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgevisionError(f"class folder {base / name} has no images")
        per_class.append(files)
    if limit is not None:
        share = max(1, limit // len(classes))
        per_class = [files[:share] for files in per_class]
    items = [(path, index) for index, files in enumerate(per_class) for path in files]
    return items, classes
