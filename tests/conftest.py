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


@pytest.fixture(autouse=True)
def registries_left_as_found():
    """A test that registers a backend or an export format must undo it (monkeypatch the registry):
    a name left behind changes what every later test sees."""
    before = _registries()
    yield
    after = _registries()
    if not any(key.startswith("format ") for key in before):  # the test imported deploy.export first
        after = {key: value for key, value in after.items() if not key.startswith("format ")}
    assert after == before, f"the test left the registries changed: {sorted(set(after) ^ set(before))}"


def _registries() -> dict[str, object]:
    """Every registered backend and export format, by kind and name (formats only once imported)."""
    import sys

    from deploy import backends

    found: dict[str, object] = {f"backend {name}": entry for name, entry in backends._REGISTRY.items()}
    export = sys.modules.get("deploy.export")
    if export is not None:
        found.update({f"format {name}": fmt for name, fmt in export._FORMATS.items()})
    return found


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny real ONNX classifier (three classes) with its card."""
    pytest.importorskip("onnx", reason="the tiny test models are built with onnx (the export extra)")
    from tests.runtime.onnx_models import make_onnx, tiny_card

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    return make_onnx(path, card=tiny_card(classes=3))
