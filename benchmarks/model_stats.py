"""Multiply-accumulates and parameters of an ONNX classifier, from its graph (needs `onnx`).

Counted per image: Conv (MACs = output elements x input channels per group x kernel area) and
Gemm / MatMul, in their float, integer and QLinear forms; element-wise layers, pooling and
activations are left out, as every published MAC count does. Parameters are the elements of the
initializers, less the scales and zero points of quantized tensors. Other formats (.pt, .pte,
.engine) and a missing `onnx` package give None: the columns are then empty, not guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from deploy.card import CARD_KEY, ModelCard

# op -> (index of the data input, index of the weight input)
CONV_OPS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}
MATMUL_OPS = {"Gemm": (0, 1), "MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}
QUANT_OPS = {"QuantizeLinear", "DequantizeLinear"}  # inputs 1 and 2: scale, zero point


@dataclass(frozen=True)
class ModelStats:
    macs: int
    params: int


def _fix_input_dims(model) -> None:
    """Batch 1 and the card's input size where the graph leaves them symbolic."""
    meta = {p.key: p.value for p in model.metadata_props}
    size = ModelCard.from_json(meta[CARD_KEY]).preprocessing.input_size if CARD_KEY in meta else None
    dims = model.graph.input[0].type.tensor_type.shape.dim
    wanted = [1, None, *(size or (None, None))]
    for dim, value in zip(dims, wanted, strict=True):
        if not dim.HasField("dim_value") and value is not None:
            dim.dim_value = value


def onnx_stats(path: Path) -> ModelStats | None:
    """MACs and parameters of one image through the model, or None where they cannot be known."""
    if Path(path).suffix != ".onnx":
        return None
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)  # shapes suffice
        _fix_input_dims(model)
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # a model the runtime reports on its own row; no stats here
        return None
    graph = model.graph
    shapes = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    macs = 0
    for node in graph.node:
        if node.op_type in CONV_OPS:
            _, w = CONV_OPS[node.op_type]
            weight, out = shapes.get(node.input[w]), shapes.get(node.output[0])
            if not weight or not out or None in out or None in weight:
                return None
            macs += math.prod(out) * math.prod(weight[1:])  # weight: (out ch, in ch / group, kh, kw)
        elif node.op_type in MATMUL_OPS:
            a, b = (shapes.get(node.input[i]) for i in MATMUL_OPS[node.op_type])
            out = shapes.get(node.output[0])
            if not a or not out or None in out or None in a:
                return None
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            macs += math.prod(out) * (a[-2] if trans_a else a[-1])
    quant_side = {name for node in graph.node if node.op_type in QUANT_OPS for name in node.input[1:]}
    params = sum(math.prod(init.dims) for init in graph.initializer if init.name not in quant_side)
    return ModelStats(int(macs), int(params))
