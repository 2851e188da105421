"""Data specs: splits, IDX files, class folders, unreadable files and one-line errors."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from deploy.errors import EdgevisionError
from train.data import load_data, read_idx


def test_digits_split_is_stratified_seeded_and_disjoint() -> None:
    a, b = load_data("digits", seed=0), load_data("digits", seed=0)
    assert (len(a.train), len(a.val), len(a.test)) == (1257, 270, 270)
    assert a.color == "GRAY" and a.size == (8, 8) and a.class_names == [str(i) for i in range(10)]
    assert a.train.images.dtype.is_floating_point is False and int(a.train.images.max()) <= 255
    assert bool((a.test.images == b.test.images).all())
    counts = np.bincount(a.test.labels.numpy(), minlength=10)
    assert counts.min() >= 25 and counts.max() <= 30  # stratified: ~27 per class
    other = load_data("digits", seed=1)
    assert not bool((other.test.labels == a.test.labels).all())


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_with_only_t10k_images_is_split_80_20(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (500, 28, 28))
    labels = np.arange(500) % 10
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, compress)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, compress)
    data = load_data(f"idx:{tmp_path}")
    assert len(data.test) == 100 and len(data.train) + len(data.val) == 400
    assert data.size == (28, 28) and data.train.images.shape[1:] == (1, 28, 28)
    assert read_idx(next(tmp_path.glob("t10k-labels*"))).tolist()[:3] == [0, 1, 2]


def test_idx_truncated_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + (9).to_bytes(4, "big") * 3 + b"\0" * 10)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (9).to_bytes(4, "big") + b"\0" * 9)
    with pytest.raises(EdgevisionError, match="truncated"):
        load_data(f"idx:{tmp_path}")


def make_tree(root: Path, classes: dict[str, int], size: tuple[int, int] = (20, 30)) -> None:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            cv2.imwrite(str(root / name / f"{i}.png"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def test_folder_with_train_and_val(tmp_path: Path) -> None:
    make_tree(tmp_path / "train", {"cat": 4, "dog": 3})
    make_tree(tmp_path / "val", {"cat": 2, "dog": 2}, size=(41, 17))
    data = load_data(f"folder:{tmp_path}")
    assert data.class_names == ["cat", "dog"] and data.test is None and data.size is None
    assert (len(data.train), len(data.val)) == (7, 4)
    image, label = data.val[0]
    assert tuple(image.shape) == (3, 41, 17) and label == 0


def test_plain_class_tree_is_split_and_corrupt_files_are_skipped_with_one_warning(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": 10, "b": 10})
    (tmp_path / "a" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "b" / "empty.png").write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_data(f"folder:{tmp_path}")
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert messages == [messages[0]] and "skipped 2 unreadable" in messages[0]
    assert len(data.train) + len(data.val) + len(data.test) == 20


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    make_tree(tmp_path / "train", {"cat": 2})
    (tmp_path / "train" / "dog").mkdir()
    with pytest.raises(EdgevisionError, match=r"dog holds no images"):
        load_data(f"folder:{tmp_path}")


def test_unknown_spec_lists_the_valid_ones() -> None:
    with pytest.raises(EdgevisionError, match=r"unknown data spec 'imagenet'.*digits.*folder:PATH"):
        load_data("imagenet")


def test_missing_paths_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(EdgevisionError, match="data folder not found"):
        load_data(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(EdgevisionError, match="IDX folder not found"):
        load_data(f"idx:{tmp_path / 'nope'}")


def test_torchvision_set_offline_names_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(EdgevisionError, match="--data-root"):
        load_data("mnist", data_root=tmp_path)
