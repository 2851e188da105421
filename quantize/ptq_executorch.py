"""ExecuTorch int8: PT2E quantization with the XNNPACK quantizer, lowered to XNNPACK (`.pte`).

The PT2E flow (pytorch.org/executorch, "Quantization Overview" and the XNNPACK backend page):
`torch.export` the float model, `prepare_pt2e` with `XNNPACKQuantizer` (symmetric int8,
per-channel weights), run calibration images, `convert_pt2e`, export again and lower with
`XnnpackPartitioner`. `qat_pt2e` is the quantization-aware variant for models where
post-training quantization loses too much: fake-quantized fine-tuning before conversion.
`PTE_LADDER` lists the configurations the accuracy guard tries in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from deploy.errors import EdgevisionError


@dataclass(frozen=True)
class PteQuantConfig:
    """One ExecuTorch int8 configuration (XNNPACK quantizer, symmetric int8).

    skip_edges: leave the first convolution and the last layer in float (`edge_layers`).
    qat: quantization-aware fine-tuning (`qat_pt2e`) instead of calibration only; the ladder
        tries it only when given QAT epochs.
    """

    name: str
    per_channel: bool = True
    skip_edges: bool = False
    qat: bool = False

    def __post_init__(self) -> None:
        if self.qat and self.skip_edges:
            raise EdgevisionError(f"{self.name}: QAT quantizes every layer; skip_edges applies to PTQ only")

    def to_dict(self) -> dict:
        return asdict(self)


# The accuracy guard tries these in order, cheapest first (see docs/quantize.md).
PTE_LADDER = (
    PteQuantConfig("pt2e-xnnpack-pc"),
    PteQuantConfig("pt2e-xnnpack-pc-skip-edges", skip_edges=True),
    PteQuantConfig("qat-pt2e-xnnpack-pc", qat=True),
)


def _quantizer(per_channel: bool, skip: Sequence[str], is_qat: bool = False):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantizer import get_module_name_filter

    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=is_qat))
    if skip:
        # `set_module_name(name, None)` asserts "not supported yet" in executorch 1.5; a filter
        # that refuses the skipped modules' nodes leaves them in float instead.
        inside = [get_module_name_filter(name) for name in skip]
        quantizer.set_filter_function(lambda node: not any(f(node) for f in inside))
    return quantizer


def _example(images: np.ndarray) -> tuple[torch.Tensor]:
    return (torch.from_numpy(np.ascontiguousarray(images[:1], dtype=np.float32)),)


def ptq_pt2e(
    model: nn.Module, calibration: np.ndarray, per_channel: bool = True, skip: Sequence[str] = ()
) -> torch.fx.GraphModule:
    """Post-training int8 quantization of `model` (eval mode), calibrated one image at a time."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    example = _example(calibration)
    graph = torch.export.export(model.eval(), example).module()
    prepared = prepare_pt2e(graph, _quantizer(per_channel, skip))
    with torch.no_grad():
        for i in range(len(calibration)):
            prepared(torch.from_numpy(calibration[i : i + 1]))
    return convert_pt2e(prepared)


@dataclass(frozen=True)
class QatSpec:
    """Quantization-aware training: `epochs` of SGD at `lr` in batches of `batch_size` (shuffled
    with `seed`), weights per channel or per tensor."""

    epochs: int = 1
    lr: float = 1e-4
    batch_size: int = 16
    seed: int = 0
    per_channel: bool = True


def qat_pt2e(model: nn.Module, images: np.ndarray, labels: np.ndarray, spec: QatSpec) -> torch.fx.GraphModule:
    """Quantization-aware fine-tuning (PT2E, fake-quant) on preprocessed images, then convert.

    Plain SGD with momentum at a small learning rate, BatchNorm statistics frozen after the first
    epoch: the usual recipe for recovering PTQ loss in a few epochs.
    """
    epochs, lr, batch_size, seed, per_channel = spec.epochs, spec.lr, spec.batch_size, spec.seed, spec.per_channel
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    if epochs < 1:
        raise EdgevisionError(f"QAT needs at least one epoch, got {epochs}")
    example = (torch.from_numpy(np.ascontiguousarray(images[:batch_size], dtype=np.float32)),)
    graph = torch.export.export(model.eval(), example, dynamic_shapes=None).module()
    prepared = prepare_qat_pt2e(graph, _quantizer(per_channel, (), is_qat=True))
    optimizer = torch.optim.SGD(prepared.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    x_all = torch.from_numpy(images)
    y_all = torch.from_numpy(labels.astype(np.int64))
    for _ in range(epochs):
        move_exported_model_to_train(prepared)
        order = rng.permutation(len(images))
        # Full batches only: the exported graph was traced with this batch size.
        for start in range(0, len(order) - batch_size + 1, batch_size):
            index = torch.from_numpy(order[start : start + batch_size])
            optimizer.zero_grad()
            loss = loss_fn(prepared(x_all[index]), y_all[index])
            loss.backward()
            optimizer.step()
    move_exported_model_to_eval(prepared)
    return convert_pt2e(prepared)


def lower_to_pte(quantized: torch.fx.GraphModule | nn.Module, example: np.ndarray) -> bytes:
    """Export a (quantized) module at batch 1 and lower it to XNNPACK; the `.pte` bytes."""
    from deploy.export.torch2pte import lower_to_xnnpack

    return lower_to_xnnpack(quantized, _example(example), "ExecuTorch lowering failed")


def edge_layers(model: nn.Module) -> list[str]:
    """The first convolution and the last Linear/convolution: the layers most often kept in float."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.modules.conv._ConvNd)]
    return list(dict.fromkeys(names[:1] + names[-1:]))
