"""benchmarks.provenance: the images' fingerprint, the command line, the versions of what ran."""

from __future__ import annotations

import shlex
import shutil
import sys

import numpy as np
import pytest

from benchmarks.provenance import command_line, images_fingerprint, labelled_data, runtime_versions


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "a" / "val"
    for name, sizes in (("cat", (10, 20)), ("dog", (30,))):
        (root / name).mkdir(parents=True)
        for index, size in enumerate(sizes):
            (root / name / f"{index}.png").write_bytes(b"x" * size)
    return root


def images(root):
    return sorted(root.rglob("*.png"))


def test_the_fingerprint_is_the_set_wherever_it_lies(tree, tmp_path):
    moved = tmp_path / "elsewhere" / "deeper" / "val"
    shutil.copytree(tree, moved)
    assert images_fingerprint(images(tree), tree) == images_fingerprint(images(moved), moved)
    assert images_fingerprint(images(tree)) == images_fingerprint(reversed(images(moved)))  # order and root: same
    assert images_fingerprint(images(tree)[:2]) != images_fingerprint(images(tree))  # a subset
    (moved / "dog" / "0.png").write_bytes(b"x" * 31)
    assert images_fingerprint(images(tree)) != images_fingerprint(images(moved))  # a changed file
    (moved / "dog" / "0.png").write_bytes(b"x" * 30)
    (moved / "dog" / "0.png").rename(moved / "cat" / "9.png")
    assert images_fingerprint(images(tree)) != images_fingerprint(images(moved))  # another label


def test_labelled_data_names_the_split_of_a_split_tree_only(tree):
    split = labelled_data(tree.parent, "val")
    assert split["name"] == str(tree.parent) and split["split"] == "val"
    assert (split["images"], split["classes"]) == (3, 2)
    plain = labelled_data(tree, limit=2)
    assert "split" not in plain and plain["images"] == 2
    assert split["sha256"] == labelled_data(tree)["sha256"] == images_fingerprint(images(tree))
    assert labelled_data(None) is None


def test_the_command_line_is_shell_quoted_as_run(monkeypatch):
    argv = ["bench", "my model.onnx", "--data", "folder:a b"]
    assert shlex.split(command_line(argv)) == ["edgevision", *argv]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/edgevision", "sweep", "--model", "x y.pt"])
    assert command_line() == "edgevision sweep --model 'x y.pt'"
    monkeypatch.setattr(sys, "argv", ["/src/edgevision/__main__.py", "demo"])
    assert command_line() == "python -m edgevision demo"


def test_versions_name_only_the_runtimes_used_without_importing_torch():
    from importlib import metadata

    before = "torch" in sys.modules
    versions = runtime_versions(["onnxruntime", "onnxruntime", "auto"])
    assert list(versions)[:4] == ["edgevision", "python", "numpy", "opencv"]
    assert versions["onnxruntime"] == metadata.version("onnxruntime") and "torch" not in versions
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    if torch_version:
        assert runtime_versions(["torch"])["torch"] == torch_version
    assert ("torch" in sys.modules) == before  # read from the package metadata, not by importing it


def test_images_in_memory_are_fingerprinted_by_their_pixels():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(3)]
    same = images_fingerprint([image.copy() for image in reversed(images)])
    assert images_fingerprint(images) == same
    images[1][0, 0] ^= 1
    assert images_fingerprint(images) != same
    assert images_fingerprint(images[:2]) != images_fingerprint(images)
