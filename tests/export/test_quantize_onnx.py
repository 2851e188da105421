"""`edgevision quantize` / `prune` end to end on a tiny CNN trained on sklearn's digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")

from deploy.card import CARD_KEY, ModelCard
from deploy.preprocess import Preprocessing
from quantize.calibration import SplitDraw, balanced_indices, check_calibration_set, load_split
from quantize.cli import main
from quantize.guard import Guard
from quantize.prune import channel_counts
from quantize.ptq_onnx import ONNX_LADDER
from tests.digits_cnn import SPEC
from train.checkpoint import load_model
from train.engine import torch_logits
from train.pruned import STRUCTURE_KEY


def test_balanced_indices_take_an_equal_share():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 40)
    index = balanced_indices(labels, 30, seed=1)
    assert len(index) == 30 and len(set(index)) == 30
    assert np.bincount(labels[index]).tolist() == [10, 10, 10]
    assert balanced_indices(labels, 30, seed=1).tolist() == index.tolist()


def test_calibration_set_checks():
    with pytest.raises(Exception, match="too small: 3 images"):
        check_calibration_set(np.array([0, 1, 0]))
    with pytest.raises(Exception, match="single class"):
        check_calibration_set(np.zeros(20, dtype=int))


def test_guard_picks_best_passing_and_reports_misses():
    labels = np.array([0, 1, 0, 1])
    fp32 = np.eye(2)[labels]
    guard = Guard(fp32, labels, budget=1.0)
    from quantize.guard import Attempt

    guard.judge(Attempt("bad", "int8"), np.eye(2)[[1, 1, 0, 1]])
    assert guard.best() is None
    with pytest.raises(Exception, match=r"no configuration met .*bad: top-1 75.00% \(drop 25.00\)"):
        guard.require_best()
    guard.judge(Attempt("good", "int8"), fp32)
    assert guard.best().name == "good" and guard.report()["chosen"] == "good"


@pytest.mark.slow
def test_onnx_int8_keeps_accuracy_and_carries_card(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "digits.int8.onnx"
    report = tmp_path / "report.json"
    rc = main(["quantize", "--model", str(digits_checkpoint), "--data", "digits", "-o", str(out), "--calib-size", "64",
               "--report", str(report), "--no-latency"])
    assert rc == 0, capsys.readouterr().err
    import onnx

    from quantize.scoring import artifact_logits

    proto = onnx.load(str(out))
    assert any(node.op_type in ("QuantizeLinear", "QLinearConv") for node in proto.graph.node)
    card = ModelCard.from_json({p.key: p.value for p in proto.metadata_props}[CARD_KEY])
    assert card.precision == "int8" and card.artifact_format == "onnx"
    data = json.loads(report.read_text())
    assert card.parity.passed and card.parity.reference == "fp32 onnx" and card.parity.source == "val split of digits"
    assert card.parity.reference_top1 == data["fp32_top1"] and card.metrics["quantization"]["name"] == data["chosen"]
    assert data["attempts"][0]["passed"] and data["fp32_top1"] > 0.9
    images, labels, _ = load_split(SplitDraw("digits", "val"), SPEC)
    model, _ = load_model(digits_checkpoint)
    fp32_top1 = np.mean(torch_logits(model, images).argmax(1) == labels) * 100
    int8_top1 = np.mean(artifact_logits(out, images).argmax(1) == labels) * 100
    assert int8_top1 >= fp32_top1 - 1.0


@pytest.mark.slow
def test_guard_rejects_a_miss_and_writes_nothing(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "bad.onnx"
    out.write_bytes(b"previous artifact")
    # Percentile 90 clips every activation range: a deliberate, large loss.
    rc = main(["quantize", "--model", str(digits_checkpoint), "--data", "digits", "-o", str(out),
               "--method", "percentile", "--percentile", "90", "--per-tensor", "--max-drop", "0.5",
               "--exclude-sensitive", "0", "--no-fp16-fallback", "--no-latency", "--calib-size", "64",
               "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no configuration met the budget of 0.50" in err and "nothing written" in err
    assert out.read_bytes() == b"previous artifact"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad.onnx") and p.suffix != ".lock"]
    attempts = json.loads((tmp_path / "r.json").read_text())["attempts"]
    assert attempts[0]["name"] == "custom" and not attempts[0]["passed"] and attempts[0]["drop"] > 0.005


def test_bad_inputs_are_one_line_errors(digits_checkpoint, tmp_path, capsys):
    model, onnx_out, pruned = str(digits_checkpoint), str(tmp_path / "x.onnx"), str(tmp_path / "p.pt")
    cases = [
        (["quantize", "--model", model, "--data", "digits", "-o", str(tmp_path / "x.pte")], "writes a .onnx"),
        (["quantize", "--model", str(tmp_path / "none.pt"), "--data", "digits", "-o", onnx_out], "not found"),
        (["quantize", "--model", model, "--data", "digits", "-o", onnx_out, "--calib-size", "4"],
         "calibration set too small: 4 images"),
        (["quantize", "--model", model, "--data", "digits", "-o", onnx_out, "--max-drop", "-1"], "must be >= 0"),
        (["quantize", "--model", model, "--data", "nope", "-o", onnx_out], "unknown data spec"),
        (["prune", "--model", model, "-o", pruned, "--ratio", "1.5"], "between 0 and 1"),
        (["prune", "--model", model, "-o", pruned, "--ratio", "0.5", "--ignore", "zzz"], "no layer named 'zzz'"),
        (["prune", "--model", model, "-o", pruned, "--ratio", "0.5", "--reconstruct", "-1"],
         "--reconstruct must be a number of images"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not [p for p in tmp_path.iterdir() if p.suffix != ".lock"]  # the lock file beside an -o stays


def test_prune_and_quantize_name_their_split_and_prune_says_what_rounding_kept(digits_checkpoint, tmp_path, capsys):
    """The digits CNN of tests/digits_cnn.py (16 and 32 channels): multiples of 8 keep 40 % of the MACs
    for a 50 % target, which prune says; by default it rounds finer and says that instead."""
    common = ["--target-macs", "0.5", "--data", "digits", "--reconstruct", "0", "--eval-split", "test"]
    assert main(["prune", str(digits_checkpoint), "-o", str(tmp_path / "p8.pt"), "--round-to", "8", *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert " test top-1 " in lines[0]
    assert lines[0].endswith(f"on 270 images (test split of digits); wrote {tmp_path}/p8.pt")
    assert lines[1] == ("kept 40% of the MACs, not the 50% asked: channel counts rounded down to multiples of 8 move "
                        "this network's MACs in coarse steps; --round-to 2 keeps 46%")
    assert main(["prune", str(digits_checkpoint), "-o", str(tmp_path / "p.pt"), *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("kept 46% of the MACs (target 50%) with channel counts in multiples of 2: ")
    assert load_model(tmp_path / "p.pt")[1].metrics["pruning"]["round_to"] == 2

    assert main(["quantize", str(digits_checkpoint), "--data", "digits", "-o", str(tmp_path / "q.onnx"), "--no-latency",
                 "--calib-size", "32", "--eval-size", "60", "--reference-images", "0"]) == 0
    printed = capsys.readouterr()
    assert ": val top-1 " in printed.out and " on 60 images (val split of digits) (fp32 " in printed.out
    assert "fp32 top-1 " in printed.err and " on 60 images (val split of digits); budget 1.0 points" in printed.err


@pytest.mark.slow
def test_prune_checkpoint_loads_and_quantizes(digits_checkpoint, tmp_path, capsys):
    pruned = tmp_path / "pruned.pt"
    rc = main(["prune", "--model", str(digits_checkpoint), "-o", str(pruned), "--ratio", "0.5", "--data", "digits",
               "--finetune-epochs", "2", "--batch-size", "64"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "MACs" in out.out and "top-1" in out.out
    model, card = load_model(pruned)
    assert STRUCTURE_KEY in card.model_options and card.metrics["pruning"]["macs_reduction"] > 0.4
    # the lesson CNN's pruned layers all lose outputs, and its head sees too few rows to re-fit
    assert card.metrics["pruning"]["reconstruction_errors"] == [{}]
    assert channel_counts(model)["features.0"] == 8 and channel_counts(model)["head"] == 10
    images, labels, _ = load_split(SplitDraw("digits", "val"), SPEC)
    assert np.mean(torch_logits(model, images).argmax(1) == labels) > 0.85
    assert main(["quantize", "--model", str(pruned), "--data", "digits", "-o", str(tmp_path / "p.onnx"), "--no-latency",
                 "--calib-size", "32", "--max-drop", "2"]) == 0


@pytest.mark.slow
def test_prune_with_feature_distillation_and_glob_ignore(digits_checkpoint, tmp_path, capsys):
    """`--distill features` trains through a projection (the head's input is pruned too) and
    reports every epoch; `--ignore` globs keep the named layers' outputs."""
    pruned = tmp_path / "pruned.pt"
    rc = main(["prune", "--model", str(digits_checkpoint), "-o", str(pruned), "--ratio", "0.5", "--data", "digits",
               "--finetune-epochs", "2", "--batch-size", "64", "--distill", "features", "--ignore", "features.[0]",
               "--importance", "lamp"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "fine-tune epoch 1/2" in out.err and "fine-tune epoch 2/2" in out.err
    model, card = load_model(pruned)
    assert channel_counts(model)["features.0"] == 16, "kept by --ignore"
    assert card.metrics["pruning"]["top1_after"] > 0.85


@pytest.mark.slow
def test_guard_falls_back_to_sensitive_nodes_in_float_then_fp16(digits_checkpoint, tmp_path, capsys):
    """The same deliberate miss, with the fallbacks on: the most sensitive nodes are kept in float
    (a new attempt), and when that still misses, fp16; the result meets the budget."""
    out = tmp_path / "fallback.onnx"
    rc = main(["quantize", "--model", str(digits_checkpoint), "--data", "digits", "-o", str(out),
               "--method", "percentile", "--percentile", "90", "--per-tensor", "--max-drop", "0.5",
               "--exclude-sensitive", "2", "--no-latency", "--calib-size", "64", "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    names = [a["name"] for a in report["attempts"]]
    assert names[:2] == ["custom", "custom-skip2"] and len(report["attempts"][1]["config"]["exclude"]) == 2
    assert "most sensitive nodes" in err
    chosen = next(a for a in report["attempts"] if a["name"] == report["chosen"])
    assert chosen["passed"] and chosen["drop"] <= 0.005
    assert names[-1] == "fp16" if report["chosen"] == "fp16" else report["chosen"] == "custom-skip2"
    import onnx

    card = ModelCard.from_json({p.key: p.value for p in onnx.load(str(out)).metadata_props}[CARD_KEY])
    assert card.precision == ("fp16" if report["chosen"] == "fp16" else "int8")


@pytest.mark.slow
def test_onnx_fp16_is_a_valid_graph_within_budget(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "digits.fp16.onnx"
    rc = main(["quantize", "--model", str(digits_checkpoint), "--data", "digits", "--to", "onnx-fp16", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    import onnx

    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in proto.graph.initializer)
    card = ModelCard.from_json({p.key: p.value for p in proto.metadata_props}[CARD_KEY])
    assert card.precision == "fp16" and card.metrics["top1"] >= card.parity.reference_top1 - 0.01


@pytest.mark.slow
def test_every_rung_of_the_ladder_runs(digits_checkpoint, tmp_path, capsys):
    """`--exhaustive` tries the whole ladder (MinMax, percentile, entropy, reduce_range, S8S8):
    each is scored, none fails on an API error, and the most accurate passing one is written."""
    out = tmp_path / "best.onnx"
    rc = main(["quantize", "--model", str(digits_checkpoint), "--data", "digits", "-o", str(out), "--exhaustive",
               "--no-latency", "--calib-size", "64", "--report", str(tmp_path / "r.json")])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "r.json").read_text())
    attempts = report["attempts"]
    assert [a["name"] for a in attempts] == [c.name for c in ONNX_LADDER]
    assert all(a["top1"] is not None for a in attempts), [a.get("error") for a in attempts]
    passing = [a for a in attempts if a["passed"]]
    assert report["chosen"] == max(passing, key=lambda a: a["top1"])["name"]


def test_calibration_data_for_tensorrt(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "calib.npy"
    rc = main(["quantize", "--model", str(digits_checkpoint), "--data", "digits", "--to", "calib-data", "-o", str(out),
               "--calib-size", "40"])
    assert rc == 0, capsys.readouterr().err
    images, labels = np.load(out), np.load(f"{out}.labels.npy")
    _, card = load_model(digits_checkpoint)
    assert images.dtype == np.float32
    assert images.shape == (40, card.preprocessing.channels, *card.preprocessing.input_size)
    assert np.bincount(labels, minlength=10).tolist() == [4] * 10  # class-balanced


@pytest.mark.slow
def test_prune_reconstructs_mobilenet_v2_projections(tmp_path, capsys):
    """With MobileNetV2's residual stream kept, `edgevision prune --data` re-fits the projections
    that lost input channels (from real digits images) before fine-tuning, and reports each fit."""
    from train.checkpoint import save_checkpoint
    from train.models import build_model

    torch.manual_seed(0)
    spec = Preprocessing(input_size=(32, 32), mean=(0.3, 0.3, 0.3), std=(0.4, 0.4, 0.4))
    source, out, report_path = tmp_path / "mnv2.pt", tmp_path / "mnv2.pruned.pt", tmp_path / "r.json"
    card = ModelCard("mobilenet_v2", [str(d) for d in range(10)], spec, dataset="digits")
    save_checkpoint(source, card, build_model("mobilenet_v2", 10, 3, (32, 32)).eval().state_dict())
    keep = ["--ignore", "features.*.conv.2", "--ignore", "features.1.conv.1", "--ignore", "features.0.0"]
    rc = main(["prune", "--model", str(source), "-o", str(out), "--ratio", "0.5", *keep, "--data", "digits",
               "--reconstruct", "64", "--report", str(report_path)])
    err = capsys.readouterr().err
    assert rc == 0, err
    errors = json.loads(report_path.read_text())["reconstruction_errors"][0]
    # 64 images give 64 x 16 x 16 rows at the first blocks (fitted); 64 x 1 x 1 at the last (left alone)
    assert "features.2.conv.2" in errors and "features.17.conv.2" not in errors
    assert all(0.0 <= e < 1.0 for e in errors.values()), errors
    assert "reconstructed features.2.conv.2: relative error" in err and "left alone" in err
    model, _ = load_model(out)
    assert channel_counts(model)["features.2.conv.0.0"] == 48 and channel_counts(model)["features.2.conv.2"] == 24
