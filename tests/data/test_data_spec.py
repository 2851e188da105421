"""One meaning of `--data`: `digits`, `folder:DIR` and a plain `DIR` (digits' own splits written as
PNG class folders) give the same result in train, eval, export, quantize and bench; bad specs are
one-line errors; the runtime side reads specs without torch."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from deploy.data_spec import DataSpec, labelled_images, parse_data_spec
from deploy.errors import EdgevisionError

REPO = Path(__file__).resolve().parents[2]


def test_a_plain_path_is_a_folder_spec(tmp_path):
    (tmp_path / "cats").mkdir()
    assert parse_data_spec(str(tmp_path)) == parse_data_spec(f"folder:{tmp_path}") == DataSpec("folder", path=tmp_path)
    assert parse_data_spec("digits") == DataSpec("named", name="digits")
    assert str(parse_data_spec(f"idx:{tmp_path}")) == f"idx:{tmp_path}"


@pytest.mark.parametrize(("spec", "message"), [
    ("", "--data is empty"),
    ("imagenet", "unknown data spec 'imagenet': no named set and no folder of that name; choose from digits, mnist"),
    ("mnist:x", "unknown data spec 'mnist:x': mnist: is not a kind of data"),
    ("folder:", "--data folder: names no folder: write folder:PATH"),
    ("folder:{tmp}/nope", "data folder not found: {tmp}/nope"),
    ("{tmp}/nope", "data folder not found: {tmp}/nope"),
    ("idx:{tmp}/nope", "IDX folder not found: {tmp}/nope"),
    ("{tmp}/file.png", "--data {tmp}/file.png is not a folder"),
    ("{tmp}/flat", "{tmp}/flat is not a class-folder tree: expected {tmp}/flat/<class>/<images>"),
])
def test_bad_specs_are_one_line_errors(tmp_path, spec, message):
    (tmp_path / "file.png").write_bytes(b"x")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"x")
    with pytest.raises(EdgevisionError) as error:
        parse_data_spec(spec.format(tmp=tmp_path))
    text = str(error.value)
    assert "\n" not in text and text.startswith(message.format(tmp=tmp_path)), text


def test_named_sets_without_their_reader_say_how_to_get_one(tmp_path):
    with pytest.raises(EdgevisionError, match=r"reading --data mnist needs the train extra .* pass folder:PATH"):
        labelled_images(parse_data_spec("mnist"))
    with pytest.raises(EdgevisionError, match="digits has train, val and test splits, not 'all'"):
        labelled_images(parse_data_spec("digits"), "all")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """digits' train/val/test splits (seed 0) as PNG files in class folders."""
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    from train.data import load_data, write_class_folders

    splits = load_data("digits")
    root = tmp_path_factory.mktemp("digits") / "png"
    for name in ("train", "val", "test"):
        write_class_folders(getattr(splits, name), splits.class_names, root / name)
    return root


def spellings(tree: Path) -> dict[str, str]:
    return {"digits": "digits", "folder": f"folder:{tree}", "path": str(tree)}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from tests.digits_cnn import train_digits_cnn

    return train_digits_cnn(tmp_path_factory.mktemp("ckpt") / "digits.pt")


@pytest.fixture(scope="module")
def onnx_model(checkpoint, tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    from deploy.export.pipeline import ExportSpec, export_checkpoint

    result = export_checkpoint(checkpoint, "onnx", tmp_path_factory.mktemp("onnx") / "digits.onnx",
                               ExportSpec(data="digits", verify_images=64, reference_images=0))
    assert result.passed
    return result.path


def test_runtime_images_of_digits_are_the_files_of_its_tree(tree):
    import numpy as np

    from deploy.preprocess import read_image

    in_memory, names = labelled_images(parse_data_spec("digits"), "val", limit=40)
    files, folder_names = labelled_images(parse_data_spec(str(tree)), "val", limit=40)
    assert names == folder_names and len(in_memory) == len(files) == 40
    for (image, label), (path, folder_label) in zip(in_memory, files, strict=True):
        assert label == folder_label and np.array_equal(image, read_image(str(path)))


@pytest.mark.slow  # a real training run / three exports / three quantizations
def test_train_on_folder_and_on_a_plain_path_is_the_same_run(tmp_path):
    import numpy as np

    from train.checkpoint import load_model
    from train.config import TrainConfig
    from train.data import load_data, write_class_folders
    from train.fit import fit

    splits = load_data("digits")
    tree = tmp_path / "small"
    for name, count in (("train", 200), ("val", 60), ("test", 60)):
        write_class_folders(getattr(splits, name).subset(np.arange(count)), splits.class_names, tree / name)
    metrics, cards = {}, {}
    for name in ("folder", "path"):
        out = tmp_path / name
        config = TrainConfig(data=spellings(tree)[name], model="cnn", epochs=1, input_size=8, out=str(out), quiet=True,
                             workers=0)
        metrics[name] = fit(config, overwrite=True)
        cards[name] = load_model(out / "model.pt")[1]
    assert metrics["folder"]["top1"] == metrics["path"]["top1"] and metrics["folder"]["loss"] == metrics["path"]["loss"]
    assert cards["folder"].dataset == cards["path"].dataset == f"folder:{tree.name}"
    assert cards["folder"].dataset_info == cards["path"].dataset_info


def test_eval_scores_the_same_images_whichever_spelling(checkpoint, tree, tmp_path):
    from train.evaluate import evaluate_checkpoint

    results = {name: evaluate_checkpoint(checkpoint, spec, "val", tmp_path / name)
               for name, spec in spellings(tree).items()}
    digits = results["digits"]
    assert digits["count"] == 270 and digits["top1"] > 0.8
    for result in results.values():
        assert (result["count"], result["top1"], result["confusion"]) == (270, digits["top1"], digits["confusion"])
    assert results["folder"]["data"] == results["path"]["data"] == f"folder:{tree}"


@pytest.mark.slow  # a real training run / three exports / three quantizations
def test_export_checks_parity_on_the_same_images_whichever_spelling(checkpoint, tree, tmp_path):
    from deploy.export.pipeline import ExportSpec, export_checkpoint

    cards = {name: export_checkpoint(checkpoint, "onnx", tmp_path / f"{name}.onnx",
                                     ExportSpec(data=spec, verify_images=100, reference_images=2)).card
             for name, spec in spellings(tree).items()}
    digits = cards["digits"]
    assert digits.parity.passed and digits.parity.images == 100 and digits.parity.source == "val split of digits"
    assert cards["folder"].parity.source == cards["path"].parity.source == str(tree / "val")
    assert cards["folder"].confidence.split == cards["path"].confidence.split == f"val split of folder:{tree.name}"
    for card in cards.values():
        assert card.parity.top1_agreement == digits.parity.top1_agreement
        assert card.parity.max_abs_logit_diff == pytest.approx(digits.parity.max_abs_logit_diff, abs=1e-6)
        assert card.confidence.counts == digits.confidence.counts


@pytest.mark.slow  # a real training run / three exports / three quantizations
def test_quantize_calibrates_and_guards_on_the_same_images_whichever_spelling(checkpoint, tree, tmp_path):
    from quantize.quantize_pipeline import QuantizeSpec, quantize_checkpoint

    options = QuantizeSpec(calib_size=64, measure_latency=False, threads=1, reference_images=0)
    reports = {name: quantize_checkpoint(checkpoint, tmp_path / f"{name}.onnx", options, data=spec).report
               for name, spec in spellings(tree).items()}
    digits = reports["digits"]
    assert digits["fp32_top1"] > 0.8
    for report in reports.values():
        assert report["fp32_top1"] == digits["fp32_top1"] and report["chosen"] == digits["chosen"]
        assert [a["top1"] for a in report["attempts"]] == [a["top1"] for a in digits["attempts"]]


def test_bench_top1_is_eval_top1_on_the_same_split(checkpoint, onnx_model, tree, tmp_path):
    from benchmarks.rows import Target
    from benchmarks.runner import run_benchmark
    from train.evaluate import evaluate_checkpoint

    evaluated = evaluate_checkpoint(checkpoint, "digits", "val", tmp_path)
    for spec in spellings(tree).values():
        (row,) = run_benchmark([Target(onnx_model)], (1,), 0.2, spec, "val")
        assert row.status == "ok" and row.images == 270, row.error
        assert row.top1 == pytest.approx(evaluated["top1"]), spec


def test_runtime_reads_folder_specs_without_torch_and_refuses_digits_in_one_line(onnx_model, tree):
    """bench in the torch-free venv: a class-folder tree is scored as in the full one; digits, which
    needs scikit-learn, is a one-line error naming the extra that installs it."""
    runtime_python = os.environ.get("EDGEVISION_RUNTIME_PYTHON")
    if not runtime_python:
        pytest.skip("EDGEVISION_RUNTIME_PYTHON is not set "
                    "(`make test` sets it to .venv-runtime, made by `make runtime`)")
    from benchmarks.rows import Target
    from benchmarks.runner import run_benchmark

    (expected,) = run_benchmark([Target(onnx_model)], (1,), 0.2, str(tree), "val")
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from benchmarks.rows import Target
        from benchmarks.runner import run_benchmark
        from deploy.errors import EdgevisionError
        (row,) = run_benchmark([Target(Path({str(onnx_model)!r}))], (1,), 0.2, {f"folder:{tree}"!r}, "val")
        try:
            run_benchmark([Target(Path({str(onnx_model)!r}))], (1,), 0.2, "digits", "val")
            error = None
        except EdgevisionError as exc:
            error = str(exc)
        assert "torch" not in sys.modules and "sklearn" not in sys.modules
        print(json.dumps({{"top1": row.top1, "images": row.images, "error": error}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([runtime_python, "-c", script], capture_output=True, text=True, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["top1"], result["images"]) == (expected.top1, 270)
    assert result["error"] == ("--data digits needs scikit-learn: pip install scikit-learn "
                               "(the train extra, edgevision[train], has it)")


def test_bench_warns_about_a_model_trained_on_another_split(checkpoint, tmp_path, caplog):
    """bench draws digits' split with seed 0: a model whose training drew it with seed 3 is named on the log."""
    from benchmarks.rows import Target
    from benchmarks.runner import run_benchmark
    from deploy.export.pipeline import ExportSpec, export_checkpoint
    from train.checkpoint import load_model, save_checkpoint

    model, card = load_model(checkpoint)
    seeded = save_checkpoint(tmp_path / "seed3.pt", card.evolve(dataset_info={"split_seed": 3}), model.state_dict())
    onnx_model = export_checkpoint(seeded, "onnx", tmp_path / "seed3.onnx",
                                   ExportSpec(data="digits", verify_images=32, reference_images=0)).path
    with caplog.at_level("WARNING", logger="edgevision.benchmarks"):
        (row,) = run_benchmark([Target(onnx_model)], (1,), 0.2, "digits", "val")
    assert row.status == "ok" and row.images == 270
    assert "seed3.onnx (seed 3) trained on a split of digits drawn with another seed than bench's 0" in caplog.text
