"""What a Jetson says about itself in its files: the L4T release (JetPack's Linux), read without
NVIDIA's tools so that the bench fingerprint and a TensorRT engine's card can record it."""

from __future__ import annotations

import re
from pathlib import Path

TEGRA_RELEASE = "etc/nv_tegra_release"  # e.g. "# R36 (release), REVISION: 4.3, GCID: ..., BOARD: generic, ..."
_RELEASE = re.compile(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")


def l4t_release(root: str | Path = "/") -> str | None:
    """The L4T release as "MAJOR.MINOR.PATCH" (36.x is JetPack 6, 38.x JetPack 7), or None off a
    Jetson or when the file does not read as a release line."""
    try:
        first = (Path(root) / TEGRA_RELEASE).read_text(encoding="utf-8", errors="replace").splitlines()[:1]
    except OSError:
        return None
    match = _RELEASE.search(first[0]) if first else None
    return f"{match.group(1)}.{match.group(2)}" if match else None
