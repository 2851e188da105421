"""The demo's prune and quantize stages, through the same functions as `edgevision prune|quantize`."""

from __future__ import annotations

import contextlib
import io
import json


def _quiet(command, argv: list[str]) -> None:
    """Run a CLI command with its progress lines held back (the demo prints one line a stage)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        command(argv)


def prune_stage(state) -> str:
    """Half the MACs of the digits CNN, fine-tuned with distillation; then ONNX, verified."""
    from deploy.export.pipeline import export_checkpoint
    from quantize.cli import run_prune

    checkpoint = state.artifacts["checkpoint"]
    pruned = checkpoint.with_name("model.pruned.pt")
    report_path = checkpoint.with_name("prune.json")
    _quiet(run_prune, [
        str(checkpoint), "-o", str(pruned), "--target-macs", "0.5", "--data", "digits",
        "--finetune-epochs", "3", "--eval-split", "test", "--report", str(report_path),
    ])
    report = json.loads(report_path.read_text(encoding="utf-8"))
    result = export_checkpoint(pruned, "onnx", pruned.with_suffix(".onnx"), data=f"folder:{state.artifacts['images']}")
    if not result.passed:
        raise RuntimeError(f"pruned ONNX export failed its parity check: {result.card.parity}")
    state.artifacts["pruned"] = result.path
    state.metrics["prune"] = report
    return (
        f"pruned to {100 - report['macs_reduction'] * 100:.0f}% of the MACs, test top-1 "
        f"{report['top1_before']:.2f}% -> {report['top1_after']:.2f}% -> {result.path.name}"
    )


def quantize_stage(state) -> str:
    """int8 ONNX (onnxruntime) and int8 .pte (XNNPACK), each under the 1-point accuracy guard."""
    from quantize.cli import run_quantize

    checkpoint = state.artifacts["checkpoint"]
    lines = []
    for key, target, suffix in (("onnx_int8", "onnx-int8", ".int8.onnx"), ("pte_int8", "pte-int8", ".int8.pte")):
        out = checkpoint.with_name(f"model{suffix}")
        report_path = checkpoint.with_name(f"{key}.json")
        _quiet(run_quantize, [
            str(checkpoint), "-o", str(out), "--to", target, "--data", "digits", "--calib-size", "128",
            "--eval-split", "test", "--threads", "1", "--report", str(report_path),
        ])
        report = json.loads(report_path.read_text(encoding="utf-8"))
        chosen = next(a for a in report["attempts"] if a["name"] == report["chosen"])
        state.artifacts[key] = out
        state.metrics[key] = report
        lines.append(f"{out.name} ({chosen['name']}, top-1 {chosen['top1']:.2f}% vs fp32 {report['fp32_top1']:.2f}%)")
    return "quantized " + "; ".join(lines)
