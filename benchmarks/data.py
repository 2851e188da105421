"""The labelled images a bench run scores for `--data`, `--split` and `--limit`, and how they are
named: one listing for the run (`benchmarks.runner`) and for its report's provenance
(`benchmarks.provenance`), so both describe the same images."""

from __future__ import annotations

import os

from deploy.confidence import split_label
from deploy.data_spec import Item, parse_data_spec
from deploy.image_folder import has_split_folders
from train.images import labelled_items


def images_source(data: str | os.PathLike, split: str) -> str:
    """Where the scored images of `data` (a `--data` spec) come from: "val split of digits", "val
    split of folder:pets", or "folder:digits_test" for a class-folder tree without splits."""
    spec = parse_data_spec(str(data))
    if spec.kind == "folder" and not has_split_folders(spec.path):
        return f"folder:{spec.path.name}"
    return split_label(split, str(spec))


def scored_items(data: str | os.PathLike | None, split: str = "val",
                 limit: int | None = None) -> tuple[list[Item], list[str]]:
    """The labelled images a run scores for `data` (a `--data` spec: files of a class-folder tree,
    in-memory images of a named set's split drawn with seed 0, training's default), `split` and
    `limit` (none without data) and the class names: one listing for the run and for its report's
    provenance (`benchmarks.provenance`)."""
    return labelled_items(str(data), split, limit) if data else ([], [])
