"""Data sets + transforms -> DataLoaders: seeded, optionally distributed, precomputed when cheap."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

from train.data import TensorImages


class Transformed(Dataset):
    """`dataset` with `transform` applied to each image as it is read."""

    def __init__(self, dataset: Dataset, transform: Callable) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[index]
        return self.transform(image), label


def precompute(dataset: TensorImages, transform: Callable, chunk: int = 2048) -> TensorDataset:
    """A deterministic transform applied once to an in-memory set, in batches (no randomness!)."""
    parts = [transform(dataset.images[i : i + chunk]) for i in range(0, len(dataset), chunk)]
    return TensorDataset(torch.cat(parts), dataset.labels)


def make_loader(
    dataset: Dataset,
    transform: Callable | None,
    batch_size: int,
    shuffle: bool,
    seed: int,
    workers: int = 0,
    distributed: bool = False,
    precomputable: bool = False,
) -> DataLoader:
    """A DataLoader whose order depends only on `seed` (and the epoch, via `set_epoch`).

    `precomputable`: the transform is deterministic and the images are in memory, so the whole
    set is transformed once instead of every epoch.
    """
    if transform is not None:
        if precomputable and isinstance(dataset, TensorImages):
            dataset = precompute(dataset, transform)
        else:
            dataset = Transformed(dataset, transform)
    generator = torch.Generator().manual_seed(seed)
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed) if distributed else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Distributed samplers reshuffle per epoch only when told the epoch."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
