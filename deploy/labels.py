"""Label files: one class name per line, in output order (blank lines at the end ignored)."""

from __future__ import annotations

import os
from pathlib import Path

from deploy.errors import EdgevisionError


def read_labels(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgevisionError(f"labels file not found: {path}") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise EdgevisionError(f"cannot read labels file {path}: {type(exc).__name__}") from None
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
