"""The one definition of evaluation preprocessing, in numpy and OpenCV.

A `Preprocessing` travels inside every model card. At run time `preprocess` turns any OpenCV
image (BGR, grayscale, BGRA, 8 or 16 bit, any size) into the network's float32 CHW input. At
training time `train.transforms.eval_transform` builds the same steps from the same dataclass
with torchvision transforms v2, and `tests/unit/test_train_preprocess_parity.py` proves the two agree.

The steps follow torchvision's `Resize(short_side)` + `CenterCrop(size)` + `Normalize`:
the short side is scaled to `resize` (long side truncated as torchvision does), the centre is
cropped to `input_size`, pixels are scaled to [0, 1] and normalised per channel.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from deploy.errors import EdgevisionError, first_line
from deploy.fields import check_int, check_list, check_mapping, check_str
from deploy.limits import MAX_IMAGE_PIXELS


class MissingOpenCV:
    """Stands for the `cv2` module where OpenCV is not installed (a GPU box with torch only): a model
    loads and runs, and a stored reference set (`deploy.reference`, kept at the network's size)
    replays without it; what needs OpenCV (reading, resizing, colour conversion) fails in one line."""

    def __getattr__(self, name: str):
        raise EdgevisionError("OpenCV (cv2) is not installed; reading, resizing and converting images need it: "
                              "pip install opencv-python-headless, or edgevision[runtime]")


try:
    import cv2
except ModuleNotFoundError:
    cv2 = MissingOpenCV()

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COLORS = ("RGB", "BGR", "GRAY")
MAX_INPUT_SIDE = 8192  # a network input side; larger is a corrupt or hostile card, not a model


@dataclass(frozen=True)
class Preprocessing:
    """How a network wants its pixels.

    input_size: (height, width) of the network input.
    resize: short side before the centre crop; None resizes straight to `input_size`.
    mean, std: per channel, on pixels scaled to [0, 1] (one value each for GRAY).
    color: channel order the network was trained on.
    """

    input_size: tuple[int, int]
    resize: int | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    color: str = "RGB"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.color not in COLORS:
            raise EdgevisionError(f"color must be one of {', '.join(COLORS)}, got {self.color!r}")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise EdgevisionError(f"input_size must be (height, width) > 0, got {self.input_size}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise EdgevisionError(
                f"{self.color} needs {self.channels} mean/std values, got {len(self.mean)}/{len(self.std)}"
            )
        if self.resize is not None and self.resize < min(self.input_size):
            raise EdgevisionError(f"resize {self.resize} is smaller than the crop {self.input_size}")
        if max(self.input_size) > MAX_INPUT_SIDE or (self.resize or 0) > MAX_INPUT_SIDE:
            raise EdgevisionError(f"input_size {self.input_size} / resize {self.resize} exceed {MAX_INPUT_SIDE} pixels")
        if not all(math.isfinite(v) for v in self.mean) or not all(math.isfinite(v) and v > 0 for v in self.std):
            raise EdgevisionError(f"mean must be finite and std finite and > 0 (else every output is NaN), "
                                  f"got mean {self.mean}, std {self.std}")

    @property
    def channels(self) -> int:
        return 1 if self.color == "GRAY" else 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        """Read a card's `preprocessing`, checking every type (a card may come from anywhere)."""
        data = check_mapping(data, "preprocessing")
        if "input_size" not in data:
            raise EdgevisionError("card field preprocessing.input_size is missing")
        resize = data.get("resize")
        return cls(
            input_size=tuple(check_list(data["input_size"], "preprocessing.input_size", "int", length=2)),
            resize=None if resize is None else check_int(resize, "preprocessing.resize"),
            mean=tuple(check_list(data.get("mean", IMAGENET_MEAN), "preprocessing.mean", "number")),
            std=tuple(check_list(data.get("std", IMAGENET_STD), "preprocessing.std", "number")),
            color=check_str(data.get("color", "RGB"), "preprocessing.color"),
        )


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) after scaling the short side to `short_side`, truncating like torchvision."""
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def center_crop_box(height: int, width: int, crop: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of torchvision's CenterCrop (it rounds half offsets)."""
    return int(round((height - crop[0]) / 2.0)), int(round((width - crop[1]) / 2.0))


def to_uint8_color(image: np.ndarray, color: str) -> np.ndarray:
    """Any OpenCV image (gray/BGR/BGRA, uint8/uint16/float in [0,1]) -> HxWxC uint8 in `color`."""
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise EdgevisionError(f"image dtype must be uint8, uint16 or float, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        gray = image
        if color == "GRAY":
            return gray[:, :, None]
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise EdgevisionError(f"image must be HxW, HxWx3 or HxWx4, got shape {image.shape}")
    bgr = image[:, :, :3]
    if color == "GRAY":
        return cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2GRAY)[:, :, None]
    if color == "RGB":
        return np.ascontiguousarray(bgr[:, :, ::-1])
    return np.ascontiguousarray(bgr)


def resize_and_crop(image: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """HxWxC uint8 -> input_size HxWxC uint8, by short-side resize and centre crop."""
    height, width = image.shape[:2]
    target = resized_shape(height, width, spec.resize) if spec.resize else spec.input_size
    if (height, width) != tuple(target):
        # INTER_AREA when shrinking plays the part of torchvision's antialias; bilinear otherwise.
        shrinking = target[0] < height or target[1] < width
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        image = cv2.resize(image, (target[1], target[0]), interpolation=interpolation)
        if image.ndim == 2:
            image = image[:, :, None]
    if spec.resize:
        top, left = center_crop_box(image.shape[0], image.shape[1], spec.input_size)
        image = image[top : top + spec.input_size[0], left : left + spec.input_size[1]]
    return image


def preprocess(image: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """One OpenCV image -> float32 array of shape (channels, height, width), normalised."""
    pixels = resize_and_crop(to_uint8_color(image, spec.color), spec)
    mean = np.asarray(spec.mean, dtype=np.float32)
    inv_std = 1.0 / np.asarray(spec.std, dtype=np.float32)
    tensor = (pixels.astype(np.float32) * (1.0 / 255.0) - mean) * inv_std
    return np.ascontiguousarray(tensor.transpose(2, 0, 1))


def preprocess_batch(images: Sequence[np.ndarray], spec: Preprocessing) -> np.ndarray:
    """Several images -> float32 batch (N, C, H, W)."""
    return np.stack([preprocess(image, spec) for image in images])


def read_image(path: str) -> np.ndarray:
    """Read an image file as OpenCV does (BGR/gray/BGRA, 8 or 16 bit), or fail in one line.

    Only a regular file is opened: a FIFO would block the read forever, /dev/zero would never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise EdgevisionError(f"image not found: {path}") from None
    except OSError as exc:
        raise EdgevisionError(f"cannot read image {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise EdgevisionError(f"image path is a folder: {path}")
    if not stat.S_ISREG(mode):
        raise EdgevisionError(f"image {path} is not a regular file (a FIFO, socket or device)")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise EdgevisionError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise EdgevisionError(f"image path is a folder: {path}") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise EdgevisionError(f"image {path} has more than {MAX_IMAGE_PIXELS:,} pixels; set "
                                  "EDGEVISION_MAX_IMAGE_PIXELS to allow larger images") from None
        raise EdgevisionError(f"cannot decode image {path}: {first_line(exc)}") from None
    if image is None:
        raise EdgevisionError(f"cannot decode image {path}: not an image file or corrupt")
    return image
