"""Tiny real ONNX classifiers built with onnx.helper (no torch), for runtime tests.

conv 3x3 -> relu -> global average pool -> flatten -> gemm: a real image classifier whose
weights are seeded random numbers. `reference_logits` computes the same network in numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.card import CARD_KEY, ModelCard
from deploy.preprocess import Preprocessing


def weights(channels: int, classes: int, width: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv_w": rng.normal(0, 0.5, (width, channels, 3, 3)).astype(np.float32),
        "conv_b": rng.normal(0, 0.1, (width,)).astype(np.float32),
        "fc_w": rng.normal(0, 1.0, (classes, width)).astype(np.float32),
        "fc_b": rng.normal(0, 0.1, (classes,)).astype(np.float32),
    }


def make_onnx(
    path: Path,
    channels: int = 3,
    size: tuple[int, int] | None = (32, 32),
    classes: int = 3,
    batch: int | str = "N",
    card: ModelCard | None = None,
    seed: int = 0,
) -> Path:
    """Write a tiny classifier; `size=None` leaves height and width dynamic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = weights(channels, classes, seed=seed)
    height, width = size if size else ("H", "W")
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, channels, height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(v, k) for k, v in w.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if card is not None:
        model.metadata_props.add(key=CARD_KEY, value=card.to_json())
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def tiny_card(classes: int = 3, channels: int = 3, size: tuple[int, int] = (32, 32)) -> ModelCard:
    color = "GRAY" if channels == 1 else "RGB"
    mean, std = ((0.5,), (0.25,)) if channels == 1 else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    return ModelCard(
        architecture="tiny",
        class_names=[f"class{i}" for i in range(classes)],
        preprocessing=Preprocessing(size, int(size[0] * 1.25), mean, std, color),
        artifact_format="onnx",
    )


def reference_logits(batch: np.ndarray, channels: int = 3, classes: int = 3, seed: int = 0) -> np.ndarray:
    """The same network in numpy (float64), for checking the runtime's numbers."""
    w = weights(channels, classes, seed=seed)
    x = np.pad(batch.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    n, _, h, wd = batch.shape
    out = np.zeros((n, w["conv_w"].shape[0], h, wd))
    for dy in range(3):
        for dx in range(3):
            patch = x[:, :, dy : dy + h, dx : dx + wd]
            out += np.einsum("nchw,oc->nohw", patch, w["conv_w"][:, :, dy, dx])
    out = np.maximum(out + w["conv_b"][None, :, None, None], 0).mean(axis=(2, 3))
    return out @ w["fc_w"].T + w["fc_b"]
