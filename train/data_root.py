"""The data folder: where named data sets are found (and downloaded to), without torch.

`--data-root DIR`, else `$EDGEVISION_DATA`, else `~/.cache/edgevision/data` (`$EDGEVISION_DATA_ROOT`
is read as an older name of the same variable). One folder, one meaning: it is laid out like the
offline copy of the project's data,

    DIR/mnist/            t10k-*/train-* IDX files (gzip or not)
    DIR/fashion-mnist/    the same for Fashion-MNIST
    DIR/cifar10/          test/<class>/*.jpg and train/<class>/*.jpg, or train.tar.gz holding train/
    DIR/cats_vs_dogs/     train/<class>/* and val/<class>/* (a class-folder tree)

and a named set that has no such copy there is downloaded into DIR by torchvision (its own
layout: DIR/MNIST/raw, DIR/cifar-10-batches-py), where the next run finds it.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "EDGEVISION_DATA"
OLD_ENV = "EDGEVISION_DATA_ROOT"
# named set -> its folder in the data folder, as the offline copy names it
LOCAL_FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10"}
HELP = ("the data folder: named sets are read from DIR/mnist, DIR/cifar10, ... when there (IDX files, "
        "class folders) and downloaded into DIR otherwise (default: $EDGEVISION_DATA or ~/.cache/edgevision/data)")


def data_root(option: str | os.PathLike | None = None) -> Path:
    """The data folder for `--data-root option` (None: the environment's, then the default)."""
    chosen = option or os.environ.get(ENV) or os.environ.get(OLD_ENV)
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "edgevision" / "data"
