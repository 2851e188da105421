"""Shared fixtures: where the real data sets are, skips that say why, and a cache of the tests' own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """../shared/data beside the checkout, or $EDGEVISION_DATA."""
    return Path(os.environ.get("EDGEVISION_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    root = shared_root()
    if not root.is_dir():
        pytest.skip(f"real data sets not found at {root} (set EDGEVISION_DATA to ../shared/data)")
    return root


@pytest.fixture
def shared_weights() -> Path:
    path = shared_root().parent / "weights" / "mobilenet_v2_imagenet.pth"
    if not path.is_file():
        pytest.skip(f"ImageNet MobileNetV2 weights not found at {path}")
    return path


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory):
    """What the toolkit caches (the benchmark's measured peak) goes to the tests' own folder, never
    to the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield
