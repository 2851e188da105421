"""Where a model runs: `--provider` and `--precision` from every command that loads one, refused in one
line where they cannot be had (the real onnxruntime here is the CPU build; torch here finds no GPU),
the torch backend at fp16 / bf16, and `make gpu-check`'s dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deploy
from deploy.backends import check_options, list_precisions, list_providers
from deploy.errors import EdgevisionError
from tests.runtime.onnx_models import make_onnx, tiny_card
from tests.runtime.reference_sets import referenced_onnx

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:.*unverified:UserWarning")
ort = pytest.importorskip("onnxruntime")
CPU_BUILD = "CUDAExecutionProvider" not in ort.get_available_providers()


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


@pytest.mark.skipif(not CPU_BUILD, reason="onnxruntime here has CUDA: the refusal needs the CPU build")
@pytest.mark.parametrize("provider, missing", [("cuda", "CUDAExecutionProvider"),
                                               ("tensorrt", "TensorrtExecutionProvider")])
def test_a_gpu_provider_on_the_cpu_build_names_what_is_missing(tmp_path, provider, missing):
    model = make_onnx(tmp_path / "m.onnx", card=tiny_card())
    with pytest.raises(EdgevisionError) as exc:
        deploy.load(model, provider=provider)
    text = one_line(exc)
    assert missing in text and "onnxruntime-gpu" in text and f"onnxruntime {ort.__version__}" in text
    assert deploy.load(model, provider="cpu").info["provider"] == "CPUExecutionProvider"
    assert deploy.load(model, provider="auto").info["provider"] == "CPUExecutionProvider"


@pytest.mark.skipif(not CPU_BUILD, reason="onnxruntime here has CUDA")
def test_verify_provider_cuda_is_a_one_line_error_with_status_2(tmp_path):
    model = referenced_onnx(tmp_path / "m.onnx")
    done = subprocess.run([sys.executable, "-m", "edgevision", "verify", "--model", str(model), "--provider", "cuda"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("edgevision verify: error: --provider cuda needs onnxruntime's CUDAExecutionProvider")
    passed = subprocess.run([sys.executable, "-m", "edgevision", "verify", "--model", str(model), "--provider", "cpu"],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert passed.returncode == 0 and "passed" in passed.stdout, passed.stderr


def test_a_backend_refuses_a_provider_or_precision_it_does_not_take():
    with pytest.raises(EdgevisionError) as exc:
        check_options("executorch", {"provider": "cuda"})
    assert one_line(exc) == ("backend 'executorch' runs on cpu, not --provider cuda; cuda is for onnxruntime, "
                             "tensorrt, torch")
    with pytest.raises(EdgevisionError) as exc:
        check_options("onnxruntime", {"precision": "fp16"})
    assert "--precision fp16 is for torch" in one_line(exc)
    check_options("onnxruntime", {"provider": "tensorrt"})
    check_options("torch", {"provider": "cuda", "precision": "bf16"})
    check_options("openvino", {"provider": "auto"})
    assert list_providers() == ["auto", "cpu", "cuda", "tensorrt"] and list_precisions() == ["bf16", "fp16", "fp32"]


PARSERS = {
    "predict": ("deploy.cli:predict_parser", ["--model", "m.onnx", "a.png"]),
    "verify": ("deploy.cli:verify_parser", ["--model", "m.onnx"]),
    "bench": ("benchmarks.cli:build_parser", ["m.onnx"]),
    "camera": ("camera_app.cli:camera_parser", ["--model", "m.onnx", "--source", "0"]),
}


def parser_of(command: str):
    import importlib

    module, function = PARSERS[command][0].split(":")
    return getattr(importlib.import_module(module), function)()


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_command_that_loads_a_model_takes_the_one_provider_option(command, capsys):
    from deploy.cli_util import PROVIDER_HELP, device_options

    parser = parser_of(command)
    base = PARSERS[command][1]
    args = parser.parse_args([*base, "--provider", "tensorrt", "--precision", "bf16"])
    assert device_options(args.provider, args.precision) == {"provider": "tensorrt", "precision": "bf16"}
    assert device_options(parser.parse_args(base).provider, parser.parse_args(base).precision) == {"provider": "auto"}
    action = next(a for a in parser._actions if "--provider" in a.option_strings)
    assert action.help == PROVIDER_HELP and list(action.choices) == list_providers()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*base, "--provider", "gpu"])
    assert exc.value.code == 2 and "invalid choice: 'gpu'" in capsys.readouterr().err


def test_camera_passes_the_provider_to_the_model(tmp_path):
    from camera_app.app import load_classifier
    from camera_app.cli import camera_parser, config_from_args

    model = make_onnx(tmp_path / "m.onnx", card=tiny_card())
    config = config_from_args(camera_parser().parse_args(["--model", str(model), "--source", "0", "--provider", "cpu"]))
    assert config.provider == "cpu" and load_classifier(config).info["provider"] == "CPUExecutionProvider"
    if CPU_BUILD:
        config = config_from_args(camera_parser().parse_args(["--model", str(model), "--source", "0",
                                                              "--provider", "cuda"]))
        with pytest.raises(EdgevisionError, match="CUDAExecutionProvider"):
            load_classifier(config)


# --- the torch backend


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from deploy.card import ModelCard
    from deploy.preprocess import Preprocessing
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    torch.manual_seed(0)
    card = ModelCard("cnn", [str(i) for i in range(10)], Preprocessing((8, 8), None, (0.3,), (0.37,), "GRAY"))
    model = build_model("cnn", 10, 1, (8, 8))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", card, model.state_dict())


def test_torch_cuda_without_a_gpu_names_what_is_missing(checkpoint):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EdgevisionError) as exc:
        deploy.load(checkpoint, provider="cuda")
    text = one_line(exc)
    assert text.startswith("--provider cuda: torch ")
    assert "CPU-only build" in text or "finds no usable NVIDIA GPU" in text


@pytest.mark.parametrize("precision, judged", [("fp32", "fp32"), ("bf16", "bf16")])
def test_torch_at_a_lower_precision_is_verified_at_its_tolerance(checkpoint, precision, judged):
    from deploy.preprocess import preprocess_batch
    from deploy.reference import ReferenceSet, compact_image, top_k_indices
    from deploy.verify import RELATIVE_TOLERANCE, verify
    from tests.runtime.reference_sets import camera_like_images

    reference_model = deploy.load(checkpoint)
    spec = reference_model.card.preprocessing
    stored = np.stack([compact_image(image, spec) for image in camera_like_images(6)])
    logits = reference_model.run(preprocess_batch(list(stored), spec)).astype(np.float32)
    reference = ReferenceSet(stored, logits, top_k_indices(logits), "fp32", source="generated")
    classifier = deploy.load(checkpoint, provider="cpu", precision=precision)
    assert classifier.info["precision"] == precision
    assert classifier.run(preprocess_batch(list(stored), spec)).dtype == np.float32
    result = verify(classifier, reference)
    assert result.passed and result.precision == judged
    scale = max(1.0, float(logits.max() - logits.min()))
    assert result.tolerance.max_abs_logit_diff == pytest.approx(RELATIVE_TOLERANCE[judged] * scale)
    if precision == "bf16":
        assert result.max_abs_logit_diff > 0  # it did run in bf16


# --- make gpu-check without a GPU


def test_gpu_check_dry_run_names_every_skip(tmp_path):
    artifacts = tmp_path / "demo"
    (artifacts / "train").mkdir(parents=True)
    make_onnx(artifacts / "train" / "model.onnx", card=tiny_card())
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--artifacts", str(artifacts),
                           "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                          timeout=300)
    assert done.returncode == 0, done.stderr
    if "no NVIDIA GPU found; dry run" not in done.stdout:
        pytest.skip("this machine has an NVIDIA GPU: not a dry run")
    report = json.loads((out / "gpu_check.json").read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert list(rows) == ["TensorRT fp32 engine", "TensorRT fp16 engine", "TensorRT int8 engine",
                          "onnxruntime CUDA provider fp32", "onnxruntime TensorRT provider fp32",
                          "PyTorch CUDA eager fp32", "PyTorch CUDA eager fp16", "PyTorch CUDA eager bf16"]
    assert report["dry_run"] is True and all(row["verify"] == "unverified" for row in rows.values())
    for name, row in rows.items():
        assert row["status"] in ("skipped", "dry run") and row["reason"], name
        assert f"  {name}: skipped: {row['reason']}" in done.stdout or row["status"] == "dry run"
    if CPU_BUILD:
        assert "has no CUDAExecutionProvider" in rows["onnxruntime CUDA provider fp32"]["reason"]
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        assert rows["TensorRT fp16 engine"]["reason"].startswith("TensorRT is not installed")
    torch_reason = rows["PyTorch CUDA eager bf16"]["reason"]
    assert "torch" in torch_reason or "GPU" in torch_reason
    assert (out / "gpu_check.md").read_text().count("| unverified |") == 8


def test_gpu_check_starts_from_what_exists(tmp_path):
    from benchmarks.gpu_check import Artifacts, plan_rows, why_skipped

    artifacts = Artifacts.under(tmp_path / "demo")
    fp16 = make_onnx(tmp_path / "given.fp16.onnx", card=tiny_card())
    rows = {p.name: p for p in plan_rows(artifacts, tmp_path / "out", "digits", fp16_onnx=fp16)}
    met = {"runtime": None, "torch-cuda": None, "ort-cuda": None, "ort-tensorrt": None, "tensorrt": None,
           "quantizer": "making the fp16 / int8 ONNX needs torch"}
    given = rows["TensorRT fp16 engine"]
    assert [step.argv[0] for step in given.builds] == ["export"] and why_skipped(given, met) is None
    assert why_skipped(rows["TensorRT int8 engine"], met) == met["quantizer"]  # made from the checkpoint
    assert why_skipped(rows["TensorRT fp32 engine"], met).startswith(f"no {artifacts.onnx} (run `make demo` first")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.int8.engine").write_bytes(b"built before")  # an engine there: no quantizer needed
    assert why_skipped(rows["TensorRT int8 engine"], met) is None
    assert why_skipped(rows["TensorRT int8 engine"], {**met, "tensorrt": "no TensorRT"}) == "no TensorRT"  # to run it


def test_a_gpu_check_row_measures_verifies_and_scores(tmp_path, checkpoint):
    import cv2

    from benchmarks.gpu_check import Plan, run_row, run_row_in_process

    model = referenced_onnx(tmp_path / "m.onnx")
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in tiny_card().class_names:
        (images / name).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(images / name / f"{i}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    row = run_row_in_process(Plan("ort", "onnxruntime", model, {"provider": "cpu"}, (), (model,)), (1, 4), 0.05, images)
    assert (row.status, row.verify, row.precision, row.provider) == ("ok", "passed", "fp32", "CPUExecutionProvider")
    assert set(row.latency_ms) == {"1", "4"} and all(0 < lat["p50"] <= lat["p99"] for lat in row.latency_ms.values())
    assert row.images == 6 and 0 <= row.top1 <= 1 and row.load_s > 0
    unreferenced = run_row(Plan("torch", "torch", checkpoint, {"provider": "cpu", "precision": "bf16"}, (), ()),
                           (1,), 0.05, tmp_path / "none")
    assert (unreferenced.status, unreferenced.verify, unreferenced.precision) == ("ok", "unverified", "bf16")
    assert "no reference set" in unreferenced.verify_line and unreferenced.top1 is None
    if CPU_BUILD:
        failed = run_row(Plan("cuda", "onnxruntime", model, {"provider": "cuda"}, (), ()), (1,), 0.05, images)
        assert failed.status == "failed" and "CUDAExecutionProvider" in failed.reason and failed.verify == "unverified"


def test_onnxruntime_falling_back_to_the_cpu_is_refused():
    """onnxruntime-gpu opens a session on the CPU when CUDA cannot start; a session stand-in (no CUDA here)."""
    from deploy.backends.onnxruntime import check_session_providers

    class FellBack:
        def get_providers(self):
            return ["CPUExecutionProvider"]

    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(EdgevisionError,
                       match="could not start CUDAExecutionProvider .* would run on CPUExecutionProvider"):
        check_session_providers(Path("m.onnx"), FellBack(), wanted, "cuda")
    check_session_providers(Path("m.onnx"), FellBack(), wanted, "auto")  # auto may fall back


def test_without_opencv_a_model_runs_and_replays_its_reference_set(tmp_path):
    """A GPU box with torch and numpy only: loading, timing and verify need no OpenCV; reading an image
    says in one line what to install."""
    model = referenced_onnx(tmp_path / "m.onnx")
    shadow = tmp_path / "shadow" / "cv2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'cv2\'", name="cv2")\n')
    script = ("import sys, deploy\n"
              "from deploy.errors import EdgevisionError\n"
              "from deploy.verify import verify_file\n"
              f"result = verify_file({str(model)!r}, provider='cpu')\n"
              "print(result.line())\n"
              "try:\n"
              f"    deploy.load({str(model)!r}).predict({str(model)!r})\n"
              "except EdgevisionError as exc:\n"
              "    print('error:', exc)\n"
              "print('cv2 loaded:', type(sys.modules.get('deploy.preprocess').cv2).__name__)\n")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(REPO)])})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("-> passed")
    assert lines[1].startswith("error: OpenCV (cv2) is not installed") and "opencv-python-headless" in lines[1]
    assert lines[2] == "cv2 loaded: MissingOpenCV"
