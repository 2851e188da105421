"""torchvision transforms v2 built from `deploy.preprocess.Preprocessing`, the one definition.

`eval_transform(p)` does what `deploy.preprocess.preprocess` does at run time, in the same order
(colour, resize, crop, scale, normalise), so a model sees the same pixels in training and on the
device; `tests/unit/test_train_preprocess_parity.py` measures how close the two are.
`train_transform(p, policy)` adds augmentation in front of the same final steps.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing
from train.catalog import POLICIES


class ToColor(torch.nn.Module):
    """A uint8 image tensor with 1, 3 (RGB) or 4 (RGBA) channels -> the network's `color`.

    Inputs are RGB like PIL and torchvision decoders; alpha is dropped like OpenCV drops it.
    """

    def __init__(self, color: str) -> None:
        super().__init__()
        self.color = color

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        channels = image.shape[-3]
        if channels == 4:
            image = image[..., :3, :, :]
        elif channels not in (1, 3):
            raise EdgevisionError(f"image must have 1, 3 or 4 channels, got {channels}")
        if self.color == "GRAY":
            return image if image.shape[-3] == 1 else F.rgb_to_grayscale(image, num_output_channels=1)
        if image.shape[-3] == 1:
            image = image.expand(*image.shape[:-3], 3, *image.shape[-2:])
        return image.flip(-3) if self.color == "BGR" else image


def _to_uint8_image() -> list:
    # ToImage keeps a uint8 tensor as it is and turns PIL into a uint8 CHW tensor ("P"/"L" included).
    return [v2.ToImage()]


def _finish(p: Preprocessing) -> list:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(p.mean), list(p.std))]


def resize_steps(p: Preprocessing) -> list:
    """Short-side resize + centre crop, or a straight resize when `p.resize` is None."""
    if p.resize is None:
        return [v2.Resize(list(p.input_size), antialias=True)]
    return [v2.Resize(p.resize, antialias=True), v2.CenterCrop(list(p.input_size))]


def eval_transform(p: Preprocessing) -> v2.Compose:
    """uint8 (C,H,W) tensor, batch (N,C,H,W) or PIL image -> normalised float32, as deployed."""
    return v2.Compose([*_to_uint8_image(), ToColor(p.color), *resize_steps(p), *_finish(p)])


def augmentation_steps(p: Preprocessing, policy: str) -> list:
    """Random geometry/photometry on uint8 images, ending at `p.input_size`."""
    if policy == "none":
        return resize_steps(p)
    if policy == "digits":
        # Handwriting: small shifts, turns and scale changes; never flips (a flipped 2 is not a 2).
        return [*resize_steps(p), v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))]
    if policy == "natural":
        return [
            v2.RandomResizedCrop(list(p.input_size), scale=(0.5, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2 if p.channels == 3 else 0.0),
        ]
    raise EdgevisionError(f"unknown augmentation policy {policy!r}; choose from {', '.join(POLICIES)}")


def train_transform(p: Preprocessing, policy: str) -> v2.Compose:
    """One training sample: colour, augmentation (`none`, `digits` or `natural`), normalise."""
    return v2.Compose([*_to_uint8_image(), ToColor(p.color), *augmentation_steps(p, policy), *_finish(p)])


def tensor_from_opencv(image: np.ndarray) -> torch.Tensor:
    """An OpenCV image (gray, BGR or BGRA) as the uint8 CHW tensor a training data set yields."""
    if image.ndim == 2:
        return torch.from_numpy(np.ascontiguousarray(image))[None]
    order = [2, 1, 0, 3] if image.shape[2] == 4 else [2, 1, 0]
    return torch.from_numpy(np.ascontiguousarray(image[:, :, order])).permute(2, 0, 1)
