"""Static int8 (and fp16) ONNX models with onnxruntime's quantization tools.

`quantize_onnx` runs `quant_pre_process` (shape inference + graph optimisation), then
`quantize_static` calibrated on preprocessed images. `OnnxQuantConfig` names one configuration
(format, activation/weight types, per-channel, reduce_range, calibration method, excluded nodes);
`ONNX_LADDER` lists the configurations the accuracy guard tries in order.

Measured on this project's CPU (Xeon with AVX-512 VNNI, 2 threads, ImageNet MobileNetV2,
224x224, batch 1; fp32 16.5 ms; see docs/quantize.md for the command): QDQ U8S8 per-channel
4.2 ms (3.9x), QOperator U8S8 per-channel 3.7 ms (4.5x), QDQ S8S8 per-channel 16.5 ms (1.0x: the
x86 kernels want unsigned activations), QOperator U8S8 per-tensor 14 ms. Hence U8S8 first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from deploy.errors import EdgevisionError

METHODS = ("minmax", "entropy", "percentile")
FORMATS = ("qdq", "qoperator")
TYPES = ("u8", "s8")


@dataclass(frozen=True)
class OnnxQuantConfig:
    """One static-quantization configuration for onnxruntime."""

    name: str = "qdq-u8s8-pc-minmax"
    quant_format: str = "qdq"
    activation_type: str = "u8"
    weight_type: str = "s8"
    per_channel: bool = True
    reduce_range: bool = False
    method: str = "minmax"
    percentile: float = 99.999
    exclude: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.quant_format not in FORMATS:
            raise EdgevisionError(f"quant format must be one of {', '.join(FORMATS)}, got {self.quant_format!r}")
        if self.method not in METHODS:
            raise EdgevisionError(f"calibration method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for kind in (self.activation_type, self.weight_type):
            if kind not in TYPES:
                raise EdgevisionError(f"quantized type must be one of {', '.join(TYPES)}, got {kind!r}")
        if not 90.0 <= self.percentile <= 100.0:
            raise EdgevisionError(f"percentile must be in [90, 100], got {self.percentile}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["exclude"] = list(self.exclude)
        return data


# The accuracy guard tries these in order, fastest first (see docs/quantize.md).
ONNX_LADDER = (
    OnnxQuantConfig("qdq-u8s8-pc-minmax"),
    OnnxQuantConfig("qdq-u8s8-pc-percentile", method="percentile"),
    OnnxQuantConfig("qdq-u8s8-pc-entropy", method="entropy"),
    OnnxQuantConfig("qdq-u8s8-pc-minmax-rr", reduce_range=True),
    OnnxQuantConfig("qdq-s8s8-pc-minmax", activation_type="s8"),
)


class ArrayReader:
    """onnxruntime CalibrationDataReader over a float32 NCHW array, one image at a time."""

    def __init__(self, input_name: str, images: np.ndarray) -> None:
        self.input_name = input_name
        self.images = images
        self.position = 0

    def get_next(self):
        if self.position >= len(self.images):
            return None
        batch = self.images[self.position : self.position + 1]
        self.position += 1
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self) -> None:
        self.position = 0

    def __iter__(self):
        self.rewind()
        return iter(self.get_next, None)


def _ort_quant():
    from onnxruntime import quantization

    return quantization


def input_name(path: str | os.PathLike) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise EdgevisionError(f"{path}: expected one image input, found {len(inputs)}")
    return inputs[0]


def preprocess_for_quantization(fp32_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """onnxruntime's `quant_pre_process`: symbolic shape inference and graph optimisation."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=False)
    return Path(out_path)


def quantize_onnx(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    calibration: np.ndarray,
    config: OnnxQuantConfig = OnnxQuantConfig(),
) -> Path:
    """Write a static int8 model of `fp32_path` (already pre-processed) to `out_path`."""
    q = _ort_quant()
    types = {"u8": q.QuantType.QUInt8, "s8": q.QuantType.QInt8}
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    extra = {"CalibPercentile": config.percentile} if config.method == "percentile" else {}
    if config.activation_type == "s8":
        extra["ActivationSymmetric"] = True
    q.quantize_static(
        str(fp32_path),
        str(out_path),
        ArrayReader(input_name(fp32_path), calibration),
        quant_format=q.QuantFormat.QDQ if config.quant_format == "qdq" else q.QuantFormat.QOperator,
        per_channel=config.per_channel,
        reduce_range=config.reduce_range,
        activation_type=types[config.activation_type],
        weight_type=types[config.weight_type],
        nodes_to_exclude=list(config.exclude),
        calibrate_method=methods[config.method],
        extra_options=extra,
    )
    return Path(out_path)


def convert_fp16(fp32_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """fp16 weights and activations (inputs/outputs stay float32), for GPUs with fp16 units."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True))
    # the converter appends the input/output Casts at the end of the node list; onnxruntime runs
    # that, but the ONNX checker (and other runtimes) want the graph in topological order
    model.topological_sort()
    onnx.save(model.model, str(out_path))
    return Path(out_path)


def sensitive_nodes(
    fp32_path: str | os.PathLike, qdq_path: str | os.PathLike, images: np.ndarray, count: int = 3
) -> list[tuple[str, float]]:
    """The `count` float-model nodes whose outputs quantize worst: [(node name, SQNR dB)], worst first.

    Per-tensor error analysis with onnxruntime's `qdq_loss_debug`: each activation of the QDQ
    model is compared before quantization and after dequantization (`qdq_err`, a signal to
    quantization-noise ratio); the nodes producing the noisiest tensors are excluded next.
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    name = input_name(fp32_path)
    with tempfile.TemporaryDirectory(prefix="edgevision-qdebug-") as tmp:
        aug_float = Path(tmp) / "float.onnx"
        aug_qdq = Path(tmp) / "qdq.onnx"
        modify_model_output_intermediate_tensors(str(fp32_path), str(aug_float))
        modify_model_output_intermediate_tensors(str(qdq_path), str(aug_qdq))
        float_acts = collect_activations(str(aug_float), ArrayReader(name, images))
        qdq_acts = collect_activations(str(aug_qdq), ArrayReader(name, images))
    errors = compute_activation_error(create_activation_matching(qdq_acts, float_acts))
    producer = {out: node.name for node in onnx.load(str(fp32_path)).graph.node for out in node.output}
    scored = [
        (producer[tensor], float(err["qdq_err"]))
        for tensor, err in errors.items()
        if "qdq_err" in err and tensor in producer and np.isfinite(err["qdq_err"])
    ]
    scored.sort(key=lambda item: item[1])
    seen: dict[str, float] = {}
    for node, sqnr in scored:
        seen.setdefault(node, sqnr)
    return list(seen.items())[:count]


def with_exclusions(config: OnnxQuantConfig, nodes: Sequence[str]) -> OnnxQuantConfig:
    return replace(config, name=f"{config.name}-skip{len(nodes)}", exclude=tuple(nodes))
