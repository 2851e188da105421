"""The working directory the docs' commands run in: a clone of the repository (its top-level files
and folders linked, so `tools/...`, `python -m deploy` and `PYTHONPATH=.` work) holding the files
the docs name, made small and offline.

- `../shared/data/cats_vs_dogs` and `pets/`: two classes (`cats`, `dogs`), `train/` and `val/`, of
  small generated photos the classes of which differ in colour (a stand-in for the real data set, so
  that a doc's command runs in seconds and any model learns them);
- `../shared/data/mnist` (200 gzip IDX test images, as the offline copy has only t10k) and
  `../shared/data/cifar10` (`train.tar.gz` and `test/`, 10 classes of a few 32x32 JPEGs): small
  stand-ins laid out as the real copies, so the lesson recipes run in seconds;
- `../shared/weights/mobilenet_v2_imagenet.pth`: a MobileNetV2 state_dict (random, seeded: the
  stand-in for the ImageNet weights, read the same way);
- `runs/cvd_frozen/model.pt` (and copies named as the docs name them: `runs/cats`, `runs/pets`,
  `model.pt`): the lesson CNN trained on the stand-in at 32x32, with its ONNX (`model.onnx`,
  verified, with its reference set), int8 ONNX (`model.int8.onnx`) and ExecuTorch (`model.pte`), so
  that exporting, quantizing and benchmarking take seconds (a MobileNetV2 export takes a minute);
- `runs/cvd_ft/model.pt`: a MobileNetV2 (the pruning recipe names its layers) with its head trained
  on the stand-in at 32x32;
- `runs/digits/model.pt`: the digits CNN of tests/digits_cnn.py;
- images (`cat.jpg`, `dog.png`, `photo.jpg`, `img.jpg`) and videos (`clip.mp4`, `clip.avi`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

NOT_LINKED = {".git", "runs", "build", ".pytest_cache", "__pycache__", ".hypothesis"}
CLASSES = {"cats": (40, 60, 200), "dogs": (200, 120, 40)}  # BGR base colour of each class
SPLITS = {"train": 8, "val": 4}  # images per class


def clone_like(repo: Path, dest: Path) -> Path:
    """`dest` with a link to every top-level entry of `repo` but its virtual environments and outputs."""
    dest.mkdir(parents=True)
    for entry in sorted(repo.iterdir()):
        if entry.name in NOT_LINKED or entry.name.startswith(".venv") or entry.name.endswith(".egg-info"):
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


def photo(rng: np.random.Generator, colour: tuple[int, int, int], size: int = 48) -> np.ndarray:
    """A noisy picture around `colour` with a darker square somewhere in it."""
    image = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    top, left = rng.integers(0, size // 2, 2)
    image[top:top + size // 3, left:left + size // 3] //= 2
    return image


def write_tree(root: Path, seed: int = 0) -> Path:
    import cv2

    rng = np.random.default_rng(seed)
    for split, count in SPLITS.items():
        for name, colour in CLASSES.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                cv2.imwrite(str(folder / f"{index:03d}.jpg"), photo(rng, colour))
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzip IDX file of unsigned bytes (the MNIST format)."""
    import gzip

    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_mnist(folder: Path, count: int = 200) -> Path:
    """t10k images and labels only, as ../shared/data/mnist; a bright bar whose row is the class."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 10
    images = rng.integers(0, 40, (count, 28, 28))
    for index, label in enumerate(labels):
        images[index, 2 + 2 * label : 4 + 2 * label, 4:24] = 250
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    return folder


def write_cifar10(folder: Path, per_class: int = 10, test_per_class: int = 4, classes: int = 10) -> Path:
    """`train.tar.gz` holding train/<class>/*.jpg and test/<class>/*.jpg, as ../shared/data/cifar10."""
    import io
    import tarfile

    import cv2

    rng = np.random.default_rng(1)
    names = [f"c{index}" for index in range(classes)]
    folder.mkdir(parents=True)
    with tarfile.open(folder / "train.tar.gz", "w:gz") as tar:
        for name in names:
            for index in range(per_class):
                data = cv2.imencode(".jpg", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))[1].tobytes()
                info = tarfile.TarInfo(f"train/{name}/{index:04d}.jpg")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    for name in names:
        (folder / "test" / name).mkdir(parents=True)
        for index in range(test_per_class):
            cv2.imwrite(str(folder / "test" / name / f"{index:04d}.jpg"),
                        rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return folder


def write_weights(path: Path) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.mobilenet_v2().state_dict(), path)
    return path


def prepare(repo: Path, base: Path) -> Path:
    """Make the shared part of every doc's working directory under `base`; returns the clone."""
    import cv2

    from camera_app.video import write_video_from_images
    from deploy.export.pipeline import ExportSpec, export_checkpoint
    from quantize.quantize_pipeline import QuantizeSpec, quantize_checkpoint
    from tests.digits_cnn import train_digits_cnn
    from train.config import TrainConfig
    from train.fit import fit

    clone = clone_like(repo, base / "clone")
    shared = base / "shared"
    cvd = write_tree(shared / "data" / "cats_vs_dogs")
    write_mnist(shared / "data" / "mnist")
    write_cifar10(shared / "data" / "cifar10")
    weights = write_weights(shared / "weights" / "mobilenet_v2_imagenet.pth")
    shutil.copytree(cvd, clone / "pets")

    run = clone / "runs" / "cvd_frozen"
    fit(TrainConfig(data=f"folder:{cvd}", model="cnn", input_size=32, epochs=3, out=str(run), quiet=True,
                    threads=1), overwrite=True)
    checkpoint = run / "model.pt"
    export_checkpoint(checkpoint, "onnx", run / "model.onnx", ExportSpec(data=f"folder:{cvd}"))
    quantize_checkpoint(checkpoint, run / "model.int8.onnx", QuantizeSpec(target="onnx-int8", calib_size=16, threads=1),
                        data=f"folder:{cvd}")
    export_checkpoint(checkpoint, "executorch", run / "model.pte", ExportSpec(data=f"folder:{cvd}"))
    for name in ("cats", "pets"):
        (clone / "runs" / name).mkdir()
        shutil.copy2(checkpoint, clone / "runs" / name / "model.pt")
    for item in run.iterdir():
        if item.name.startswith("model."):
            shutil.copy2(item, clone / item.name)
    fit(TrainConfig(data=f"folder:{cvd}", model="mobilenet_v2", weights=str(weights), freeze="backbone",
                    input_size=32, epochs=1, out=str(clone / "runs" / "cvd_ft"), quiet=True, threads=1),
        overwrite=True)
    train_digits_cnn(clone / "runs" / "digits" / "model.pt")

    photos = sorted((cvd / "val").glob("*/*.jpg"))
    for name, source in (("cat.jpg", photos[0]), ("photo.jpg", photos[1]), ("img.jpg", photos[-1])):
        shutil.copy2(source, clone / name)
    cv2.imwrite(str(clone / "dog.png"), cv2.imread(str(photos[-2])))
    for video in ("clip.mp4", "clip.avi"):
        write_video_from_images(photos, clone / video, hold_frames=2, fps=30.0, size=(64, 64))
    return clone


def copy_workspace(base: Path, dest: Path, made_by_the_doc: set[str]) -> Path:
    """A fresh copy of the prepared clone and its `../shared` (links stay links), without the run
    folders the doc makes itself (`made_by_the_doc`: relative paths); returns the clone."""
    shutil.copytree(base / "shared", dest / "shared", symlinks=True)
    shutil.copytree(base / "clone", dest / "clone", symlinks=True,
                    ignore=lambda folder, names: [
                        name for name in names
                        if (Path(folder) / name).relative_to(base / "clone").as_posix() in made_by_the_doc])
    (dest / "home").mkdir()
    return dest / "clone"


def environment(bin_dir: Path, repo: Path, home: Path) -> dict[str, str]:
    """The shell's environment: the toolkit's venv first on PATH, the repository importable, a home
    of its own (`~/...` in a doc stays in the test's folder), no display."""
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH", "")]))
    env["HOME"] = str(home)
    env["MPLBACKEND"] = "Agg"
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env
