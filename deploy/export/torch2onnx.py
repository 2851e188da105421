"""PyTorch -> ONNX with the dynamo exporter (opset >= 18, dynamic batch), card in metadata_props."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import onnx
import torch

from deploy.atomic import atomic_path
from deploy.card import CARD_KEY, ModelCard
from deploy.errors import EdgevisionError, first_line

MIN_OPSET = 18


def set_card(model_proto: onnx.ModelProto, card: ModelCard) -> None:
    """Put the card JSON into metadata_props under CARD_KEY (replacing an older one)."""
    keep = [p for p in model_proto.metadata_props if p.key != CARD_KEY]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(keep)
    model_proto.metadata_props.add(key=CARD_KEY, value=card.to_json())


def save_onnx(model_proto: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Check and write an ONNX model in one atomic step (weights inside the file: < 2 GB)."""
    onnx.checker.check_model(model_proto)
    with atomic_path(path) as tmp:
        onnx.save_model(model_proto, str(tmp))
    return Path(path)


def rewrite_card(path: str | os.PathLike, card: ModelCard) -> None:
    model_proto = onnx.load(str(path))
    set_card(model_proto, card)
    save_onnx(model_proto, path)


def torch2onnx(
    model: torch.nn.Module,
    card: ModelCard,
    path: str | os.PathLike,
    opset: int = MIN_OPSET,
    dynamic_batch: bool = True,
    simplify: bool = False,
) -> Path:
    """Export `model` (eval mode, CPU, float32) to `path`; the card travels in the file."""
    if opset < MIN_OPSET:
        raise EdgevisionError(f"opset must be >= {MIN_OPSET}, got {opset}")
    model = model.eval().float().cpu()
    height, width = card.preprocessing.input_size
    # batch 2 in the example keeps torch.export from specialising the batch dimension to 1
    example = torch.randn(2 if dynamic_batch else 1, card.preprocessing.channels, height, width)
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=["input"],
                output_names=["logits"],
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                verbose=False,
            )
    except Exception as exc:
        raise EdgevisionError(f"torch.onnx.export failed for {card.architecture}: {first_line(exc)}") from exc
    model_proto = program.model_proto
    if simplify:
        import onnxslim

        model_proto = onnxslim.slim(model_proto)
    model_proto.producer_name = "edgevision"
    set_card(model_proto, card)
    return save_onnx(model_proto, path)


def from_torch(model: torch.nn.Module, card: ModelCard, out: str | os.PathLike, precision: str = "fp32",
               data: str | None = None, **options) -> Path:
    """The registry's entry point (see `deploy.export`): fp32 ONNX; `options` go to `torch2onnx`."""
    return torch2onnx(model, card, out, **options)
