"""A reference set: a few held-out images stored with an artifact, and what PyTorch made of them.

`edgevision export` and `edgevision quantize` write one beside the artifact (`<file>.ref.npz`), and
`deploy.verify` replays it on the device: the same images through the device's own preprocessing
and runtime must give the logits PyTorch gave. The file is a deflated `.npz` (numpy only: no
pickle, and no image codec whose build could change the pixels) holding:

    images    uint8 (N, H, W, C), OpenCV order (BGR, or C = 1 for GRAY): each image as read,
              reduced only as far as preprocessing's first resize goes, so a replay crops and
              normalises but resizes nothing
    logits    float32 (N, K): PyTorch fp32 on `deploy.preprocess.preprocess` of exactly these images
    top_k     int32 (N, k): class indices, best first (k = min(5, K))
    precision, artifact_sha256, source: strings; measured_max_abs_logit_diff, measured_agreement:
              what the artifact itself gave on these images where it was made (`deploy.verify`
              builds its tolerance on them); version: the format's, 1

Reading checks every member's header (name, dtype, shape, size) before any data is read, so a
hostile file costs at most `MAX_REFERENCE_BYTES`, and every failure is one `EdgevisionError` line.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.atomic import atomic_path
from deploy.errors import EdgevisionError, first_line
from deploy.preprocess import Preprocessing, center_crop_box, cv2, to_uint8_color

SUFFIX = ".ref.npz"
VERSION = 1
TOP_K = 5
MAX_REFERENCE_IMAGES = 256
MAX_REFERENCE_BYTES = 256 << 20  # decoded members together; 16 images of 256 x 256 x 3 are 3 MiB
MAX_CLASSES = 100_000
MAX_STRING = 1000  # characters of a string member
PRECISIONS = ("fp32", "fp16", "int8")
# member -> (dtype kind, ndim): "u1" uint8, "f4" float32, "i4" int32, "f8" float64, "i8" int64, "U" text
MEMBERS = {
    "version": ("i8", 0), "images": ("u1", 4), "logits": ("f4", 2), "top_k": ("i4", 2),
    "precision": ("U", 0), "artifact_sha256": ("U", 0), "source": ("U", 0),
    "measured_max_abs_logit_diff": ("f8", 0), "measured_agreement": ("f8", 0),
}


@dataclass
class ReferenceSet:
    """A loaded reference set (see the module docstring for each field)."""

    images: np.ndarray
    logits: np.ndarray
    top_k: np.ndarray
    precision: str
    artifact_sha256: str = ""
    source: str = ""
    measured_max_abs_logit_diff: float = 0.0
    measured_agreement: float = 1.0

    def __len__(self) -> int:
        return len(self.images)


def reference_path(artifact: str | os.PathLike) -> Path:
    return Path(f"{artifact}{SUFFIX}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read `chunk` at a time (a reference set records its artifact's)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def stored_shape(spec: Preprocessing) -> tuple[int, int]:
    """The smallest (height, width) on which `preprocess` resizes nothing and can still crop:
    the short side at `resize` (or the input size when there is no resize step)."""
    height, width = spec.input_size
    if spec.resize is None:
        return height, width
    return max(spec.resize, height), max(spec.resize, width)


def compact_image(image: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """One OpenCV image -> uint8 (H, W, C) in the network's colour, OpenCV channel order, scaled so
    that it covers `stored_shape(spec)` (the short side at `resize`, as preprocessing's first resize
    does) and centre-cropped to it. `preprocess` of the result resizes nothing."""
    pixels = to_uint8_color(image, spec.color)
    height, width = stored_shape(spec)
    h0, w0 = pixels.shape[:2]
    scale = max(height / h0, width / w0)
    target = (max(height, int(h0 * scale)), max(width, int(w0 * scale)))
    if target != (h0, w0):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        pixels = cv2.resize(pixels, (target[1], target[0]), interpolation=interpolation).reshape(*target, -1)
    top, left = center_crop_box(target[0], target[1], (height, width))
    pixels = pixels[top : top + height, left : left + width]
    if spec.color == "RGB":  # stored as OpenCV reads images, so preprocessing's colour step is replayed
        pixels = pixels[:, :, ::-1]
    return np.ascontiguousarray(pixels)


def top_k_indices(logits: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Class indices of each row, best first (ties: the lower index first, as argmax)."""
    return np.argsort(-logits, axis=1, kind="stable")[:, : min(k, logits.shape[1])].astype(np.int32)


def save_reference(path: str | os.PathLike, reference: ReferenceSet) -> Path:
    """Write `reference` atomically (see the module docstring for the members)."""
    arrays = {
        "version": np.int64(VERSION),
        "images": np.ascontiguousarray(reference.images, dtype=np.uint8),
        "logits": np.ascontiguousarray(reference.logits, dtype=np.float32),
        "top_k": np.ascontiguousarray(reference.top_k, dtype=np.int32),
        "precision": np.str_(reference.precision),
        "artifact_sha256": np.str_(reference.artifact_sha256),
        "source": np.str_(reference.source[:MAX_STRING]),
        "measured_max_abs_logit_diff": np.float64(reference.measured_max_abs_logit_diff),
        "measured_agreement": np.float64(reference.measured_agreement),
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return Path(path)


def _header(member) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(member)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(member)
    return shape, dtype


def _check_header(name: str, shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Refuse a member of the wrong dtype, rank or size; returns its size in bytes."""
    kind, ndim = MEMBERS[name]
    expected = kind if kind == "U" else np.dtype(kind).str[1:]
    actual = dtype.kind if kind == "U" else dtype.str[1:]
    if dtype.hasobject or actual != expected or dtype.byteorder == ">":
        raise EdgevisionError(f"member {name} has dtype {dtype}, expected {kind if kind == 'U' else np.dtype(kind)}")
    if len(shape) != ndim:
        raise EdgevisionError(f"member {name} has shape {shape}, expected {ndim} dimensions")
    if kind == "U" and dtype.itemsize > 4 * MAX_STRING:
        raise EdgevisionError(f"member {name} is longer than {MAX_STRING} characters")
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size > MAX_REFERENCE_BYTES:
        raise EdgevisionError(f"member {name} of shape {shape} is larger than {MAX_REFERENCE_BYTES:,} bytes")
    return size


def _read_members(path: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    total = 0
    with zipfile.ZipFile(path) as archive:
        names = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        for name in MEMBERS:
            info = names.get(name)
            if info is None:
                raise EdgevisionError(f"member {name} is missing")
            with archive.open(info) as member:
                shape, dtype = _header(member)
            total += _check_header(name, shape, dtype)
            if total > MAX_REFERENCE_BYTES or info.file_size > MAX_REFERENCE_BYTES:
                raise EdgevisionError(f"its members hold more than {MAX_REFERENCE_BYTES:,} bytes")
            with archive.open(info) as member:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def _text(arrays: dict[str, np.ndarray], name: str) -> str:
    return str(arrays[name][()])


def _number(arrays: dict[str, np.ndarray], name: str, low: float, high: float) -> float:
    value = float(arrays[name][()])
    if not low <= value <= high:  # also refuses NaN
        raise EdgevisionError(f"member {name} must lie in [{low}, {high}], got {value}")
    return value


def _check(arrays: dict[str, np.ndarray]) -> ReferenceSet:
    if int(arrays["version"][()]) != VERSION:
        raise EdgevisionError(f"version {int(arrays['version'][()])} is not {VERSION} (made by a newer edgevision?)")
    images, logits, top_k = arrays["images"], arrays["logits"], arrays["top_k"]
    count, height, width, channels = images.shape
    if not 1 <= count <= MAX_REFERENCE_IMAGES or channels not in (1, 3) or min(height, width) < 1:
        raise EdgevisionError(f"images must be (N <= {MAX_REFERENCE_IMAGES}, H, W, 1 or 3), got {images.shape}")
    if logits.shape[0] != count or not 1 <= logits.shape[1] <= MAX_CLASSES or top_k.shape[0] != count:
        raise EdgevisionError(f"logits {logits.shape} and top_k {top_k.shape} do not fit {count} images")
    if not np.all(np.isfinite(logits)):
        raise EdgevisionError("logits hold NaN or infinity")
    if not 1 <= top_k.shape[1] <= min(TOP_K, logits.shape[1]) or top_k.min() < 0 or top_k.max() >= logits.shape[1]:
        raise EdgevisionError(f"top_k {top_k.shape} names classes outside 0..{logits.shape[1] - 1}")
    if not np.array_equal(top_k[:, 0], logits.argmax(1)):
        raise EdgevisionError("top_k does not match the logits")
    precision = _text(arrays, "precision")
    if precision not in PRECISIONS:
        raise EdgevisionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision[:40]!r}")
    return ReferenceSet(
        images=images, logits=logits, top_k=top_k, precision=precision,
        artifact_sha256=_text(arrays, "artifact_sha256"), source=_text(arrays, "source"),
        measured_max_abs_logit_diff=_number(arrays, "measured_max_abs_logit_diff", 0.0, 1e30),
        measured_agreement=_number(arrays, "measured_agreement", 0.0, 1.0),
    )


def load_reference(path: str | os.PathLike) -> ReferenceSet:
    """Read and check a reference set; any problem is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise EdgevisionError(f"reference set not found: {path}")
    if path.stat().st_size > MAX_REFERENCE_BYTES:
        raise EdgevisionError(f"reference set {path} is larger than {MAX_REFERENCE_BYTES:,} bytes")
    try:
        reference = _check(_read_members(path))
    except EdgevisionError as exc:
        raise EdgevisionError(f"reference set {path}: {exc}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, SyntaxError) as exc:
        raise EdgevisionError(f"reference set {path} is not a readable .npz: {first_line(exc)}") from None
    return reference


def find_reference(model: str | os.PathLike, card_file: str | None = None) -> Path | None:
    """The reference set of `model`: the file its card names, beside it, else `<model>.ref.npz`."""
    model = Path(model)
    candidates = [model.with_name(card_file)] if card_file and Path(card_file).name == card_file else []
    candidates.append(reference_path(model))
    return next((path for path in candidates if path.is_file()), None)
