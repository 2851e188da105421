"""Where a report's numbers come from: when (UTC), the command line, the images scored (a name and
a fingerprint) and the versions of edgevision, Python, numpy, OpenCV and every runtime the rows used.

Versions come from the installed packages' metadata: nothing is imported for its version (torch
alone takes seconds). `report.json` keeps this under "provenance"; reports written before have none.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shlex
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from benchmarks.data import scored_items
from benchmarks.rows import Row
from deploy.data_spec import parse_data_spec
from deploy.image_folder import has_split_folders
from deploy.version import __version__

CORE_MODULES = {"numpy": "numpy", "opencv": "cv2"}  # shown name -> module
HEAVY = ("torch", "torchvision", "executorch")  # never imported just to read a version


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second: 2026-12-02T12:37:32Z."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def command_line(argv: Sequence[str] | None = None, prog: str = "edgevision") -> str:
    """The command as a shell would take it back: `prog` and `argv` (what a subcommand's main got,
    its name first) shell-quoted; without `argv`, this process's own command line."""
    if argv is not None:
        return shlex.join([prog, *argv])
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else prog
    if program == "__main__.py":  # python -m edgevision ...
        program = f"python -m {Path(sys.argv[0]).parent.name}"
    return " ".join([program, shlex.join(sys.argv[1:])]).strip()


def images_fingerprint(images: Iterable[str | os.PathLike | np.ndarray], root: str | os.PathLike | None = None) -> str:
    """sha256 over the images scored, in any order: for a file, its path (relative to `root`, else
    to the folder above the class folders: `cat/1.png`) and size, without reading it (as
    `deploy.image_folder.tree_fingerprint` does for a whole tree), so the same set gives the same
    hash wherever it lies; for an image in memory (a named set's), its shape, type and bytes."""
    images = list(images)
    lines = [f"{a.shape} {a.dtype} {hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}"
             for a in images if isinstance(a, np.ndarray)]
    paths = [Path(p).absolute() for p in images if not isinstance(p, np.ndarray)]
    if paths:
        base = Path(root).absolute() if root is not None else None
        if base is None or not all(p.is_relative_to(base) for p in paths):
            base = Path(os.path.commonpath([p.parent.parent for p in paths]))
        lines += [f"{p.relative_to(base).as_posix()}\0{p.stat().st_size}" for p in paths]
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(f"{line}\n".encode())
    return digest.hexdigest()


def data_provenance(name: str, images: Sequence[str | os.PathLike | np.ndarray], classes: int,
                    root: str | os.PathLike | None = None, split: str | None = None) -> dict:
    """What was scored: the data as named on the command line, its split, how many images of
    how many classes, and their fingerprint."""
    return {"name": name, **({"split": split} if split else {}), "images": len(images), "classes": classes,
            "sha256": images_fingerprint(images, root)}


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def package_version(module: str) -> str | None:
    """The installed version of the package that provides `module` ("cv2" -> opencv-python's),
    with the distribution's name where it is not the module's: "1.20.1 (onnxruntime-gpu)".
    A module without package metadata (a system TensorRT) is imported for its __version__,
    unless it is a heavy one; None when it is not installed."""
    for name in _distributions().get(module, []):
        if name.lower() == "edgevision":  # one of our own packages (train, deploy, ...)
            return None
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        return version if name.lower().replace("_", "-") == module.lower() else f"{version} ({name})"
    if module in HEAVY or importlib.util.find_spec(module) is None:
        return None
    try:
        return str(getattr(__import__(module), "__version__", "unknown"))
    except Exception:  # a broken install has no version to report
        return None


def runtime_versions(backends: Iterable[str]) -> dict[str, str]:
    """edgevision, Python, numpy, OpenCV and the libraries of each backend named (those installed)."""
    from deploy.backends import backend_entry, list_backends

    versions = {"edgevision": __version__, "python": platform.python_version()}
    for shown, module in CORE_MODULES.items():
        versions[shown] = package_version(module) or "not installed"
    for backend in dict.fromkeys(b for b in backends if b in list_backends()):
        for module in backend_entry(backend).requires:
            version = package_version(module)
            if version is not None:
                versions.setdefault(module, version)
    return versions


def run_provenance(rows: list[Row], data: dict | None = None, argv: Sequence[str] | None = None) -> dict:
    """The provenance of a run whose rows are `rows`: `data` from `data_provenance` (None: nothing
    scored), `argv` as `command_line` takes it."""
    return {"date": utc_now(), "command": command_line(argv), "data": data,
            "versions": runtime_versions(r.backend for r in rows)}


def labelled_data(data: str | os.PathLike | None, split: str = "val", limit: int | None = None) -> dict | None:
    """`data_provenance` of the images a bench run scores for `--data`, `--split` and `--limit`
    (`benchmarks.data.scored_items`, the run's own listing); the split is left out for a
    plain class-folder tree, which has none."""
    if data is None:
        return None
    items, classes = scored_items(data, split, limit)
    spec = parse_data_spec(str(data))
    plain = spec.kind == "folder" and not has_split_folders(spec.path)
    return data_provenance(str(data), [image for image, _ in items], len(classes), None, None if plain else split)


def data_text(data: dict | None) -> str:
    if not data:
        return "none: timed on a synthetic image, nothing scored"
    split = f", split {data['split']}" if data.get("split") else ""
    return (f"{data.get('name', '?')}{split}: {data.get('images', '?')} images of {data.get('classes', '?')} classes, "
            f"sha256 {data.get('sha256', '?')}")


NOT_RECORDED = "not recorded"


def provenance_pairs(provenance: dict | None) -> list[tuple[str, str]]:
    """The provenance as (key, text) pairs to show, always the same keys; what a report does not
    hold (one written before reports carried provenance) is "not recorded"."""
    found = provenance or {}
    versions = found.get("versions") or {}
    return [
        ("date (UTC)", found.get("date") or NOT_RECORDED),
        ("command", found.get("command") or NOT_RECORDED),
        ("data", data_text(found["data"]) if "data" in found else NOT_RECORDED),
        ("versions", ", ".join(f"{name} {version}" for name, version in versions.items()) or NOT_RECORDED),
    ]
