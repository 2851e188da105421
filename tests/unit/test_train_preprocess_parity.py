"""eval_transform (torchvision, training) against deploy.preprocess.preprocess (OpenCV, device).

Measured bounds, on normalised tensors (1 uint8 level = 0.0039/std, about 0.017 for ImageNet std):
- no resize or enlarging (bilinear both sides): max abs <= 2 uint8 levels / std (0.017 for
  ImageNet; gray conversion and resize each round once);
- shrinking by up to ~2.5x (a 480x640 camera frame to 256 -> 224): mean abs <= 0.02, max < 0.6;
- shrinking hard (1000 px -> 32 px, noisy images) or exactly 2x of pixel-sharp digits: OpenCV's
  INTER_AREA (box filter) and torchvision's antialiased bilinear (triangle filter) part ways:
  mean abs up to ~0.15, max up to ~1.0. The model sees the same picture, a little softer or
  sharper; the top-1 agreement test in tests/data/ bounds what that does to predictions.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from deploy.preprocess import Preprocessing, preprocess
from train.transforms import eval_transform, tensor_from_opencv, train_transform


def natural_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A BGR image with smooth colour regions, hard-edged discs and sensor-like noise."""
    rng = np.random.default_rng([height, width, seed])
    coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(4):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(3, max(4, min(height, width) // 3)))
        cv2.circle(image, centre, radius, tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def as_kind(bgr: np.ndarray, kind: str) -> np.ndarray:
    if kind == "gray":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if kind == "bgra":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    return bgr


def difference(image: np.ndarray, p: Preprocessing) -> np.ndarray:
    deployed = preprocess(image, p)
    trained = eval_transform(p)(tensor_from_opencv(image)).numpy()
    assert deployed.shape == trained.shape == (p.channels, *p.input_size)
    return np.abs(deployed - trained)


IMAGENET = Preprocessing((224, 224), 256)
SPECS = {
    "imagenet": IMAGENET,
    "rgb32": Preprocessing((32, 32)),
    "gray28": Preprocessing((28, 28), None, (0.13,), (0.31,), "GRAY"),
    "bgr-odd": Preprocessing((31, 29), 35, color="BGR"),
}


@pytest.mark.parametrize("kind", ["bgr", "gray", "bgra"])
@pytest.mark.parametrize("spec", list(SPECS))
def test_enlarging_agrees_to_one_level(spec: str, kind: str) -> None:
    p = SPECS[spec]
    image = as_kind(natural_like(23, 19), kind)  # smaller than every input: only enlarging
    assert difference(image, p).max() <= 2.01 / 255 / min(p.std)  # two uint8 levels


@pytest.mark.parametrize("kind", ["bgr", "gray", "bgra"])
@pytest.mark.parametrize("size", [(480, 640), (301, 199), (257, 256)])
def test_camera_frames_to_imagenet_input_agree(size: tuple[int, int], kind: str) -> None:
    diff = difference(as_kind(natural_like(*size), kind), IMAGENET)
    assert diff.mean() <= 0.02
    assert diff.max() <= 0.6


@pytest.mark.parametrize("kind", ["bgr", "gray", "bgra"])
@pytest.mark.parametrize("spec", ["rgb32", "gray28", "bgr-odd"])
def test_hard_shrinking_stays_within_the_documented_bound(spec: str, kind: str) -> None:
    diff = difference(as_kind(natural_like(1000, 701), kind), SPECS[spec])
    assert diff.mean() <= 0.2
    assert diff.max() <= 1.0


def test_upscaled_digits_agree() -> None:
    """sklearn digits (8x8, x16 to uint8) blown up to 64x64 as a camera would see a big digit."""
    digits = np.clip(load_digits().images[:40] * 16, 0, 255).astype(np.uint8)
    for digit in digits:
        big = cv2.resize(digit, (64, 64), interpolation=cv2.INTER_NEAREST)
        assert difference(big, Preprocessing((224, 224), 256)).max() <= 0.02  # enlarging
        shrunk = difference(big, SPECS["gray28"])  # 64 -> 28: INTER_AREA vs triangle filter
        assert shrunk.mean() <= 0.1
        assert shrunk.max() <= 1.0
        native = difference(digit, Preprocessing((8, 8), None, (0.3,), (0.37,), "GRAY"))
        assert native.max() <= 1e-5  # no resize: identical up to float rounding


def test_batches_and_pil_give_the_same_tensor() -> None:
    from PIL import Image

    p = Preprocessing((32, 32))
    images = torch.stack([tensor_from_opencv(natural_like(40, 40, seed)[:, :, ::-1].copy()) for seed in range(3)])
    batch = eval_transform(p)(images)
    single = torch.stack([eval_transform(p)(image) for image in images])
    pil = eval_transform(p)(Image.fromarray(images[0].permute(1, 2, 0).numpy()))
    assert torch.allclose(batch, single, atol=1e-6)
    assert torch.allclose(pil, single[0], atol=1e-6)


@pytest.mark.parametrize("policy", ["none", "digits", "natural"])
def test_train_transform_ends_at_the_input_size(policy: str) -> None:
    for p in (Preprocessing((32, 32)), Preprocessing((28, 28), None, (0.1,), (0.3,), "GRAY")):
        out = train_transform(p, policy)(tensor_from_opencv(natural_like(50, 61)))
        assert out.shape == (p.channels, *p.input_size) and out.dtype == torch.float32
