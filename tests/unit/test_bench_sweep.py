"""`edgevision sweep` end to end on a tiny CNN trained on sklearn's digits: variants built (pruned ones
fine-tuned by default, or marked untuned), benched, the front marked, one chosen and the choice
explained in sweep.json, and a second run reuses what the first built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.rows import Row
from benchmarks.sweep import MANIFEST, Manifest, SweepSpec, Variant, build_parser, plan
from benchmarks.sweep_choice import choice_record, recommend
from deploy.errors import EdgevisionError
from deploy.timing import LatencyStats


def _row(name: str, ms: float, top1: float) -> Row:
    row = Row(name, "auto", "fp32", 2, 1, 1, name, top1=top1)
    row.latency = LatencyStats.from_samples([ms / 1000.0] * 5)
    return row


def test_plan_and_names():
    assert [v.name for v in plan([0.0, 0.5], ["onnx"], ["fp32", "int8"])] == [
        "p0-onnx-fp32", "p0-onnx-int8", "p50-onnx-fp32", "p50-onnx-int8"]
    assert Variant(0.25, "pte", "int8").name == "p25-pte-int8"
    assert [v.name for v in plan([0.0, 0.5], ["onnx"], ["fp32"], finetuned=False)] == [
        "p0-onnx-fp32", "p50-untuned-onnx-fp32"], "only a pruned level is untuned"


@pytest.mark.parametrize("argv", [["--prune", "1.0"], ["--quant", "int4"], ["--formats", "tflite"]])
def test_bad_grid_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model", "m.pt", "--data", "digits", "--out", "o", *argv])
    assert f"argument {argv[0]}:" in capsys.readouterr().err


def test_recommend_budget_floor_and_default():
    rows = [_row("fast", 1.0, 0.90), _row("mid", 2.0, 0.95), _row("slow", 4.0, 0.97)]
    assert recommend(rows, 2.5, None).model == "mid"
    assert recommend(rows, None, 0.94).model == "mid"
    assert recommend(rows, None, None).model == "slow"
    assert recommend(rows, 0.5, None) is None
    assert recommend(rows, 2.5, 0.96) is None


def test_choice_record_says_the_rule_the_front_and_why():
    rows = [_row("fast.onnx", 1.0, 0.90), _row("mid.onnx", 2.0, 0.95), _row("slow.onnx", 4.0, 0.97)]
    variants = [{"variant": r.model, "file": r.model} for r in rows] + [{"variant": "x", "file": None, "error": "boom"}]
    record = choice_record(variants, rows, 2.5, None, recommend(rows, 2.5, None))
    assert record["chosen"] == "mid.onnx" and record["latency_budget_ms"] == 2.5
    assert record["pareto_front"] == ["fast.onnx", "mid.onnx", "slow.onnx"]
    excluded = {c["variant"]: c.get("excluded") for c in record["candidates"]}
    assert excluded == {"fast.onnx": None, "mid.onnx": None, "x": "not built: boom",
                        "slow.onnx": "4.000 ms/image is over the 2.5 ms budget"}
    assert record["reason"].startswith("mid.onnx is the most accurate variant at most 2.5 ms/image")
    assert "of 2 eligible among 4 variants; on the Pareto front; next: fast.onnx" in record["reason"]
    nothing = choice_record(variants, rows, 0.5, None, None)
    assert nothing["chosen"] is None and nothing["reason"].startswith("none of the 4 variants qualifies")


def test_manifest_reuses_only_a_file_built_from_the_same_source_and_recipe(tmp_path):
    artifact = tmp_path / "p0-onnx-fp32.onnx"
    record = {"source_sha256": "a" * 64, "quant": "fp32", "data": "digits"}
    assert not Manifest(tmp_path).matches(artifact, record), "no file yet"
    artifact.write_bytes(b"model")
    Manifest(tmp_path).record(artifact, record)
    reread = Manifest(tmp_path)  # from sweep.json
    assert reread.matches(artifact, record)
    assert not reread.matches(artifact, {**record, "source_sha256": "b" * 64}), "a retrained checkpoint"
    assert not reread.matches(artifact, {**record, "data": "folder:x"})
    (tmp_path / MANIFEST).write_text("{not json")
    assert not Manifest(tmp_path).matches(artifact, record), "an unreadable record rebuilds"


def test_the_benchmark_scores_data_and_bench_data_is_a_deprecated_alias(tmp_path, capsys):
    def spec(data: str, bench_data: str | None = None) -> SweepSpec:
        return SweepSpec(model=Path("m.pt"), data=data, out=tmp_path / "out", prune=[0.0], formats=["onnx"],
                         quant=["fp32"], bench_data=bench_data)

    (tmp_path / "a").mkdir()
    assert spec("digits").scored_data() == "digits"
    assert capsys.readouterr().err == ""
    assert spec("digits", str(tmp_path)).scored_data() == str(tmp_path)
    assert capsys.readouterr().err == (
        "edgevision sweep: --bench-data is deprecated, --data is used for the benchmark too\n"
    )
    with pytest.raises(EdgevisionError, match="unknown data spec 'digitz'"):
        spec("digitz").scored_data()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A real `cnn` trained for a few seconds on digits."""
    pytest.importorskip("torch")
    for module in ("onnxruntime", "sklearn", "torch_pruning"):
        pytest.importorskip(module)
    from tests.digits_cnn import train_digits_cnn

    return train_digits_cnn(tmp_path_factory.mktemp("sweep") / "digits.pt")


@pytest.mark.parametrize("formats", ["onnx", pytest.param("onnx,pte", marks=pytest.mark.slow)])  # about 10 s, 60 s
def test_sweep_builds_benches_recommends_and_reuses(formats, digits, tmp_path, capsys):
    from benchmarks.sweep import main

    checkpoint = digits
    out = tmp_path / "sweep"
    argv = ["sweep", "--model", str(checkpoint), "--data", "digits", "--out", str(out),
            "--prune", "0,0.5", "--quant", "fp32,int8", "--formats", formats, "--seconds", "1",
            "--threads", "1", "--min-top1", "0.5"]  # top-1 on all 270 val images: 100 move it in steps of a point
    assert main(argv) == 0
    first = capsys.readouterr().out
    files = [f"{v.name}.{v.fmt}" for v in plan([0, 0.5], formats.split(","), ["fp32", "int8"])]
    for name in files:
        assert (out / name).is_file()
        assert f"| {name.rsplit('.', 1)[0]} | {name} | new |" in first
    assert (out / "p50.pt").is_file() and (out / "report.json").is_file()
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert len(rows) == len(files) and all(r["top1"] > 0.5 for r in rows)
    top1 = {r["model"]: r["top1"] for r in rows}
    for name in files:  # fine-tuned by default (5 epochs for a cnn, which has no preset): within 2 points
        assert top1[name] >= top1[name.replace("p50", "p0")] - 0.02, (name, top1)
    chosen = first.strip().splitlines()[-1]
    assert chosen.startswith("chosen: ") and chosen.endswith((".onnx", ".pte"))
    assert "**yes**" in first and "| yes |" in first and "| 5 epochs |" in first
    choice = json.loads((out / MANIFEST).read_text())["choice"]
    assert choice["chosen"] == chosen.split("/")[-1] and choice["min_top1"] == 0.5
    assert choice["finetune"]["epochs"] == 5 and "without a preset" in choice["finetune"]["from"]
    assert [c["variant"] for c in choice["candidates"]] == [n.rsplit(".", 1)[0] for n in files]
    assert {c["finetune_epochs"] for c in choice["candidates"] if c["variant"].startswith("p50")} == {5}
    assert choice["reason"].startswith(f"{choice['chosen']} is the fastest variant with top-1 >= 50.00%")
    assert f"why: {choice['reason']}" in first

    stamps = {name: (out / name).stat().st_mtime_ns for name in files}
    assert main(argv) == 0
    second = capsys.readouterr().out
    for name in files:
        assert f"| {name.rsplit('.', 1)[0]} | {name} | reused |" in second
        assert (out / name).stat().st_mtime_ns == stamps[name]


def test_sweep_without_finetuning_marks_the_pruned_variants(digits, tmp_path, capsys):
    from benchmarks.sweep import main

    out = tmp_path / "sweep"
    assert main(["sweep", "--model", str(digits), "--data", "digits", "--out", str(out), "--prune", "0.5",
                 "--finetune-epochs", "0", "--seconds", "1", "--limit", "50", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert (out / "p50-untuned.pt").is_file() and (out / "p50-untuned-onnx-fp32.onnx").is_file()
    assert "| p50-untuned-onnx-fp32 | p50-untuned-onnx-fp32.onnx | new | **no** |" in printed
    choice = json.loads((out / MANIFEST).read_text())["choice"]
    assert choice["finetune"] == {"epochs": 0, "from": "--finetune-epochs"}
    assert choice["candidates"][0]["finetune_epochs"] == 0 and choice["chosen"] == "p50-untuned-onnx-fp32.onnx"
    assert choice["rule"].startswith("the most accurate variant (no --latency-budget or --min-top1")
