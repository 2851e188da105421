"""Static int8 (and fp16) ONNX models with onnxruntime's quantization tools.

`quantize_onnx` runs `quant_pre_process` (shape inference + graph optimisation), then
`quantize_static` calibrated on preprocessed images. `OnnxQuantConfig` names one configuration
(format, activation/weight types, per-channel, reduce_range, calibration method, excluded nodes);
`ONNX_LADDER` lists the configurations the accuracy guard tries in order.

Measured on this project's CPU (Xeon with AVX-512 VNNI, 2 threads, ImageNet MobileNetV2,
224x224, batch 1; fp32 16.5 ms; see docs/quantize.md for the command): QDQ U8S8 per-channel
4.2 ms (3.9x), QOperator U8S8 per-channel 3.7 ms (4.5x), QDQ S8S8 per-channel 16.5 ms (1.0x: the
x86 kernels want unsigned activations), QOperator U8S8 per-tensor 14 ms. Hence U8S8 first.

A configuration's `form` says whose rules place the Q/DQ nodes: "onnxruntime" (the CPU ladder
above) or "tensorrt", the explicit-quantization form TensorRT builds int8 engines from: signed
int8 activations and weights, symmetric (every zero point 0), per-channel weights (axis 0 for
Conv), float biases, and Q/DQ only on the inputs of the layers TensorRT runs in int8 (Conv, Gemm,
MatMul) and on both inputs of Add (so that a residual addition fuses into the convolution before
it); activations such as ReLU/Clip stay between the layer and the next Q, where TensorRT fuses
them. `check_tensorrt_form` checks a model against those rules; `ONNX_TRT_LADDER` is its ladder.
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
FORMS = ("onnxruntime", "tensorrt")
# The op types TensorRT fuses with Q/DQ on their inputs (weighted layers, and Add for residuals).
TENSORRT_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add")
# Their data input and weight input (Add: both inputs), which a DequantizeLinear must feed.
_TENSORRT_QUANTIZED_INPUTS = {"Conv": (0, 1), "ConvTranspose": (0, 1), "Gemm": (0, 1), "MatMul": (0, 1), "Add": (0, 1)}


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
    form: str = "onnxruntime"

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise EdgevisionError(f"quantization form must be one of {', '.join(FORMS)}, got {self.form!r}")
        if self.form == "tensorrt" and (
            self.quant_format != "qdq" or (self.activation_type, self.weight_type) != ("s8", "s8")
            or self.reduce_range or not self.per_channel
        ):
            raise EdgevisionError(
                "TensorRT's Q/DQ form is QDQ with s8 activations and weights, per-channel, without reduce_range; got "
                f"{self.quant_format} {self.activation_type}/{self.weight_type}"
                f"{'' if self.per_channel else ' per-tensor'}{' reduce_range' if self.reduce_range else ''}"
            )
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

# TensorRT's form (see the module docstring), calibrations in the order the guard tries them.
ONNX_TRT_LADDER = tuple(
    OnnxQuantConfig(f"trt-s8s8-pc-{method}", activation_type="s8", method=method, form="tensorrt")
    for method in ("minmax", "percentile", "entropy")
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
    op_types = None  # onnxruntime's default: every op type it can quantize
    if config.form == "tensorrt":
        op_types = list(TENSORRT_OP_TYPES)
        extra.update(
            ActivationSymmetric=True,
            WeightSymmetric=True,
            QuantizeBias=False,  # TensorRT takes float biases; it has no int32 DequantizeLinear
            OpTypesToExcludeOutputQuantization=list(TENSORRT_OP_TYPES),  # outputs are quantized by their consumers
        )
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
        op_types_to_quantize=op_types,
        extra_options=extra,
    )
    if config.form == "tensorrt":
        import onnx

        check_tensorrt_form(onnx.load(str(out_path)), exclude=config.exclude)
    return Path(out_path)


def _constant(model, name: str) -> np.ndarray | None:
    """The initializer (or Constant node output) called `name`, as an array; None if it is computed."""
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


def check_tensorrt_form(model, exclude: Sequence[str] = ()) -> int:
    """Raise EdgevisionError naming the first way `model` (an onnx ModelProto) breaks TensorRT's
    Q/DQ rules; otherwise the number of quantized layers.

    Rules: every QuantizeLinear/DequantizeLinear has an int8 zero point equal to 0; a weight's
    DequantizeLinear is per-channel along the output channels (axis 0 for Conv, one scale per
    channel); every input of Conv/Gemm/MatMul/Add named in `_TENSORRT_QUANTIZED_INPUTS` comes from
    a DequantizeLinear, except in the nodes of `exclude` (kept in float on purpose); at least one
    layer is quantized.
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(node.input) < 3 or not node.input[2]:
            raise EdgevisionError(f"{node.op_type} {node.name!r} has no zero point (its type would be uint8)")
        zero_point = _constant(model, node.input[2])
        if zero_point is None or zero_point.dtype != np.int8 or np.any(zero_point != 0):
            kind = "computed" if zero_point is None else f"{zero_point.dtype} {zero_point.ravel()[:4].tolist()}"
            raise EdgevisionError(f"{node.op_type} {node.name!r}: zero point must be int8 0, got {kind}")
    excluded = set(exclude)
    quantized = 0
    for node in model.graph.node:
        if node.op_type not in _TENSORRT_QUANTIZED_INPUTS or node.name in excluded:
            continue
        for index in _TENSORRT_QUANTIZED_INPUTS[node.op_type]:
            if index >= len(node.input) or (node.op_type == "Add" and _constant(model, node.input[index]) is not None):
                continue  # an Add of a constant (a bias) is no residual
            source = producer.get(node.input[index])
            if source is None or source.op_type != "DequantizeLinear":
                raise EdgevisionError(f"{node.op_type} {node.name!r}: input {index} ({node.input[index]}) "
                                      "is not fed by a DequantizeLinear")
        if node.op_type != "Add":
            _check_per_channel(model, node, producer[node.input[1]])
        quantized += 1
    if not quantized:
        raise EdgevisionError(f"no layer is quantized (no {'/'.join(_TENSORRT_QUANTIZED_INPUTS)} with Q/DQ inputs)")
    return quantized


def _output_channel_axis(node) -> int:
    """The axis of `node`'s weight that indexes its output channels."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        return 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
    return 1  # ConvTranspose (C_in, C_out/group, ...), MatMul (K, N)


def _check_per_channel(model, node, weight_dq) -> None:
    """A constant weight's DequantizeLinear must have one scale per output channel, on that axis."""
    weight = _constant(model, weight_dq.input[0])
    if weight is None or weight.ndim < 2:
        return  # an activation x activation MatMul has no weight
    axis = next((a.i for a in weight_dq.attribute if a.name == "axis"), 1)
    want = _output_channel_axis(node)
    scale = _constant(model, weight_dq.input[1])
    if axis != want or scale is None or scale.size != weight.shape[want]:
        got = "computed scales" if scale is None else f"{scale.size} scale(s) on axis {axis}"
        raise EdgevisionError(f"{node.op_type} {node.name!r}: weights must be per-channel, {weight.shape[want]} "
                              f"scales on axis {want}; got {got}")


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
    fp32_path: str | os.PathLike,
    qdq_path: str | os.PathLike,
    images: np.ndarray,
    count: int = 3,
    readers: Sequence[str] = (),
) -> list[tuple[str, float]]:
    """The `count` float-model nodes whose tensors quantize worst: [(node name, SQNR dB)], worst first.

    Per-tensor error analysis with onnxruntime's `qdq_loss_debug`: each activation of the QDQ
    model is compared before quantization and after dequantization (`qdq_err`, a signal to
    quantization-noise ratio); the nodes producing the noisiest tensors are excluded next. With
    `readers` (op types, e.g. `TENSORRT_OP_TYPES`), a tensor is charged to the nodes of those types
    that read it instead: in a form that quantizes only inputs, that is where its Q/DQ sits.
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
    graph = onnx.load(str(fp32_path)).graph
    owners: dict[str, list[str]] = {}
    for node in graph.node:
        for tensor in node.input if readers else node.output:
            if not readers or node.op_type in readers:
                owners.setdefault(tensor, []).append(node.name)
    scored = [
        (owner, float(err["qdq_err"]))
        for tensor, err in errors.items()
        if "qdq_err" in err and np.isfinite(err["qdq_err"])
        for owner in owners.get(tensor, ())
    ]
    scored.sort(key=lambda item: item[1])
    seen: dict[str, float] = {}
    for node, sqnr in scored:
        seen.setdefault(node, sqnr)
    return list(seen.items())[:count]


def with_exclusions(config: OnnxQuantConfig, nodes: Sequence[str]) -> OnnxQuantConfig:
    return replace(config, name=f"{config.name}-skip{len(nodes)}", exclude=tuple(nodes))
