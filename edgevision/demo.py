"""`edgevision demo`: the whole road, offline, on data every install has (sklearn's digits).

The top of the layers: each stage calls one package's functions directly (train, deploy.export,
quantize, the deploy runtime, benchmarks), records what it made in the shared `DemoState` and
returns one line for the summary. The packages' own progress messages are held back while a stage
runs (the `edgevision` logger is raised to WARNING), and the libraries' output by `run_cli`
(`deploy.quiet`), so the demo prints its stages and results; `--verbose` shows both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.cli_util import CommandParser, Subcommand, run_subcommand


@dataclass
class DemoState:
    out: Path
    artifacts: dict[str, Path] = field(default_factory=dict)  # e.g. "checkpoint" -> model.pt
    metrics: dict[str, dict] = field(default_factory=dict)  # stage name -> its numbers


Stage = Callable[[DemoState], str]


def train_stage(state: DemoState) -> str:
    """A small CNN on digits with its recipe (15 epochs, under a minute on two CPU cores)."""
    from train.config import TrainConfig
    from train.fit import fit

    out = state.out / "train"
    metrics = fit(TrainConfig(data="digits", model="cnn", out=str(out), quiet=True), overwrite=True)
    state.artifacts["checkpoint"] = out / "model.pt"
    state.metrics["train"] = {k: metrics[k] for k in ("top1", "top5", "epochs", "wall_time_s")}
    return f"trained cnn on digits: {metrics['epochs']} epochs in {metrics['wall_time_s']:.0f}s -> {out}/model.pt"


def eval_stage(state: DemoState) -> str:
    """Re-evaluate the saved checkpoint with the preprocessing on its card (as deployment will)."""
    from train.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(state.artifacts["checkpoint"], split="test")
    state.metrics["eval"] = {"top1": metrics["top1"], "count": metrics["count"]}
    return f"test top-1 {metrics['top1']:.2%} on {metrics['count']} images (test split of digits; eval_metrics.json)"


def images_stage(state: DemoState) -> str:
    """Write the held-out digits as PNG files in class folders: what a user's own images look like."""
    from train.data import load_data, write_class_folders

    splits = load_data("digits")
    folder = write_class_folders(splits.test, splits.class_names, state.out / "digits_test")
    state.artifacts["images"] = folder
    return f"wrote {len(splits.test)} held-out digits as PNG files -> {folder}/"


def export_stage(state: DemoState) -> str:
    """Export to every CPU format and check parity on the held-out PNG digits."""
    from deploy.export.pipeline import ExportSpec, export_checkpoint

    checkpoint = state.artifacts["checkpoint"]
    data = f"folder:{state.artifacts['images']}"
    lines = []
    for fmt, suffix in (("onnx", "onnx"), ("executorch", "pte")):
        result = export_checkpoint(checkpoint, fmt, checkpoint.with_suffix(f".{suffix}"), ExportSpec(data=data))
        parity = result.card.parity
        if not result.passed:
            raise RuntimeError(f"{fmt} export failed its parity check: {parity.line()}")
        state.artifacts[fmt] = result.path
        lines.append(
            f"{result.path.name} (top-1 agreement {parity.top1_agreement:.2%}, "
            f"max |logit diff| {parity.max_abs_logit_diff:.1e} on {parity.images} images of the test split of digits)"
        )
    return "exported " + "; ".join(lines)


def prune_stage(state: DemoState) -> str:
    """Half the MACs of the digits CNN, fine-tuned with distillation; then ONNX, verified."""
    from deploy.export.pipeline import ExportSpec, export_checkpoint
    from quantize.prune import PruneSpec
    from quantize.prune_pipeline import FinetuneSpec, RecoverySpec, prune_checkpoint

    checkpoint = state.artifacts["checkpoint"]
    pruned = prune_checkpoint(checkpoint, checkpoint.with_name("model.pruned.pt"), PruneSpec(target_macs=0.5),
                              RecoverySpec(data="digits", finetune=FinetuneSpec(epochs=3), eval_split="test"))
    result = export_checkpoint(pruned.path, "onnx", pruned.path.with_suffix(".onnx"),
                               ExportSpec(data=f"folder:{state.artifacts['images']}"))
    if not result.passed:
        raise RuntimeError(f"pruned ONNX export failed its parity check: {result.card.parity.line()}")
    state.artifacts["pruned"] = result.path
    state.metrics["prune"] = pruned.to_dict()
    return (
        f"pruned to {1 - pruned.report.macs_reduction:.0%} of the MACs, test top-1 "
        f"{pruned.top1_before:.2%} -> {pruned.top1_after:.2%} on {pruned.eval_images} images (test split of digits) "
        f"-> {result.path.name}"
    )


def quantize_stage(state: DemoState) -> str:
    """int8 ONNX (onnxruntime) and int8 .pte (XNNPACK), each under the 1-point accuracy guard."""
    from quantize.quantize_pipeline import QuantizeSpec, quantize_checkpoint

    checkpoint = state.artifacts["checkpoint"]
    lines = []
    for key, target, suffix in (("onnx_int8", "onnx-int8", ".int8.onnx"), ("pte_int8", "pte-int8", ".int8.pte")):
        spec = QuantizeSpec(target=target, calib_size=128, eval_split="test", threads=1)
        result = quantize_checkpoint(checkpoint, checkpoint.with_name(f"model{suffix}"), spec, data="digits")
        state.artifacts[key] = result.path
        state.metrics[key] = result.report
        parity = result.card.parity
        lines.append(f"{result.path.name} ({result.chosen.name}, top-1 {parity.top1:.2%} "
                     f"vs fp32 {parity.reference_top1:.2%})")
    return f"quantized (top-1 on {parity.images} images, {parity.source}): " + "; ".join(lines)


def predict_stage(state: DemoState) -> str:
    """Top-3 for a few held-out digits through `deploy.load` (numpy + OpenCV + onnxruntime)."""
    import deploy
    from deploy.image_folder import list_labelled_images

    classifier = deploy.load(state.artifacts["onnx"], threads=1)
    items, classes = list_labelled_images(state.artifacts["images"], limit=30)
    correct = 0
    for path, label in items:
        prediction = classifier.predict(str(path), top_k=3)
        correct += prediction.label == classes[label]
    sample = classifier.predict(str(items[0][0]), top_k=3)
    shown = ", ".join(f"{name} {prob:.2f}" for name, prob in sample.top)
    ms = sample.timings_ms
    return (
        f"{correct}/{len(items)} correct with the torch-free runtime; {items[0][0].name} "
        f"(a {classes[items[0][1]]}) -> {shown} "
        f"[{ms['preprocess']:.2f} ms preprocess, {ms['inference']:.2f} ms inference]"
    )


def camera_stage(state: DemoState) -> str:
    """The camera app, headless, on an MJPG video made from held-out digits (each shown for 5 frames),
    every frame classified in order (--buffer), a log line per frame."""
    import json

    import camera_app
    from camera_app.video import write_video_from_images
    from deploy.image_folder import list_labelled_images

    items, classes = list_labelled_images(state.artifacts["images"], limit=40)
    video = state.out / "digits.avi"
    hold = 5
    frames = write_video_from_images([path for path, _ in items], video, hold_frames=hold, fps=30.0, size=(8, 8))
    log = state.out / "camera.jsonl"
    summary = camera_app.run(state.artifacts["onnx"], video, threads=1, buffer=True, log=str(log),
                             report=str(state.out / "camera.json"))
    predictions = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    correct = sum(p["top_k"][0]["label"] == classes[items[p["frame"] // hold][1]] for p in predictions)
    state.artifacts["video"] = video
    state.metrics["camera"] = {"frames": frames, "top1": correct / len(predictions),
                               "pipeline_fps": summary["pipeline_fps"]}
    return (
        f"{summary['frames']['classified']}/{frames} frames of {video.name} classified headless, "
        f"per-frame top-1 {correct / len(predictions):.2%}, {summary['pipeline_fps']:.0f} FPS "
        f"(log: {log.name})"
    )


def bench_stage(state: DemoState) -> str:
    """Every artifact the demo made, side by side; the report to hand on is report.html."""
    from benchmarks.fingerprint import machine_fingerprint
    from benchmarks.provenance import labelled_data, run_provenance
    from benchmarks.report import to_markdown
    from benchmarks.report_files import write_reports
    from benchmarks.roofline import with_peak
    from benchmarks.rows import Target
    from benchmarks.runner import run_benchmark

    keys = ("onnx", "checkpoint", "executorch", "onnx_int8", "pte_int8", "pruned")
    targets = [Target(state.artifacts[key]) for key in keys if key in state.artifacts]
    rows = run_benchmark(targets, threads=[1], budget_s=3.0, data=state.artifacts["images"], limit=100)
    fingerprint = with_peak(machine_fingerprint(), rows)
    table = to_markdown(rows, None, fingerprint.get("peak"))
    provenance = run_provenance(rows, labelled_data(state.artifacts["images"], limit=100))
    html = write_reports(state.out / "bench", rows, fingerprint, table, provenance=provenance)
    state.artifacts["report"] = html or state.out / "bench" / "report.md"
    return "latency (batch 1, 1 thread) and top-1 on 100 images of the test split of digits:\n" + table


STAGES: list[tuple[str, Stage]] = [
    ("train", train_stage),
    ("eval", eval_stage),
    ("images", images_stage),
    ("export", export_stage),
    ("prune", prune_stage),
    ("quantize", quantize_stage),
    ("predict", predict_stage),
    ("camera", camera_stage),
    ("bench", bench_stage),
]


def run_demo(out: Path, stages: list[tuple[str, Stage]] | None = None, report: Callable[[str], None] = print,
             verbose: bool = False) -> DemoState:
    """Run the stages in order, reporting one line per stage and where the outputs went (with `verbose`,
    the packages' progress messages too)."""
    state = DemoState(out=out)
    package_logger = logging.getLogger("edgevision")
    level = package_logger.level
    if not verbose:
        package_logger.setLevel(logging.WARNING)
    try:
        for name, stage in stages or STAGES:
            tic = time.time()
            report(f"[{name}] ...")
            report(f"[{name}] {stage(state)} ({time.time() - tic:.1f}s)")
    finally:
        package_logger.setLevel(level)
    report(f"demo done: outputs in {out}/")
    if "report" in state.artifacts:
        report(f"benchmark report to hand on: {state.artifacts['report']}")
    return state


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision demo",
        description="The whole road offline on sklearn's digits: train a small CNN, evaluate it, export it "
        "to ONNX and ExecuTorch (verified), prune it, quantize it to int8, classify PNG files with the "
        "torch-free runtime, run the camera app headless on a video of held-out digits and benchmark "
        "every artifact side by side.",
        examples=["edgevision demo", "edgevision demo --out /tmp/edgevision-demo"],
    )
    parser.add_argument("--out", default="runs/demo", help="output folder, rewritten on each run (default: runs/demo)")
    return parser


@dataclass(frozen=True)
class DemoSpec:
    """`edgevision demo`'s options: the output folder, and whether the libraries' output is shown."""

    out: str = "runs/demo"
    verbose: bool = False


def main(argv: list[str] | None = None) -> int:
    """`["demo", *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    demo = Subcommand(build_parser, lambda spec: run_demo(Path(spec.out), verbose=spec.verbose) and 0, spec=DemoSpec)
    return run_subcommand(argv, {"demo": demo})
