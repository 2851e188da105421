"""The tested dependency ranges: constraints/lowest.txt pins pyproject's lower bounds, every range has an
upper bound, and constraints/lock.txt pins every package, the exact pins of pyproject among them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[2]
TORCH_FREE = ("runtime", "gui", "bench", "dev")


def requirements(extras) -> list[str]:
    """The requirements of the core and of `extras` (None: every extra), environment markers cut off
    (a marker's `==` is no pin and no upper bound)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    found = list(project["dependencies"])
    for extra, listed in project["optional-dependencies"].items():
        if extras is None or extra in extras:
            found += [item for item in listed if not item.startswith("edgevision[")]
    return [item.split(";")[0].strip() for item in found]


def pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {name.lower(): version for name, version in (line.split("==") for line in lines)}


def test_lowest_pins_the_lower_bounds_of_the_torch_free_extras():
    lowest = pins(REPO / "constraints" / "lowest.txt")
    for requirement in requirements(TORCH_FREE):
        name, bound = re.match(r"([\w.-]+)>=([\w.]+)", requirement).groups()
        assert lowest[name.lower()].startswith(bound), (requirement, lowest.get(name.lower()))


def test_every_range_has_an_upper_bound():
    for requirement in requirements(None):
        assert "==" in requirement or "<" in requirement, requirement


def test_lock_pins_every_requirement_and_keeps_the_exact_pins():
    lock = pins(REPO / "constraints" / "lock.txt")
    for requirement in requirements(None):
        name = re.match(r"[\w.-]+", requirement).group().lower()
        if name in ("tensorrt", "onnxruntime-gpu"):  # CUDA machines only; not in the CPU lock
            continue
        assert name in lock, requirement
        if "==" in requirement:
            assert requirement == f"{name}=={lock[name]}", requirement


def test_the_jetson_extra_leaves_opencv_onnxruntime_and_tensorrt_to_jetpack():
    """A pip OpenCV would shadow JetPack's GStreamer build in a --system-site-packages venv (csi://
    then fails), PyPI's onnxruntime has no CUDA for Jetson, and a pip TensorRT would shadow
    JetPack's: neither the `jetson` extra nor the core it comes with installs any of them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = project["optional-dependencies"]["jetson"] + project["dependencies"]
    assert not any(item.startswith("edgevision[") for item in listed)  # no other extra pulled in
    names = [re.match(r"[\w.-]+", item).group().lower() for item in listed]
    assert "numpy" in names and not [name for name in names if name.startswith(("opencv", "onnxruntime", "tensorrt"))]


# Extras that install the same module from different wheels: one environment takes one of each group.
SAME_MODULE = {"cv2": ("opencv-python", "opencv-python-headless"), "onnxruntime": ("onnxruntime", "onnxruntime-gpu")}


def extras_of(extra: str) -> set[str]:
    """`extra` and every extra it names (`all` -> runtime, train, ...)."""
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    found = {extra}
    for item in listed[extra]:
        if item.startswith("edgevision["):
            for inner in item[len("edgevision["):].rstrip("]").split(","):
                found |= extras_of(inner.strip())
    return found


def test_all_installs_one_wheel_per_module():
    wheels = {re.match(r"[\w.-]+", item).group().lower() for item in requirements(extras_of("all"))}
    for module, owners in SAME_MODULE.items():
        assert len(wheels & set(owners)) <= 1, (module, sorted(wheels & set(owners)))
    assert not {"gpu", "gui"} & extras_of("all")  # each replaces runtime, in its own environment


def test_gpu_replaces_runtime_with_onnxruntime_gpu():
    def names(extra):
        return {re.match(r"[\w.-]+", item).group().lower() for item in requirements((extra,))}

    assert names("gpu") - names("runtime") == {"onnxruntime-gpu"}
    assert names("runtime") - names("gpu") == {"onnxruntime"}
