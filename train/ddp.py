"""Multi-process training under `torchrun` (DDP): gloo on CPU, NCCL on CUDA.

`torchrun --nproc_per_node 2 -m train train --data digits --model cnn` runs the same command as
a single process does; each process sees a disjoint shard of the training set
(DistributedSampler), gradients are averaged by DistributedDataParallel, every process evaluates
the full validation set (so early-stopping decisions agree), and only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from deploy.errors import EdgevisionError


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` (CUDA when there is a GPU), `cpu` or `cuda`; a GPU asked for that is not there is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise EdgevisionError(
                f"--device {name}: no CUDA GPU is available here (torch.cuda.is_available() is False)"
            )
        if name != "cuda":
            return torch.device(name)
        return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    if name != "cpu":
        raise EdgevisionError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def setup(device: str = "auto") -> Distributed:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(0, 1, pick_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), chosen)


def wrap(model: nn.Module, info: Distributed) -> nn.Module:
    """DistributedDataParallel around `model` when distributed; `model` itself otherwise."""
    if not info.enabled:
        return model
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def barrier(info: Distributed) -> None:
    if info.enabled:
        dist.barrier()


def teardown(info: Distributed) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
