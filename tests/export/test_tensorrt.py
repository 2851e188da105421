"""TensorRT: the engine builder's steps against stand-ins of TensorRT 10.3 and 11.x (tests/export/
trt_standins.py: NVIDIA's Python API, the names 11.x removed absent from its stand-in), export from a
real tiny ONNX (fp32, fp16, Q/DQ int8) without torch, the engine card's device fields, and the
refusal of an engine built with another TensorRT version or on another GPU. With a real TensorRT
and a CUDA GPU, engines are built and compared with PyTorch (skipped with the reason elsewhere).
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deploy.errors import EdgevisionError
from tests.export import trt_standins
from tests.export.trt_standins import ORIN, TRT_10_3, TRT_11

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper

from tests.runtime.onnx_models import make_onnx, tiny_card

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = [TRT_10_3, TRT_11]
RTX = ("NVIDIA GeForce RTX 4090", "8.9")


@pytest.fixture
def jetson_root(tmp_path, monkeypatch):
    """A fake Jetson file tree read by the real `deploy.jetson.l4t_release`."""
    import deploy.jetson

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
        "DATE: Wed Jan  8 01:49:37 UTC 2025\n")
    monkeypatch.setattr(deploy.jetson, "l4t_release", functools.partial(deploy.jetson.l4t_release, root=root))
    return root


def fp32_onnx(path: Path) -> Path:
    return make_onnx(path, card=tiny_card())


def fp16_onnx(path: Path) -> Path:
    """The tiny classifier with float16 weights and float32 input/output (Casts at both ends)."""
    model = onnx.load(str(fp32_onnx(path)))
    graph = model.graph
    for init in graph.initializer:
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    graph.node[0].input[0] = "input16"
    graph.node[-1].output[0] = "logits16"
    graph.node.insert(0, helper.make_node("Cast", ["input"], ["input16"], to=TensorProto.FLOAT16))
    graph.node.append(helper.make_node("Cast", ["logits16"], ["logits"], to=TensorProto.FLOAT))
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def qdq_onnx(path: Path) -> Path:
    """The tiny classifier with a Q/DQ pair (signed int8, zero point 0) on its input, as TensorRT reads int8."""
    model = onnx.load(str(fp32_onnx(path)))
    graph = model.graph
    graph.initializer.extend([numpy_helper.from_array(np.array(0.02, np.float32), "s"),
                              numpy_helper.from_array(np.array(0, np.int8), "z")])
    graph.node[0].input[0] = "input_dq"
    graph.node.insert(0, helper.make_node("DequantizeLinear", ["input_q", "s", "z"], ["input_dq"]))
    graph.node.insert(0, helper.make_node("QuantizeLinear", ["input", "s", "z"], ["input_q"]))
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("version", VERSIONS)
def test_builder_steps_strongly_typed_no_precision_flag(tmp_path, monkeypatch, jetson_root, version):
    trt = trt_standins.install(monkeypatch, version)
    from deploy.card import read_sidecar
    from deploy.export.onnx2trt import onnx2trt

    engine = onnx2trt(fp32_onnx(tmp_path / "m.onnx"), tiny_card(), tmp_path / "m.engine", max_batch=4,
                      timing_cache=tmp_path / "cache")
    plan = trt_standins.read_plan(engine)
    assert plan["strongly_typed"] and plan["tensorrt"] == version
    assert plan["network_flags"] == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert not set(plan["builder_flags"]) & set(trt_standins.PRECISION_FLAGS)
    assert plan["profiles"] == [{"input": [[1, 3, 32, 32], [1, 3, 32, 32], [4, 3, 32, 32]]}]
    assert plan["memory_pools"] == {"WORKSPACE": 2 << 30} and plan["timing_cache"]
    assert (tmp_path / "cache").read_bytes()
    assert [what for what, _ in trt.calls] == ["create_network", "parse_from_file", "build_serialized_network"]
    card = read_sidecar(engine)
    assert card.artifact_format == "tensorrt" and card.precision == "fp32"
    assert (card.built_on.tensorrt, card.built_on.gpu, card.built_on.compute_capability) == (version, *ORIN)
    assert card.built_on.l4t_release == "36.4.3"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("make,precision,input_type", [(fp16_onnx, "fp16", "FLOAT"), (qdq_onnx, "int8", "FLOAT")])
def test_precision_is_the_onnx_own(tmp_path, monkeypatch, version, make, precision, input_type):
    trt_standins.install(monkeypatch, version)
    from deploy.card import read_sidecar
    from deploy.export.onnx2trt import onnx2trt, onnx_precision

    source = make(tmp_path / "m.onnx")
    assert onnx_precision(source) == precision
    engine = onnx2trt(source, tiny_card(), tmp_path / "m.engine")
    plan = trt_standins.read_plan(engine)
    assert plan["strongly_typed"] and plan["builder_flags"] == []
    assert plan["inputs"] == {"input": [[-1, 3, 32, 32], input_type]}
    assert read_sidecar(engine).precision == precision
    with pytest.raises(EdgevisionError, match=rf"m.onnx carries {precision} .* for a fp32 engine give a fp32 ONNX"):
        onnx2trt(source, tiny_card(), tmp_path / "other.engine", precision="fp32")
    assert not (tmp_path / "other.engine").exists()


def test_fixed_batch_onnx_gets_no_profile(tmp_path, monkeypatch):
    trt_standins.install(monkeypatch, TRT_11)
    from deploy.export.onnx2trt import onnx2trt

    engine = onnx2trt(make_onnx(tmp_path / "m.onnx", batch=1, card=tiny_card()), tiny_card(), tmp_path / "m.engine")
    assert trt_standins.read_plan(engine)["profiles"] == []


def test_removed_names_are_absent_from_the_11_standin_and_unused(monkeypatch):
    old = trt_standins._make_trt(TRT_10_3)
    new = trt_standins._make_trt(TRT_11)
    owners = {"tensorrt": lambda m: m, "BuilderFlag": lambda m: m.BuilderFlag, "Builder": lambda m: m.Builder,
              "IBuilderConfig": lambda m: m.IBuilderConfig,
              "NetworkDefinitionCreationFlag": lambda m: m.NetworkDefinitionCreationFlag}
    for owner, names in trt_standins.REMOVED_IN_11.items():
        for name in names:
            assert hasattr(owners[owner](old), name) and not hasattr(owners[owner](new), name), (owner, name)
    used = set()  # every name and attribute our TensorRT code touches (docstrings aside)
    for module in ("deploy/export/onnx2trt.py", "deploy/backends/tensorrt.py"):
        for node in ast.walk(ast.parse((ROOT / module).read_text())):
            if isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.Name):
                used.add(node.id)
    assert "STRONGLY_TYPED" in used
    assert not used & {name for names in trt_standins.REMOVED_IN_11.values() for name in names}
    assert not {name for name in used if "Calibrator" in name or name == "BuilderFlag"}


def test_no_gpu_is_one_line(tmp_path, monkeypatch):
    trt_standins.install(monkeypatch, TRT_11, gpu=None)
    monkeypatch.setitem(sys.modules, "torch", None)  # torch's CUDA is not asked either
    from deploy.export.onnx2trt import onnx2trt

    with pytest.raises(EdgevisionError, match="needs a CUDA GPU"):
        onnx2trt(fp32_onnx(tmp_path / "m.onnx"), tiny_card(), tmp_path / "m.engine")


def build(tmp_path: Path, monkeypatch, version: str, gpu=ORIN) -> Path:
    trt_standins.install(monkeypatch, version, gpu)
    from deploy.export.onnx2trt import onnx2trt

    return onnx2trt(fp32_onnx(tmp_path / "m.onnx"), tiny_card(), tmp_path / "m.engine")


@pytest.mark.parametrize("built,here", [(TRT_10_3, TRT_11), (TRT_11, TRT_10_3)])
def test_engine_from_another_tensorrt_is_refused(tmp_path, monkeypatch, built, here):
    import deploy

    engine = build(tmp_path, monkeypatch, built)
    trt = trt_standins.install(monkeypatch, here)
    with pytest.raises(EdgevisionError) as error:
        deploy.load(engine)
    line = str(error.value)
    assert "\n" not in line and f"TensorRT {built} on Orin" in line and f"this is TensorRT {here}" in line
    assert not trt.calls  # refused before TensorRT read the engine


def test_engine_from_another_gpu_is_refused(tmp_path, monkeypatch):
    import deploy

    engine = build(tmp_path, monkeypatch, TRT_10_3, gpu=RTX)
    trt = trt_standins.install(monkeypatch, TRT_10_3, gpu=ORIN)
    with pytest.raises(EdgevisionError, match=r"built with TensorRT 10.3.0 on NVIDIA GeForce RTX 4090 \(compute "
                       r"capability 8.9\); this is Orin \(compute capability 8.7\)"):
        deploy.load(engine)
    assert not trt.calls


@pytest.mark.parametrize("version", VERSIONS)
def test_engine_from_here_loads_and_runs(tmp_path, monkeypatch, version):
    import deploy
    from tests.runtime.onnx_models import reference_logits

    engine = build(tmp_path, monkeypatch, version)
    here = ".".join(version.split(".")[:3])  # the same release, also without the wheel's build number
    trt = trt_standins.install(monkeypatch, here)
    with pytest.warns(UserWarning, match="unverified"):  # built by onnx2trt alone: no parity check
        clf = deploy.load(engine)
    assert trt.calls == [("deserialize_cuda_engine", engine.stat().st_size)]
    assert clf.info["max_batch"] == 8 and clf.info["provider"] == f"TensorRT {here}"
    batch = np.random.default_rng(0).normal(size=(5, 3, 32, 32)).astype(np.float32)
    big = np.concatenate([batch, batch])  # 10 > max_batch: the classifier runs it in two
    np.testing.assert_allclose(clf.run(big), reference_logits(big), atol=1e-4)
    with pytest.raises(EdgevisionError, match=r"does not take input shape \(9, 3, 32, 32\)"):
        clf.backend.run(np.zeros((9, 3, 32, 32), np.float32))
    corrupt = tmp_path / "bad.engine"
    corrupt.write_bytes(engine.read_bytes()[:100])
    with pytest.raises(EdgevisionError, match="cannot deserialize"):
        deploy.load(corrupt, labels=None)


@pytest.mark.parametrize("version", VERSIONS)
def test_export_from_onnx_replays_its_reference_set(tmp_path, monkeypatch, version, capsys):
    from deploy.card import read_sidecar
    from edgevision import main
    from tests.runtime.reference_sets import referenced_onnx

    trt_standins.install(monkeypatch, version)
    source = referenced_onnx(tmp_path / "m.onnx")
    engine = tmp_path / "m.engine"
    assert main(["export", "--model", str(source), "--format", "tensorrt", "--out", str(engine)]) == 0
    printed = capsys.readouterr().out
    assert "parity: top-1 agreement 100.00% with pytorch on 6 images (generated)" in printed and "passed" in printed
    card = read_sidecar(engine)
    assert card.parity.passed and card.parity.backend == "tensorrt" and card.reference.file == "m.engine.ref.npz"
    assert (tmp_path / "m.engine.ref.npz").is_file()
    assert main(["verify", "--model", str(engine)]) == 0


def test_export_from_an_altered_onnx_fails_its_replay(tmp_path, monkeypatch, capsys):
    from deploy.card import read_sidecar
    from edgevision import main
    from tests.runtime.reference_sets import write_tiny_reference

    trt_standins.install(monkeypatch, TRT_11)
    source = make_onnx(tmp_path / "m.onnx", card=tiny_card(), seed=1)  # other weights than the reference set's
    write_tiny_reference(source, tiny_card())
    assert main(["export", "--model", str(source), "--format", "tensorrt", "--out", str(tmp_path / "m.engine")]) == 1
    assert "parity check failed" in capsys.readouterr().err
    assert not (tmp_path / "m.engine").exists() and not read_sidecar(tmp_path / "m.failed.engine").parity.passed
    assert not (tmp_path / "m.failed.engine.ref.npz").exists()


CLI = """
import sys
sys.modules["torch"] = None  # any import of torch fails
from tests.export import trt_standins
trt_standins.install_for_process(sys.argv[1])
from edgevision import main
sys.exit(main(sys.argv[2:]))
"""


def run_cli(version: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, version, "export", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("version", VERSIONS)
def test_cli_exports_an_onnx_without_torch(tmp_path, version):
    from deploy.card import read_sidecar

    source = fp16_onnx(tmp_path / "m.onnx")
    done = run_cli(version, "--model", str(source), "--format", "tensorrt", "--out", str(tmp_path / "m.engine"),
                   "--max-batch", "2")
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "(tensorrt, fp16)" in done.stdout and f"TensorRT {version} on Orin" in done.stdout
    assert "not verified" in done.stdout  # the tiny ONNX has no reference set beside it
    assert trt_standins.read_plan(tmp_path / "m.engine")["profiles"][0]["input"][2] == [2, 3, 32, 32]
    card = read_sidecar(tmp_path / "m.engine")
    assert card.precision == "fp16" and card.class_names == tiny_card().class_names and card.parity is None
    written = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert written == ["m.engine", "m.engine.json", "m.onnx"]


def test_cli_refuses_a_precision_the_onnx_does_not_carry(tmp_path):
    source = fp32_onnx(tmp_path / "m.onnx")
    done = run_cli(TRT_11, "--model", str(source), "--format", "tensorrt", "--precision", "int8",
                   "--out", str(tmp_path / "m.engine"))
    assert done.returncode == 2
    assert "m.onnx carries fp32 and TensorRT builds it as such; for a int8 engine give a int8 ONNX" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "m.engine").exists()


def test_onnx_input_checks(tmp_path):
    from deploy.export import check_request

    with pytest.raises(EdgevisionError, match="format onnx is exported from a checkpoint"):
        check_request("onnx", None, "x.onnx", source="onnx")
    with pytest.raises(EdgevisionError, match=r"takes precision fp32, not fp16 from a checkpoint .*fp16 ONNX"):
        check_request("tensorrt", "fp16", "x.engine")
    bare = make_onnx(tmp_path / "bare.onnx")
    done = run_cli(TRT_11, "--model", str(bare), "--format", "tensorrt", "--out", str(tmp_path / "m.engine"))
    assert done.returncode == 2 and "has no edgevision card in its metadata" in done.stderr


def to_fp16_onnx(path: Path) -> Path:
    """fp16 weights and activations, float32 input and output (onnxruntime's float16 converter)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    out = path.with_name("m.fp16.onnx")
    onnx.save(model, str(out))
    return out


def require_tensorrt():
    torch = pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401
    except ModuleNotFoundError:
        pytest.skip("tensorrt is not installed (pip install edgevision[tensorrt], or JetPack's TensorRT on a Jetson)")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU and none is visible")


def test_missing_tensorrt_is_one_line(tmp_path):
    try:
        import tensorrt  # noqa: F401
    except ModuleNotFoundError:
        import deploy

        path = tmp_path / "m.engine"
        path.write_bytes(b"\0" * 64)
        with pytest.raises(EdgevisionError,
                           match=r"needs the Python package 'tensorrt'.*pip install edgevision\[tensorrt\]"):
            deploy.load(path)
    else:
        pytest.skip("tensorrt is installed here")


@pytest.mark.gpu
@pytest.mark.parametrize("precision,atol", [("fp32", 1e-3), ("fp16", 5e-2)])
def test_engine_matches_torch(tmp_path, precision, atol):
    require_tensorrt()
    torch = pytest.importorskip("torch")
    import deploy
    from deploy.card import ModelCard
    from deploy.export.onnx2trt import onnx2trt
    from deploy.export.torch2onnx import torch2onnx
    from deploy.preprocess import Preprocessing

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 3),
    ).eval()
    card = ModelCard("tiny", ["a", "b", "c"], Preprocessing((32, 32), 36), precision=precision,
                     artifact_format="tensorrt")
    onnx_path = torch2onnx(model, card, tmp_path / "m.onnx")
    if precision == "fp16":  # an fp16 ONNX: TensorRT builds the graph's own types
        onnx_path = to_fp16_onnx(onnx_path)
    engine = onnx2trt(onnx_path, card, tmp_path / "m.engine", precision, max_batch=4, timing_cache=tmp_path / "cache")
    assert (tmp_path / "cache").stat().st_size > 0
    clf = deploy.load(engine)
    assert clf.card.precision == precision and clf.info["max_batch"] == 4
    batch = np.random.default_rng(0).normal(size=(6, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(clf.run(batch), expected, atol=atol)
    corrupt = tmp_path / "bad.engine"
    corrupt.write_bytes(engine.read_bytes()[:100])
    with pytest.raises(EdgevisionError, match="cannot deserialize"):
        deploy.load(corrupt, labels=None)


def test_checkpoint_goes_through_an_fp32_onnx(tmp_path, monkeypatch, jetson_root):
    torch = pytest.importorskip("torch")
    checkpoint = pytest.importorskip("train.checkpoint")
    models = pytest.importorskip("train.models")
    from deploy.card import ModelCard, read_sidecar
    from deploy.export.pipeline import ExportSpec, export_checkpoint
    from deploy.preprocess import Preprocessing

    torch.manual_seed(0)
    card = ModelCard("cnn", ["cats", "dogs"], Preprocessing((32, 32), 36), model_options={"width": 8})
    model = models.build_model("cnn", 2, 3, (32, 32), width=8)
    ckpt = checkpoint.save_checkpoint(tmp_path / "model.pt", card, model.state_dict())
    trt_standins.install(monkeypatch, TRT_10_3)
    result = export_checkpoint(ckpt, "tensorrt", tmp_path / "model.engine",
                               ExportSpec(precision="fp32", verify_images=0, reference_images=0))
    assert trt_standins.read_plan(result.path)["strongly_typed"]
    engine_card = read_sidecar(result.path)
    assert engine_card.source_sha256 == checkpoint.sha256_file(ckpt) and engine_card.precision == "fp32"
    assert engine_card.built_on.line() == "TensorRT 10.3.0 on Orin (compute capability 8.7, L4T 36.4.3)"
