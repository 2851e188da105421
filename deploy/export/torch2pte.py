"""PyTorch -> ExecuTorch `.pte`, lowered to XNNPACK (fixed batch 1), card in a sidecar `<file>.json`."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from deploy.atomic import write_bytes_atomic
from deploy.card import ModelCard, write_sidecar
from deploy.errors import EdgevisionError, first_line


def lower_to_xnnpack(module: torch.nn.Module, example: tuple[torch.Tensor, ...], failure: str) -> bytes:
    """torch.export `module` on `example` and lower it to XNNPACK: the `.pte` bytes.

    Shared by fp32 export and `quantize`'s int8 programs; an error becomes `failure: <first line>`.
    """
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    try:
        with torch.no_grad():
            exported = torch.export.export(module, example)
            program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    except Exception as exc:
        raise EdgevisionError(f"{failure}: {first_line(exc)}") from exc
    return program.buffer


def torch2pte(model: torch.nn.Module, card: ModelCard, path: str | os.PathLike) -> Path:
    model = model.eval().float().cpu()
    height, width = card.preprocessing.input_size
    example = (torch.randn(1, card.preprocessing.channels, height, width),)
    program = lower_to_xnnpack(model, example, f"ExecuTorch export failed for {card.architecture}")
    write_bytes_atomic(path, program)
    write_sidecar(path, card)
    return Path(path)


def from_torch(model: torch.nn.Module, card: ModelCard, out: str | os.PathLike, precision: str = "fp32",
               data: str | None = None) -> Path:
    """The registry's entry point (see `deploy.export`): an fp32 XNNPACK program."""
    return torch2pte(model, card, out)
