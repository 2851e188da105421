"""`edgevision quantize --to onnx-int8-trt` (TensorRT's Q/DQ form) and `--to onnx-fp16`, checked on
real tiny models: the digits CNN of tests/digits_cnn.py and an untrained MobileNetV2 (residual Adds).

The form is read back from the written ONNX with onnx alone (not through `check_tensorrt_form`,
which is tested separately, on a model that breaks it)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")

from onnx import numpy_helper

from deploy.card import CARD_KEY, ModelCard
from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing
from quantize import ptq_onnx
from quantize.calibration import SplitDraw, load_split
from quantize.cli import main
from quantize.guard import BudgetMissed
from quantize.scoring import artifact_logits
from tests.digits_cnn import SPEC, train_digits_cnn
from train.checkpoint import load_model

QDQ = ("QuantizeLinear", "DequantizeLinear")


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    return train_digits_cnn(tmp_path_factory.mktemp("ckpt") / "digits.pt")


def _constants(model) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _producers(model) -> dict:
    return {out: node for node in model.graph.node for out in node.output}


def _readers(model, tensor: str) -> list:
    return [node for node in model.graph.node if tensor in node.input]


def assert_tensorrt_form(model) -> None:
    """Signed int8 everywhere with zero points 0, per-channel weights on the output channels,
    weighted layers and residual Adds fed by DequantizeLinear, no Q/DQ on a layer's own output."""
    constants, producer = _constants(model), _producers(model)
    qdq = [node for node in model.graph.node if node.op_type in QDQ]
    assert any(node.op_type == "QuantizeLinear" for node in qdq)
    for node in qdq:
        zero_point = constants[node.input[2]]  # absent zero point = uint8: would fail here
        assert zero_point.dtype == np.int8 and not zero_point.any(), (node.name, zero_point)
    layers = [node for node in model.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")]
    assert layers
    for layer in layers:
        data, weight = producer[layer.input[0]], producer[layer.input[1]]
        assert data.op_type == "DequantizeLinear" and weight.op_type == "DequantizeLinear", layer.name
        int8_weight, scale = constants[weight.input[0]], constants[weight.input[1]]
        assert int8_weight.dtype == np.int8  # stored as int8, one DequantizeLinear (no float copy)
        axis = next(a.i for a in weight.attribute if a.name == "axis")
        out_channels = int8_weight.shape[0]  # Conv (O, I/g, kh, kw); Gemm with transB (O, I)
        assert axis == 0 and scale.shape == (out_channels,), (layer.name, axis, scale.shape)
        if len(layer.input) > 2:  # float bias: TensorRT has no int32 DequantizeLinear
            assert constants[layer.input[2]].dtype == np.float32
    for add in (node for node in model.graph.node if node.op_type == "Add"):
        assert all(producer[name].op_type == "DequantizeLinear" for name in add.input), add.name
    for dq in (node for node in qdq if node.op_type == "DequantizeLinear" and node.input[0] not in constants):
        # an activation's Q/DQ only where a layer TensorRT runs in int8 reads it (not on ReLU, pooling, outputs)
        readers = {r.op_type for r in _readers(model, dq.output[0])}
        assert readers and readers <= {"Conv", "Gemm", "MatMul", "Add"}, (dq.name, readers)
    for output in model.graph.output:  # the logits leave a float layer, not a DequantizeLinear
        assert producer[output.name].op_type not in QDQ


def test_onnx_int8_trt_writes_tensorrts_form_under_the_guard(digits_checkpoint, tmp_path, capsys):
    out, report = tmp_path / "digits.trt.onnx", tmp_path / "r.json"
    rc = main(["quantize", "--model", str(digits_checkpoint), "--data", "digits", "--to", "onnx-int8-trt",
               "-o", str(out), "--calib-size", "64", "--report", str(report)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert_tensorrt_form(model)
    data = json.loads(report.read_text())
    assert data["chosen"] == "trt-s8s8-pc-minmax" and "latency_ms" not in data  # CPU time says nothing here
    card = ModelCard.from_json({p.key: p.value for p in model.metadata_props}[CARD_KEY])
    assert card.precision == "int8" and card.artifact_format == "onnx"
    assert card.metrics["quantization"]["form"] == "tensorrt" and card.parity.passed
    assert card.reference is not None and (tmp_path / card.reference.file).is_file()
    assert "edgevision verify --model digits.trt.onnx" in printed.out
    images, labels, _ = load_split(SplitDraw("digits", "val"), SPEC)
    fp32 = load_model(digits_checkpoint)[0]
    with torch.no_grad():
        fp32_top1 = np.mean(fp32(torch.from_numpy(images)).numpy().argmax(1) == labels) * 100
    assert np.mean(artifact_logits(out, images).argmax(1) == labels) * 100 >= fp32_top1 - 1.0
    from deploy.cli import main as deploy_main

    assert deploy_main(["verify", "--model", str(out)]) == 0, capsys.readouterr()  # the stored reference set


def test_onnx_int8_trt_guard_refuses_a_miss_then_falls_back(digits_checkpoint, tmp_path, capsys):
    """Percentile 90 clips every activation range: a deliberate miss. Without fallbacks nothing is
    written (exit 2); with them, the layers reading the noisiest tensors stay in float and pass."""
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous artifact")
    miss = ["quantize", "--model", str(digits_checkpoint), "--data", "digits", "--to", "onnx-int8-trt", "-o", str(out),
            "--calib-size", "64", "--method", "percentile", "--percentile", "90", "--max-drop", "0.5",
            "--reference-images", "0", "--report", str(tmp_path / "r.json")]
    assert main([*miss, "--exclude-sensitive", "0", "--no-fp16-fallback"]) == 2
    err = capsys.readouterr().err
    assert "no configuration met the budget of 0.50" in err and "nothing written" in err
    assert out.read_bytes() == b"previous artifact"
    assert main([*miss, "--exclude-sensitive", "2"]) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "r.json").read_text())
    names = [a["name"] for a in report["attempts"]]
    assert names[:2] == ["custom", "custom-skip2"] and not report["attempts"][0]["passed"]
    chosen = next(a for a in report["attempts"] if a["name"] == report["chosen"])
    assert chosen["passed"] and chosen["config"]["form"] == "tensorrt" or chosen["name"] == "fp16"
    model = onnx.load(str(out))
    if report["chosen"] == "custom-skip2":  # the skipped layers are read by quantized layers' own names
        skipped = set(chosen["config"]["exclude"])
        layers = {n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm")}
        assert skipped <= layers, skipped
        ptq_onnx.check_tensorrt_form(model, exclude=tuple(skipped))


def test_onnx_int8_trt_refuses_what_tensorrt_cannot_take(digits_checkpoint, tmp_path, capsys):
    base = ["quantize", "--model", str(digits_checkpoint), "--data", "digits", "--to", "onnx-int8-trt",
            "-o", str(tmp_path / "x.onnx")]
    for extra, message in ((["--activation-type", "u8"], "got qdq u8/s8"), (["--per-tensor"], "s8/s8 per-tensor"),
                           (["--format", "qoperator"], "got qoperator")):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "TensorRT's Q/DQ form is QDQ with s8" in err and message in err and len(err.splitlines()) == 1
    assert not [p for p in tmp_path.iterdir() if p.suffix != ".lock"]


@pytest.fixture(scope="module")
def residual_models(tmp_path_factory):
    """An untrained 32x32 MobileNetV2 (ten residual Adds) as fp32 ONNX, and its int8 ONNX in
    TensorRT's form and in onnxruntime's (u8 activations), calibrated on 8 random images."""
    from deploy.export.torch2onnx import torch2onnx
    from train.models import build_model

    tmp = tmp_path_factory.mktemp("mnv2")
    torch.manual_seed(0)
    spec = Preprocessing(input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    card = ModelCard("mobilenet_v2", [str(d) for d in range(4)], spec, dataset="random")
    fp32 = torch2onnx(build_model("mobilenet_v2", 4, 3, (32, 32)).eval(), card, tmp / "fp32.onnx")
    pre = ptq_onnx.preprocess_for_quantization(fp32, tmp / "pre.onnx")
    calibration = np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32)
    trt = ptq_onnx.quantize_onnx(pre, tmp / "trt.onnx", calibration, ptq_onnx.ONNX_TRT_LADDER[0])
    ort = ptq_onnx.quantize_onnx(pre, tmp / "ort.onnx", calibration, ptq_onnx.ONNX_LADDER[0])
    return pre, trt, ort, calibration


def test_tensorrt_form_quantizes_both_inputs_of_residual_adds(residual_models):
    pre, trt, _, calibration = residual_models
    model = onnx.load(str(trt))
    assert_tensorrt_form(model)
    adds = [node for node in model.graph.node if node.op_type == "Add"]
    assert len(adds) == 10  # MobileNetV2's residual connections, each with both inputs dequantized
    convs = sum(node.op_type == "Conv" for node in onnx.load(str(pre)).graph.node)
    assert ptq_onnx.check_tensorrt_form(model) == convs + 1 + len(adds)  # every Conv, the Gemm, every Add
    assert not [n for n in model.graph.node if n.op_type in ("Clip", "Relu") and n.input[0] in
                {o for q in model.graph.node if q.op_type == "DequantizeLinear" for o in q.output}]
    fp32, int8 = artifact_logits(pre, calibration), artifact_logits(trt, calibration)
    assert np.isfinite(int8).all() and np.corrcoef(fp32.ravel(), int8.ravel())[0, 1] > 0.9


def test_check_tensorrt_form_names_what_breaks_it(residual_models):
    """onnxruntime's CPU form (uint8 activations with zero points) is refused, and so is a Conv
    whose weights lost their per-channel scales or its DequantizeLinear."""
    _, trt, ort, _ = residual_models
    with pytest.raises(EdgevisionError, match=r"zero point must be int8 0, got (uint8|int32)"):
        ptq_onnx.check_tensorrt_form(onnx.load(str(ort)))
    model = onnx.load(str(trt))
    constants = {init.name: init for init in model.graph.initializer}
    conv = next(node for node in model.graph.node if node.op_type == "Conv")
    weight_dq = _producers(model)[conv.input[1]]
    scale = constants[weight_dq.input[1]]
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale)[:1].copy(), scale.name))
    with pytest.raises(EdgevisionError, match=f"Conv '{conv.name}': weights must be per-channel"):
        ptq_onnx.check_tensorrt_form(model)
    model = onnx.load(str(trt))
    conv = next(node for node in model.graph.node if node.op_type == "Conv")
    conv.input[0] = _producers(model)[conv.input[0]].input[0]  # the float tensor, around its Q/DQ
    with pytest.raises(EdgevisionError, match="input 0 .* is not fed by a DequantizeLinear"):
        ptq_onnx.check_tensorrt_form(model)
    assert ptq_onnx.check_tensorrt_form(model, exclude=(conv.name,)) > 0  # kept in float on purpose


# --- fp16 -------------------------------------------------------------------------------------


def test_onnx_fp16_keeps_float32_inputs_and_outputs(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "digits.fp16.onnx"
    rc = main(["quantize", "--model", str(digits_checkpoint), "--data", "digits", "--to", "onnx-fp16", "-o", str(out),
               "--reference-images", "4"])
    assert rc == 0, capsys.readouterr().err
    model = onnx.load(str(out))
    float32 = onnx.TensorProto.FLOAT
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [float32]
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [float32]
    weights = [init for init in model.graph.initializer if init.dims and np.prod(init.dims) > 16]
    assert weights and all(init.data_type == onnx.TensorProto.FLOAT16 for init in weights)
    card = ModelCard.from_json({p.key: p.value for p in model.metadata_props}[CARD_KEY])
    assert card.precision == "fp16" and card.parity.passed and card.reference.images == 4


class _BelowHalfPrecision(torch.nn.Module):
    """Two classes whose weights differ by 1e-4, below float16's resolution near 1 (about 1e-3):
    float32 tells them apart, the fp16 model's two logits are equal and every prediction is class 0.
    (Weights, not activations: onnxruntime's CPU runs fp16 layers it has no fp16 kernel for in float32.)"""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(48, 2, bias=False)
        with torch.no_grad():
            self.head.weight.fill_(1.0)
            self.head.weight[1, :24] += 1e-4  # class 1 wins on images brighter in their first half
            self.head.weight[1, 24:] -= 1e-4

    def forward(self, x):
        return self.head(x.flatten(1))


def test_onnx_fp16_guard_refuses_what_half_precision_loses(tmp_path):
    from quantize.quantize_pipeline import QuantImages, QuantizeSpec, quantize_to_fp16

    spec = Preprocessing(input_size=(4, 4), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    card = ModelCard("fp16-loss", ["a", "b"], spec, dataset="random")
    images = np.random.default_rng(0).uniform(2.0, 3.0, size=(40, 3, 4, 4)).astype(np.float32)
    flat = images.reshape(40, -1)  # a view
    flat[::2, :24] += 1.0  # even images: class 1
    flat[1::2, 24:] += 1.0  # odd images: class 0
    labels = np.tile([1, 0], 20)
    model = _BelowHalfPrecision().eval()
    with torch.no_grad():
        assert (model(torch.from_numpy(images)).numpy().argmax(1) == labels).all()
    out = tmp_path / "m.fp16.onnx"
    with pytest.raises(BudgetMissed, match=r"fp16: top-1 50.00% \(drop 50.00\)"):
        quantize_to_fp16(model, card, out, QuantImages(images, labels), QuantizeSpec(target="onnx-fp16", budget=1.0))
    assert not out.exists()
