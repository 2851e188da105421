"""`edgevision sweep` end to end on a tiny CNN trained on sklearn's digits: variants built, benched,
the front marked, one chosen, and a second run reuses what the first built."""

from __future__ import annotations

import json

import pytest

from benchmarks.runner import Row
from benchmarks.sweep import MANIFEST, Manifest, Variant, bench_data, build_parser, plan, recommend
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
    (tmp_path / "a").mkdir()
    base = ["--model", "m.pt", "--out", str(tmp_path / "out")]
    assert bench_data(build_parser().parse_args([*base, "--data", "digits"])) == "digits"
    assert capsys.readouterr().err == ""
    args = build_parser().parse_args([*base, "--data", "digits", "--bench-data", str(tmp_path)])
    assert bench_data(args) == str(tmp_path)
    assert capsys.readouterr().err == "edgevision sweep: --bench-data is deprecated, --data is used for the benchmark too\n"
    with pytest.raises(EdgevisionError, match="unknown data spec 'digitz'"):
        bench_data(build_parser().parse_args([*base, "--data", "digitz"]))


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
            "--prune", "0,0.5", "--quant", "fp32,int8", "--formats", formats, "--seconds", "1", "--limit", "100",
            "--threads", "1", "--min-top1", "0.5"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    files = [f"{v.name}.{v.fmt}" for v in plan([0, 0.5], formats.split(","), ["fp32", "int8"])]
    for name in files:
        assert (out / name).is_file()
        assert f"| {name.rsplit('.', 1)[0]} | {name} | new |" in first
    assert (out / "p50.pt").is_file() and (out / "report.json").is_file()
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert len(rows) == len(files) and all(r["top1"] > 0.5 for r in rows)
    chosen = first.strip().splitlines()[-1]
    assert chosen.startswith("chosen: ") and chosen.endswith((".onnx", ".pte"))
    assert "**yes**" in first and "| yes |" in first

    stamps = {name: (out / name).stat().st_mtime_ns for name in files}
    assert main(argv) == 0
    second = capsys.readouterr().out
    for name in files:
        assert f"| {name.rsplit('.', 1)[0]} | {name} | reused |" in second
        assert (out / name).stat().st_mtime_ns == stamps[name]
