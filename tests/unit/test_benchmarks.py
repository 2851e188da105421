"""benchmarks: timing statistics, interleaving, rows through the real runtime, reports."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

import deploy
from benchmarks.cli import main as bench_main
from benchmarks.report import to_csv, to_markdown
from benchmarks.rows import Target
from benchmarks.runner import run_benchmark
from benchmarks.worker import Scores, score
from deploy.image_folder import list_labelled_images, tree_fingerprint
from deploy.timing import LatencyStats, measure_interleaved
from tests.runtime.onnx_models import make_onnx, tiny_card


def test_latency_stats_percentiles():
    stats = LatencyStats.from_samples([i / 1000 for i in range(100, 0, -1)])  # 1..100 ms, unsorted
    assert stats.samples == 100 and stats.min_ms == pytest.approx(1.0)
    assert stats.mean_ms == pytest.approx(50.5)
    assert 50.0 <= stats.p50_ms <= 51.0 and 90.0 <= stats.p90_ms <= 91.0 and stats.p99_ms >= 99.0


def test_measure_interleaved_alternates_and_warms_up():
    order: list[str] = []
    calls = {name: (lambda n=name: order.append(n)) for name in ("a", "b")}
    stats = measure_interleaved(calls, warmup=2, budget_s=0.0, per_round=3, min_rounds=2)
    assert order[:4] == ["a", "a", "b", "b"]  # warm-up
    assert order[4:] == ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    assert stats["a"].samples == stats["b"].samples == 6


@pytest.fixture
def labelled_folder(tmp_path):
    """Two classes of real PNG files: dark and bright images of varied sizes."""
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("bright", 210)):
        (tmp_path / "data" / "val" / name).mkdir(parents=True)
        for i in range(6):
            h, w = rng.integers(30, 90, size=2)
            image = np.clip(rng.normal(level, 20, (h, w, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(tmp_path / "data" / "val" / name / f"{i}.png"), image)
    return tmp_path / "data"


@pytest.fixture
def two_models(tmp_path):
    card = tiny_card(classes=2)
    card.class_names = ["bright", "dark"]
    a = make_onnx(tmp_path / "a.onnx", classes=2, card=card, seed=0)
    b = make_onnx(tmp_path / "b.onnx", classes=2, card=card, seed=1)
    return a, b


def test_rows_measure_latency_size_and_top1(labelled_folder, two_models):
    rows = run_benchmark([Target(p) for p in two_models], threads=[1], budget_s=0.2, data=labelled_folder)
    assert [r.model for r in rows] == ["a.onnx", "b.onnx"]
    items, classes = list_labelled_images(labelled_folder)
    for row, path in zip(rows, two_models, strict=True):
        assert row.status == "ok" and row.backend == "onnxruntime" and row.precision == "fp32"
        assert row.latency.samples >= 15 and row.latency.p50_ms > 0
        assert row.size_bytes == path.stat().st_size and row.threads == 1 and row.batch == 1
        expected = score(deploy.load(path), items, classes).top1
        hits = sum(deploy.load(path).predict(str(p)).label == classes[i] for p, i in items)
        assert row.top1 == expected == hits / len(items) and row.images == 12


def test_broken_model_is_a_failed_row_and_exit_1(tmp_path, labelled_folder, two_models, capsys):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(two_models[0].read_bytes()[:100])
    out = tmp_path / "report"
    code = bench_main(["bench", str(two_models[0]), str(broken), "--budget", "0.1", "--data", str(labelled_folder),
                       "--out", str(out)])
    assert code == 1
    table = capsys.readouterr().out
    assert "| broken.onnx |" in table and "failed" in table
    report = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in report["rows"]] == ["ok", "failed"]
    assert report["schema"] == "edgevision.bench/1" and "onnxruntime" in report["provenance"]["versions"]
    assert (out / "report.csv").read_text().count("\n") == 3
    assert (out / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"


def test_markdown_speed_up_is_baseline_over_row(labelled_folder, two_models):
    rows = run_benchmark([Target(p) for p in two_models], threads=[1], budget_s=0.1)
    ratio = rows[0].latency.p50_ms / rows[1].latency.p50_ms
    table = to_markdown(rows, baseline="a.onnx")
    assert f"| {ratio:.2f}x |" in table.splitlines()[3]
    assert "| 1.00x |" in table.splitlines()[2]
    assert to_csv(rows).splitlines()[0].startswith("model,backend,precision")


def test_target_parse(tmp_path):
    for name in ("m.onnx", "m.pte"):
        (tmp_path / name).write_bytes(b"model")
    assert Target.parse(f"{tmp_path}/m.onnx@onnxruntime").backend == "onnxruntime"
    pte = Target.parse(f"{tmp_path}/m.pte")
    assert pte.backend == "auto" and pte.name == "m.pte"


def test_bench_loads_every_row_with_sleeping_thread_pools(two_models, monkeypatch):
    """run_benchmark starts each row's process with spin_wait=False (idle pools leave the cores to the
    other rows), and that option reaches the onnxruntime session the process loads."""
    from benchmarks import runner

    started: list[dict] = []

    class Recording(runner.TargetProcess):
        """The real target process, with the options run_benchmark gave it noted."""

        def __init__(self, path, backend, options, *args, **kwargs) -> None:
            started.append(dict(options))
            super().__init__(path, backend, options, *args, **kwargs)

    monkeypatch.setattr(runner, "TargetProcess", Recording)
    rows = run_benchmark([Target(p) for p in two_models], threads=[2], budget_s=0.0)
    assert [r.status for r in rows] == ["ok", "ok"]
    assert started == [{"threads": 2, "spin_wait": False}] * 2
    key = "session.intra_op.allow_spinning"
    for options in started:  # what the target's process does with them: deploy.load(path, **options)
        session = deploy.load(two_models[0], **options).backend.session.get_session_options()
        assert session.get_session_config_entry(key) == "0"
    spinning = deploy.load(two_models[0], threads=2, spin_wait=True).backend.session.get_session_options()
    assert spinning.get_session_config_entry(key) == "1"


def test_scoring_the_plain_tree_a_model_trained_on_says_so(tmp_path, labelled_folder):
    plain = labelled_folder / "val"  # class folders only: what `train --data folder:` splits 70/15/15
    card = tiny_card(classes=2)
    card.class_names = ["bright", "dark"]
    held_out = make_onnx(tmp_path / "held_out.onnx", classes=2, card=card, seed=0)
    card.dataset = f"folder:{plain}"  # an older card: the training machine's path
    trained_here = make_onnx(tmp_path / "trained_here.onnx", classes=2, card=card, seed=0)
    card.dataset, card.dataset_info = "folder:val", {"sha256": tree_fingerprint(plain)}  # a new card: name + hash
    trained_elsewhere = make_onnx(tmp_path / "trained_elsewhere.onnx", classes=2, card=card, seed=0)
    warnings: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logger = logging.getLogger("edgevision.benchmarks")
    logger.addHandler(handler)
    try:
        run_benchmark([Target(held_out)], threads=[1], budget_s=0.0, data=plain)
        assert warnings == []
        run_benchmark([Target(trained_here), Target(trained_elsewhere)], threads=[1], budget_s=0.0, data=plain)
    finally:
        logger.removeHandler(handler)
    assert len(warnings) == 2 and all("counts the images it trained on" in w for w in warnings)
    assert "trained_here.onnx" in warnings[0] and "trained_elsewhere.onnx" in warnings[1]


def test_a_bad_target_is_one_failed_row_and_the_others_are_kept(tmp_path, labelled_folder, two_models):
    """A target that cannot run (here: a .pte whose header is noise) costs its own row only; the
    other rows are timed and scored, each in its own process."""
    noise = tmp_path / "noise.pte"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    card = tiny_card(classes=2)
    card.class_names = ["bright", "dark"]
    noise.with_name("noise.pte.json").write_text(card.to_json())
    rows = run_benchmark([Target(two_models[0]), Target(noise), Target(two_models[1])], threads=[1], budget_s=0.2,
                         data=labelled_folder)
    assert [r.status for r in rows] == ["ok", "failed", "ok"], [r.error for r in rows]
    assert "noise.pte" in rows[1].error and len(rows[1].error.splitlines()) == 1
    assert rows[0].top1 is not None and rows[2].top1 is not None
    # each row's own process: a tiny ONNX model in onnxruntime, far below this test process with torch
    assert 10 * 2**20 < rows[0].peak_rss_bytes < 400 * 2**20


def test_a_target_whose_process_dies_is_reported_not_fatal(two_models):
    """A native abort in a runtime (as ExecuTorch did on a bad .pte) kills the target's process:
    the parent says how it died instead of dying with it."""
    import os
    import signal

    from benchmarks.worker import TargetFailed, TargetProcess

    process = TargetProcess(two_models[0], "auto", {"threads": 1}, np.full((40, 50, 3), 127, np.uint8))
    assert len(process.time(3)) == 3
    os.kill(process._process.pid, signal.SIGABRT)
    with pytest.raises(TargetFailed, match="died of SIGABRT"):
        process.time(3)
    assert process.close() is None


def test_scores_of_chunks_merge_to_the_whole():
    """Counts add up exactly; the ratios are the merged counts' (2 of 5, not 2/3 and 0/2 averaged)."""
    first = Scores(top1_correct=2, top5_correct=3, labels=["a", "b", "b"])
    second = Scores(top1_correct=0, top5_correct=1, labels=["a", "a"])
    merged = Scores.merge([first, second])
    assert merged == Scores(top1_correct=2, top5_correct=4, labels=["a", "b", "b", "a", "a"])
    assert (merged.total, merged.top1, merged.top5) == (5, 2 / 5, 4 / 5)


def test_scores_of_many_chunks_stay_exact():
    """Counts of thousands of one-image chunks merge to the exact whole: no ratio is rebuilt into a count."""
    parts = [Scores(int(index % 3 == 0), 1, [str(index)]) for index in range(3001)]
    merged = Scores.merge(parts)
    assert (merged.top1_correct, merged.top5_correct, merged.total) == (1001, 3001, 3001)
    assert merged.top1 == 1001 / 3001


def test_a_limit_below_the_number_of_classes_is_kept(tmp_path):
    """Five classes, three images asked for: three images (one each from the first three classes)."""
    for name in "abcde":
        (tmp_path / name).mkdir()
        for index in range(2):
            cv2.imwrite(str(tmp_path / name / f"{index}.png"), np.zeros((8, 8, 3), np.uint8))
    items, classes = list_labelled_images(tmp_path, limit=3)
    assert [index for _, index in items] == [0, 1, 2] and classes == list("abcde")
    assert len(list_labelled_images(tmp_path, limit=4)[0]) == 4
    assert len(list_labelled_images(tmp_path, limit=10)[0]) == 10


def test_artifact_size_counts_the_files_the_weights_live_in(tmp_path, two_models):
    """An ONNX file's external data (<name>.data) and an OpenVINO IR's .bin are part of the model's size."""
    import onnx

    from benchmarks.rows import artifact_size_bytes

    alone = two_models[0]
    assert artifact_size_bytes(alone) == alone.stat().st_size
    external = tmp_path / "external" / "m.onnx"
    external.parent.mkdir()
    onnx.save_model(onnx.load(str(alone)), str(external), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.onnx.data", size_threshold=0)
    data = external.with_name("m.onnx.data")
    assert data.stat().st_size > 0 and external.stat().st_size < alone.stat().st_size  # the weights moved out
    assert artifact_size_bytes(external) == external.stat().st_size + data.stat().st_size
    [row] = run_benchmark([Target(external)], threads=[1], budget_s=0.0)
    assert row.status == "ok" and row.size_bytes == artifact_size_bytes(external)
    ov = pytest.importorskip("openvino")
    xml = tmp_path / "ir" / "m.xml"
    ov.save_model(ov.convert_model(str(alone)), str(xml))
    assert artifact_size_bytes(xml) == xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    assert xml.with_suffix(".bin").stat().st_size > 0
