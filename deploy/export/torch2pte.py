"""PyTorch -> ExecuTorch `.pte`, lowered to XNNPACK (fixed batch 1), card in a sidecar `<file>.json`."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from deploy.atomic import write_bytes_atomic
from deploy.card import ModelCard, write_sidecar
from deploy.errors import EdgevisionError


def torch2pte(model: torch.nn.Module, card: ModelCard, path: str | os.PathLike) -> Path:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    model = model.eval().float().cpu()
    height, width = card.preprocessing.input_size
    example = (torch.randn(1, card.preprocessing.channels, height, width),)
    try:
        with torch.no_grad():
            exported = torch.export.export(model, example)
            program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    except Exception as exc:
        raise EdgevisionError(f"ExecuTorch export failed for {card.architecture}: {str(exc).splitlines()[0]}") from exc
    write_bytes_atomic(path, program.buffer)
    write_sidecar(path, card)
    return Path(path)
