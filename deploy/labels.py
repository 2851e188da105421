"""Label files: one class name per line, in output order (blank lines at the end ignored)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from deploy.errors import EdgevisionError

MAX_LABELS_BYTES = 1 << 20  # as a model card: 1000 ImageNet names are about 30 kB



def read_labels(path: str | os.PathLike) -> list[str]:
    """The names in `path`: a regular UTF-8 file of at most MAX_LABELS_BYTES. A FIFO (whose open waits
    for a writer, beyond SIGTERM) or a device (`/dev/zero` never ends) is refused before it is opened."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise EdgevisionError(f"labels file not found: {path}") from None
    except OSError as exc:
        raise EdgevisionError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise EdgevisionError(f"labels file {path} is {what}")
    if info.st_size > MAX_LABELS_BYTES:
        raise EdgevisionError(f"labels file {path} is {info.st_size} bytes, over the {MAX_LABELS_BYTES} limit")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_LABELS_BYTES + 1)
        if len(data) > MAX_LABELS_BYTES:
            raise EdgevisionError(f"labels file {path} grew past the {MAX_LABELS_BYTES} byte limit while read")
        text = data.decode("utf-8")
    except OSError as exc:
        raise EdgevisionError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise EdgevisionError(f"cannot read labels file {path}: not UTF-8 (byte {exc.start})") from None
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise EdgevisionError(f"labels file {path} is empty")
    if not all(labels):
        raise EdgevisionError(f"labels file {path} has a blank line at line {labels.index('') + 1}")
    return labels


def check_label_count(labels: list[str], num_outputs: int | None, source: str) -> None:
    if num_outputs is not None and len(labels) != num_outputs:
        raise EdgevisionError(f"{source} has {len(labels)} labels, but the model outputs {num_outputs} classes")
