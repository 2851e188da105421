"""Data set specs (`--data SPEC`) -> train/val/test data sets of uint8 images and labels.

Every data set here yields `(image, label)` with `image` a uint8 tensor (C, H, W) in its native
colour (1 channel for GRAY, 3 for RGB) and size; the model's preprocessing is applied later by
`train.transforms`. Small sets (digits, MNIST, CIFAR-10, IDX files) live in memory as one uint8
tensor; class-folder trees decode each file when it is read.

Specs (parsed by `deploy.data_spec`, which the runtime shares): digits | mnist | fashion-mnist |
cifar10 | idx:DIR | folder:PATH | PATH (a class-folder tree, as folder:PATH).
"""

from __future__ import annotations

import gzip
import math
import os
import tarfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from deploy.data_spec import NAMED_SETS, carve_val, digits_arrays, digits_splits, parse_data_spec, split_three
from deploy.errors import EdgevisionError, first_line
from deploy.image_folder import IMAGE_SUFFIXES, class_folders, image_files, tree_fingerprint
from train.data_root import LOCAL_FOLDERS
from train.data_root import data_root as data_root_folder


class TensorImages(Dataset):
    """Images held in memory: uint8 (N, C, H, W) and int64 labels (N,)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, indices: np.ndarray) -> TensorImages:
        index = torch.as_tensor(indices, dtype=torch.long)
        return TensorImages(self.images[index], self.labels[index])

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()


class ImageFiles(Dataset):
    """Image files decoded on access (OpenCV) into uint8 RGB or gray (C, H, W) tensors."""

    def __init__(self, samples: list[tuple[str, int]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return decode_rgb(path), label

    def subset(self, indices: np.ndarray) -> ImageFiles:
        return ImageFiles([self.samples[i] for i in indices])

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]


@dataclass
class DataSplits:
    """What a data spec resolves to.

    color: native colour of the images ("GRAY" or "RGB").
    size: native (height, width) when every image has it, else None (folders of mixed sizes).
    augment: the augmentation policy that suits this data (see `train.transforms`).
    """

    train: TensorImages | ImageFiles
    val: TensorImages | ImageFiles
    test: TensorImages | ImageFiles | None
    class_names: list[str]
    color: str
    size: tuple[int, int] | None
    augment: str
    spec: str

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, TensorImages)

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """Per-channel mean/std of the training images on [0, 1], or None when not in memory."""
        if not isinstance(self.train, TensorImages):
            return None
        pixels = self.train.images.float().div_(255).transpose(0, 1).reshape(self.train.images.shape[1], -1)
        mean = tuple(round(float(v), 4) for v in pixels.mean(1))
        std = tuple(round(max(float(v), 1e-3), 4) for v in pixels.std(1))
        return mean, std


def decode_rgb(path: str) -> torch.Tensor:
    """An image file -> uint8 (C, H, W): gray stays 1 channel, colour becomes RGB, alpha dropped."""
    try:
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. more pixels than deploy.limits allows
        image = None
    if image is None:
        raise EdgevisionError(f"cannot decode image {path}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()


def _split_three(full, test_fraction: float, val_fraction: float, seed: int):
    index = split_three(np.asarray(full.targets), test_fraction, val_fraction, seed)
    return full.subset(index["train"]), full.subset(index["val"]), full.subset(index["test"])


def _carve_val(train, val_fraction: float, seed: int):
    index = carve_val(np.asarray(train.targets), val_fraction, seed)
    return train.subset(index["train"]), train.subset(index["val"])


# --- digits -----------------------------------------------------------------------------


def load_digits_splits(seed: int = 0) -> DataSplits:
    """sklearn's 1,797 8x8 digits (values 0..16 -> uint8 x16), split 70/15/15 stratified
    (`deploy.data_spec`: the runtime reads the same images in the same splits)."""
    images, labels = digits_arrays()
    full = TensorImages(torch.from_numpy(images[:, None]), torch.from_numpy(labels))
    index = digits_splits(seed)
    train, val, test = (full.subset(index[name]) for name in ("train", "val", "test"))
    names = [str(i) for i in range(10)]
    return DataSplits(train, val, test, names, "GRAY", (8, 8), "digits", "digits")


# --- IDX files (MNIST format) -----------------------------------------------------------


MAX_IDX_BYTES = 1 << 30  # 20 x MNIST's training images; a bigger set belongs in class folders
IDX_CHUNK = 1 << 20


def _check_idx_size(path: Path, shape: tuple[int, ...], size: int, handle) -> None:
    """Read (and drop) the data after the header, at most one byte more than `size`: refuse a file
    that holds less or more than its header declares before memory is committed to it."""
    found = 0
    while found <= size and (block := handle.read(IDX_CHUNK)):
        found += len(block)
    if found != size:
        detail = f"found {found:,} of {size:,} values" if found < size else "holds more data than that"
        raise EdgevisionError(f"{path} does not match its header {shape}: {detail}")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip or not) -> numpy array, as described at yann.lecun.com/exdb/mnist.

    The header's dimensions are checked against `MAX_IDX_BYTES` before anything is allocated, and the
    data is streamed into the array: memory follows what the file really holds, not what its header
    claims (a 3 MB gzip declaring a huge array once took 7 GB before failing).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            magic = handle.read(4)
            if len(magic) < 4 or magic[:3] != b"\0\0\x08":
                raise EdgevisionError(f"{path} is not an unsigned-byte IDX file")
            ndim = magic[3]
            header = handle.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise EdgevisionError(f"{path} is truncated: its header declares {ndim} dimensions")
            shape = tuple(int.from_bytes(header[4 * i : 4 * i + 4], "big") for i in range(ndim))
            size = math.prod(shape)
            if size > MAX_IDX_BYTES:
                raise EdgevisionError(
                    f"{path} declares {shape}: {size:,} bytes, more than the {MAX_IDX_BYTES:,} an IDX file may hold"
                )
            if opener is gzip.open:  # a gzip can inflate to anything: measure it before allocating
                _check_idx_size(path, shape, size, handle)
                handle.seek(4 + 4 * ndim)
            array = np.empty(size, np.uint8)
            filled = 0
            while filled < size and (block := handle.read(min(IDX_CHUNK, size - filled))):
                array[filled : filled + len(block)] = np.frombuffer(block, np.uint8)
                filled += len(block)
            extra = handle.read(1)
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, a truncated gzip stream
        raise EdgevisionError(f"cannot read IDX file {path}: {first_line(exc)}") from None
    if filled < size:
        raise EdgevisionError(f"{path} is truncated: header says {shape}, found {filled:,} of {size:,} values")
    if extra:
        raise EdgevisionError(f"{path} holds more data than its header's {shape}")
    return array.reshape(shape)


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        if (root / name).is_file():
            return root / name
    return None


def load_idx_splits(root: Path, seed: int = 0, class_names: list[str] | None = None) -> DataSplits:
    """train-*/t10k-* IDX files in `root`.

    With both sets present, train is split into train/val (10 %) and t10k is the test set. With
    only t10k images (../shared/data/mnist), those 10,000 are split 8,000/2,000 stratified and
    seeded, and val is carved from the 8,000.
    """
    if not root.is_dir():
        raise EdgevisionError(f"IDX folder not found: {root}")
    train_x, train_y = _find_idx(root, "train-images-idx3-ubyte"), _find_idx(root, "train-labels-idx1-ubyte")
    test_x, test_y = _find_idx(root, "t10k-images-idx3-ubyte"), _find_idx(root, "t10k-labels-idx1-ubyte")

    def load(images: Path, labels: Path) -> TensorImages:
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or min(x.shape, default=0) < 1:
            raise EdgevisionError(f"{images} and {labels} do not match: {x.shape} images, {y.shape} labels")
        return TensorImages(torch.from_numpy(x.copy())[:, None], torch.from_numpy(y.astype(np.int64)))

    if train_x and train_y:
        train, val = _carve_val(load(train_x, train_y), 0.1, seed)
        test = load(test_x, test_y) if test_x and test_y else None
    elif test_x and test_y:
        full = load(test_x, test_y)
        train, val, test = _split_three(full, 0.2, 0.08, seed)
    else:
        raise EdgevisionError(f"no IDX images in {root} (expected train-images-idx3-ubyte[.gz] or t10k-images-...)")
    num_classes = int(max(train.labels.max(), val.labels.max())) + 1
    names = class_names or [str(i) for i in range(num_classes)]
    size = tuple(train.images.shape[-2:])
    return DataSplits(train, val, test, names, "GRAY", size, "digits", f"idx:{root}")


# --- torchvision data sets --------------------------------------------------------------

TORCHVISION_SETS = {
    # spec: (torchvision class name, augmentation policy)
    "mnist": ("MNIST", "digits"),
    "fashion-mnist": ("FashionMNIST", "digits"),
    "cifar10": ("CIFAR10", "natural"),
}


def load_torchvision_splits(spec: str, root: Path, seed: int = 0) -> DataSplits:
    """MNIST, Fashion-MNIST or CIFAR-10 from `root`, downloaded there when no local copy exists."""
    import torchvision

    class_name, augment = TORCHVISION_SETS[spec]
    cls = getattr(torchvision.datasets, class_name)

    def get(train: bool):
        try:
            return cls(str(root), train=train, download=False)
        except RuntimeError:
            pass
        try:
            return cls(str(root), train=train, download=True)
        except Exception as exc:  # URLError, socket errors, checksum failures: all mean "no data"
            raise EdgevisionError(
                f"{spec} is not in {root} (neither {root / LOCAL_FOLDERS[spec]} nor torchvision's files) and "
                f"downloading it failed ({type(exc).__name__}); put a copy there or pass --data-root DIR"
            ) from None

    def to_tensors(ds) -> TensorImages:
        data = torch.as_tensor(np.asarray(ds.data))
        images = data[:, None] if data.ndim == 3 else data.permute(0, 3, 1, 2)
        return TensorImages(images.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.long))

    full_train, test_set = get(True), get(False)
    train, val = _carve_val(to_tensors(full_train), 0.1, seed)
    test = to_tensors(test_set)
    color = "GRAY" if train.images.shape[1] == 1 else "RGB"
    return DataSplits(
        train, val, test, list(full_train.classes), color, tuple(train.images.shape[-2:]), augment, spec
    )


# --- the offline copies in the data folder (train.data_root) ----------------------------


def _decode_bytes(data: bytes, where: str) -> np.ndarray:
    """Encoded image bytes -> uint8 RGB (H, W, 3)."""
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise EdgevisionError(f"cannot decode image {where}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _same_size_images(items: list[tuple[str, bytes, int]], what: str) -> TensorImages:
    """(name, encoded bytes, label) of images of one size -> one uint8 (N, 3, H, W) tensor in memory."""
    if not items:
        raise EdgevisionError(f"{what} holds no images")
    images = [_decode_bytes(data, name) for name, data, _ in items]
    sizes = {image.shape for image in images}
    if len(sizes) > 1:
        raise EdgevisionError(f"{what} mixes image sizes {sorted(sizes)[:3]}; a named set has one size")
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return TensorImages(stacked, torch.tensor([label for _, _, label in items], dtype=torch.long))


def _folder_items(root: Path, class_names: list[str]) -> list[tuple[str, bytes, int]]:
    return [(str(path), path.read_bytes(), label) for label, name in enumerate(class_names)
            for path in (image_files(root / name) if (root / name).is_dir() else [])]


def _archive_items(archive: Path, class_names: list[str]) -> list[tuple[str, bytes, int]]:
    """The images of `train/<class>/*` in a tar archive, read from it directly: the archive is never
    unpacked, so a read-only data folder serves and no half-written copy can be left behind."""
    labels = {name: index for index, name in enumerate(class_names)}
    items = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if (not member.isfile() or len(parts) < 3 or parts[-3] != "train" or parts[-2] not in labels
                        or Path(member.name).suffix.lower() not in IMAGE_SUFFIXES):
                    continue
                items.append((f"{archive}:{member.name}", tar.extractfile(member).read(), labels[parts[-2]]))
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise EdgevisionError(f"cannot read {archive}: {first_line(exc)}") from None
    return sorted(items, key=lambda item: (item[2], item[0]))


def load_cifar10_copy(folder: Path, seed: int = 0) -> DataSplits:
    """CIFAR-10 as image files: `folder/test/<class>/*` and `folder/train/<class>/*` (or the same
    tree in `folder/train.tar.gz`), decoded into memory; 10 % of train is carved out as val."""
    class_names = [p.name for p in class_folders(folder / "test")]
    if len(class_names) < 2:
        raise EdgevisionError(f"{folder / 'test'} needs a folder per class")
    if (folder / "train").is_dir():
        train_items = _folder_items(folder / "train", class_names)
    elif (archive := next((folder / name for name in ("train.tar.gz", "train.tgz", "train.tar")
                           if (folder / name).is_file()), None)):
        train_items = _archive_items(archive, class_names)
    else:
        raise EdgevisionError(f"{folder} has test/ but neither train/ nor train.tar.gz")
    train, val = _carve_val(_same_size_images(train_items, f"{folder} (train)"), 0.1, seed)
    test = _same_size_images(_folder_items(folder / "test", class_names), f"{folder / 'test'}")
    size = tuple(train.images.shape[-2:])
    return DataSplits(train, val, test, class_names, "RGB", size, TORCHVISION_SETS["cifar10"][1], "cifar10")


def load_named_splits(spec: str, root: Path, seed: int = 0) -> DataSplits:
    """A named set from the data folder `root`: its offline copy (`root/mnist`, `root/cifar10`, see
    `train.data_root`) when there, else torchvision's, downloaded into `root` when missing."""
    local = root / LOCAL_FOLDERS[spec]
    augment = TORCHVISION_SETS[spec][1]
    if spec in ("mnist", "fashion-mnist") and _find_idx(local, "t10k-images-idx3-ubyte"):
        names = None
        if spec == "fashion-mnist":
            import torchvision

            names = list(torchvision.datasets.FashionMNIST.classes)
        data = load_idx_splits(local, seed, names)
        data.augment, data.spec = augment, spec
        return data
    if spec == "cifar10" and (local / "test").is_dir():
        return load_cifar10_copy(local, seed)
    return load_torchvision_splits(spec, root, seed)


# --- class folders ----------------------------------------------------------------------


def _scan(root: Path, class_names: list[str]) -> ImageFiles:
    samples: list[tuple[str, int]] = []
    for label, name in enumerate(class_names):
        folder = root / name
        files = [str(f) for f in image_files(folder)] if folder.is_dir() else []
        if not files:
            raise EdgevisionError(f"class folder {folder} holds no images")
        samples.extend((f, label) for f in files)
    return ImageFiles(samples)


def drop_unreadable(dataset: ImageFiles) -> ImageFiles:
    """Files OpenCV cannot decode are left out, with one warning that counts them."""
    good, bad = [], []
    for path, label in dataset.samples:
        # A 1/8-scale decode is a few times cheaper than a full one and fails on the same files.
        data = np.fromfile(path, dtype=np.uint8)
        try:
            readable = data.size > 0 and cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None
        except cv2.error:  # e.g. more pixels than deploy.limits allows
            readable = False
        (good if readable else bad).append((path, label))
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image file(s), e.g. {bad[0][0]}", stacklevel=2)
    return ImageFiles(good)


def load_folder_splits(root: Path, seed: int = 0) -> DataSplits:
    """`root/{train,val[,test]}/<class>/*` or a plain `root/<class>/*` tree (split 70/15/15)."""
    if not root.is_dir():
        raise EdgevisionError(f"data folder not found: {root}")
    if (root / "train").is_dir():
        class_names = [p.name for p in class_folders(root / "train")]
        if not class_names:
            raise EdgevisionError(f"{root / 'train'} holds no class folders")
        train = drop_unreadable(_scan(root / "train", class_names))
        if (root / "val").is_dir():
            val = drop_unreadable(_scan(root / "val", class_names))
        else:
            train, val = _carve_val(train, 0.15, seed)
        test = drop_unreadable(_scan(root / "test", class_names)) if (root / "test").is_dir() else None
    else:
        class_names = [p.name for p in class_folders(root)]
        if len(class_names) < 2:
            raise EdgevisionError(f"{root} needs train/ and val/ folders or at least two class folders")
        train, val, test = _split_three(drop_unreadable(_scan(root, class_names)), 0.15, 0.15, seed)
    return DataSplits(train, val, test, class_names, "RGB", None, "natural", f"folder:{root}")


def data_root_of(spec: str) -> Path | None:
    """The folder a `folder:`, `idx:` or plain PATH spec names (existing or not), None for a named set."""
    if spec in NAMED_SETS:
        return None
    kind, sep, path = spec.partition(":")
    if sep and kind in ("folder", "idx"):
        return Path(path).expanduser() if path else None
    return Path(spec).expanduser()


def portable_spec(spec: str) -> str:
    """A spec by name only: `folder:/home/me/data/cats_vs_dogs` -> `folder:cats_vs_dogs` (a card
    travels to other machines; the training machine's paths stay behind)."""
    root = data_root_of(spec)
    return spec if root is None else f"{spec.partition(':')[0]}:{root.resolve().name}"


def dataset_info(data: DataSplits, seed: int) -> dict:
    """What recognises `data` and the split a model was trained on, for its card (see `ModelCard.dataset_info`)."""
    root = data_root_of(data.spec)
    splits = {"train": data.train, "val": data.val, "test": data.test}
    counts = np.zeros(len(data.class_names), np.int64)
    for part in splits.values():
        if part is not None:
            counts += np.bincount(np.asarray(part.targets, np.int64), minlength=len(data.class_names))[: len(counts)]
    return {
        "sha256": tree_fingerprint(root) if root is not None else "",
        "class_counts": {name: int(n) for name, n in zip(data.class_names, counts, strict=True)},
        "split_seed": seed,
        "split_sizes": {name: len(part) for name, part in splits.items() if part is not None},
    }


def load_data(spec: str, data_root: str | os.PathLike | None = None, seed: int = 0) -> DataSplits:
    """Resolve a `--data` spec (`deploy.data_spec.SPEC_FORMS`) into train/val/test splits; named sets
    come from the data folder `data_root` (`train.data_root.data_root`)."""
    parsed = parse_data_spec(spec)
    if parsed.name == "digits":
        return load_digits_splits(seed)
    if parsed.kind == "named":
        return load_named_splits(parsed.name, data_root_folder(data_root), seed)
    if parsed.kind == "idx":
        return load_idx_splits(parsed.path, seed)
    return load_folder_splits(parsed.path, seed)


def write_class_folders(dataset: TensorImages, class_names: list[str], folder: Path) -> Path:
    """Write in-memory images as PNG files in class folders (`folder/<class>/NNNN.png`, numbered in
    the data set's order): the same images as a class-folder tree, as a user's own data looks."""
    for index, (image, label) in enumerate(zip(opencv_images(dataset), dataset.labels.tolist(), strict=True)):
        path = folder / class_names[label] / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image):
            raise EdgevisionError(f"cannot write {path}")
    return folder


def opencv_images(dataset: TensorImages, index: np.ndarray | None = None) -> list[np.ndarray]:
    """In-memory images as the runtime reads files: uint8 HxW gray or HxWx3 BGR (OpenCV's order)."""
    chosen = dataset.images if index is None else dataset.images[torch.as_tensor(index, dtype=torch.long)]
    images = chosen.permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(image[:, :, 0] if image.shape[2] == 1 else image[:, :, ::-1]) for image in images]
