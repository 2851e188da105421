"""`edgevision prune` and `edgevision quantize` (also `python -m quantize prune|quantize ...`)."""

from __future__ import annotations

import argparse
import json
import os

from deploy.atomic import check_writable, write_text_atomic
from deploy.cli_util import CommandParser, Subcommand, run_subcommand
from quantize.guard import DEFAULT_BUDGET, BudgetMissed
from quantize.presets import DEFAULT, list_presets
from quantize.quantize_pipeline import TARGETS

DEFAULT_ROUND_TO = 8  # channel multiple for SIMD kernels, when --round-to is not given (finer where it must be)


def prune_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision prune",
        description="Structured channel pruning (Torch-Pruning) of a checkpoint, with fine-tuning.",
        examples=[
            "edgevision prune --model runs/demo/train/model.pt --target-macs 0.5 --data digits --finetune-epochs 3 "
            "--out runs/demo/train/model.p50.pt",
            "edgevision prune --model runs/demo/train/model.pt --ratio 0.3 --data digits --finetune-epochs 3 "
            "--max-drop 2 --out runs/demo/train/model.r30.pt",
        ],
    )
    model = parser.add_argument("--model", required=True, help="input checkpoint (.pt from `edgevision train`)")
    parser.old_positional(model, "checkpoint")
    parser.add_argument("-o", "--out", required=True, help="pruned checkpoint to write (.pt)")
    amount = parser.add_argument_group("how much").add_mutually_exclusive_group(required=True)
    amount.add_argument("--ratio", type=float, help="fraction of channels to remove, in (0, 1)")
    amount.add_argument("--target-macs", type=float, help="fraction of MACs to keep, in (0, 1), e.g. 0.5")
    how = parser.add_argument_group("how")
    how.add_argument("--preset", metavar="NAME",
                     help="a named recipe for the checkpoint's architecture (options given explicitly win): "
                     f"{', '.join([DEFAULT, *list_presets()])}; '{DEFAULT}' picks the architecture's best "
                     "known, if any")
    how.add_argument("--global", dest="global_pruning", action="store_true",
                     help="rank channels across the whole network (default: the same ratio per layer)")
    how.add_argument("--round-to", type=int,
                     help=f"keep channel counts multiples of this (0: any; default {DEFAULT_ROUND_TO}, finer where "
                     "layers are too narrow to reach --target-macs within 5 points in such steps)")
    how.add_argument("--steps", type=int, default=1, help="iterative pruning steps (fine-tuning between)")
    how.add_argument("--ignore", action="append", default=[], metavar="LAYER",
                     help="layer name or glob whose output channels are kept (repeatable; the classifier "
                     "is always kept), e.g. 'features.*.conv.2' keeps MobileNetV2's residual stream")
    how.add_argument("--importance", choices=("magnitude", "bn-scale", "lamp"), default="magnitude",
                     help="how channels are ranked (Torch-Pruning importance; default: weight L2 norm)")
    how.add_argument("--reconstruct", type=int, default=256, metavar="IMAGES",
                     help="with --data: after each step, re-fit the layers that lost input channels by least "
                          "squares on this many training images (default 256; 0: off)")
    tune = parser.add_argument_group("fine-tuning and evaluation")
    tune.add_argument("--data", help="data for fine-tuning and evaluation: digits, mnist, fashion-mnist, cifar10, "
                      "folder:PATH, idx:DIR or a class-folder PATH (as in `edgevision train`)")
    tune.add_argument("--finetune-epochs", type=int, default=0, help="epochs after pruning (and after each step)")
    tune.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate")
    tune.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw",
                      help="as train's `finetune` recipe: AdamW, 1e-3, warm-up then cosine")
    tune.add_argument("--batch-size", type=int, default=32, help="fine-tuning images per step (default 32)")
    tune.add_argument("--distill", choices=("none", "logits", "features"), default="logits",
                      help="learn from the unpruned model too: its logits (default), its logits and "
                      "penultimate features (much more signal per image than 2 or 10 logits), or none (labels only)")
    tune.add_argument("--train-limit", type=int, help="fine-tune on at most this many training images")
    tune.add_argument("--device", default="auto",
                      help="fine-tune on auto, cpu or cuda (pruning itself runs on the CPU)")
    tune.add_argument("--amp", choices=("off", "bf16"), default="off", help="bf16 autocast while fine-tuning on CUDA")
    tune.add_argument("--workers", type=int, default=0, help="data-loading processes for fine-tuning")
    tune.add_argument("--eval-split", default="val", choices=("val", "test"),
                      help="split scored before and after pruning (default val)")
    tune.add_argument("--eval-limit", type=int, help="evaluate on at most this many images (class-balanced)")
    max_drop = tune.add_argument("--max-drop", type=float, metavar="POINTS",
                                 help="refuse a result more than this many top-1 points worse (needs --data)")
    parser.old_option(max_drop, "--budget")
    parser.add_argument("--report", help="write the JSON report here too")
    return parser


def quantize_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision quantize",
        description="int8/fp16 artifacts under an accuracy guard (onnxruntime static int8, TensorRT's Q/DQ "
        "int8 ONNX, ExecuTorch XNNPACK int8, fp16 ONNX, or calibration data for TensorRT).",
        examples=[
            "edgevision quantize --model runs/demo/train/model.pt --data digits --to onnx-int8 "
            "--out runs/demo/train/model.int8.onnx",
            "edgevision quantize --model runs/demo/train/model.pt --data digits --to onnx-int8-trt "
            "--out runs/demo/train/model.int8.trt.onnx",
            "edgevision quantize --model runs/demo/train/model.pt --data digits --to pte-int8 --max-drop 0.5 "
            "--out runs/demo/train/model.int8.pte",
        ],
    )
    model = parser.add_argument("--model", required=True, help="input checkpoint (.pt, pruned or not)")
    parser.old_positional(model, "checkpoint")
    parser.add_argument("-o", "--out", required=True, help="artifact to write (.onnx, .pte or .npy)")
    parser.add_argument("--to", choices=tuple(TARGETS), default="onnx-int8",
                        help="what to produce: onnx-int8 (onnxruntime CPU), onnx-int8-trt (TensorRT's Q/DQ form: "
                        "signed symmetric int8, per-channel weights; build the engine on the device with "
                        "`edgevision export --model M.onnx --format tensorrt`), pte-int8, onnx-fp16 or calib-data")
    parser.add_argument("--data", required=True,
                        help="calibration from its train split, guard on --eval-split: digits, mnist, fashion-mnist, "
                        "cifar10, folder:PATH, idx:DIR or a class-folder PATH")
    data = parser.add_argument_group("data")
    data.add_argument("--calib-size", type=int, default=256, help="calibration images, class-balanced")
    data.add_argument("--eval-split", default="val", choices=("val", "test"),
                      help="split the accuracy guard scores (default val)")
    data.add_argument("--eval-size", type=int, help="held-out images for the guard (default: the whole split)")
    data.add_argument("--seed", type=int, default=0, help="seed of the data split and the calibration draw (default 0)")
    guard = parser.add_argument_group("accuracy guard")
    max_drop = guard.add_argument("--max-drop", type=float, default=DEFAULT_BUDGET, metavar="POINTS",
                                  help=f"max top-1 drop vs fp32, in points (default {DEFAULT_BUDGET})")
    parser.old_option(max_drop, "--budget")
    guard.add_argument("--exhaustive", action="store_true", help="try every configuration, keep the most accurate")
    guard.add_argument("--exclude-sensitive", type=int, default=3,
                       help="when the ladder misses, keep this many most sensitive nodes in float")
    guard.add_argument("--no-fp16-fallback", dest="fp16_fallback", action="store_false",
                       help="do not fall back to fp16 ONNX when no int8 config meets the budget")
    onnx = parser.add_argument_group("ONNX int8 (one fixed configuration instead of the ladder; onnx-int8-trt "
                                     "takes --method, --percentile and --exclude, its types and format are fixed)")
    onnx.add_argument("--format", choices=("qdq", "qoperator"),
                      help="QDQ (quantize/dequantize pairs around float ops) or QOperator (integer ops)")
    onnx.add_argument("--activation-type", choices=("u8", "s8"), help="activation integer type")
    onnx.add_argument("--weight-type", choices=("u8", "s8"), help="weight integer type")
    onnx.add_argument("--per-tensor", action="store_true", help="per-tensor weights (default per-channel)")
    onnx.add_argument("--reduce-range", action="store_true", help="7-bit weights (older CPUs without VNNI)")
    onnx.add_argument("--method", choices=("minmax", "entropy", "percentile"),
                      help="how activation ranges are calibrated")
    onnx.add_argument("--percentile", type=float, default=99.999, help="for --method percentile")
    onnx.add_argument("--exclude", action="append", default=[], metavar="NODE", help="ONNX node kept in float")
    qat = parser.add_argument_group("ExecuTorch int8")
    qat.add_argument("--qat-epochs", type=int, default=0, help="quantization-aware fine-tuning if PTQ misses")
    qat.add_argument("--qat-lr", type=float, default=1e-4, help="QAT learning rate (default 1e-4)")
    qat.add_argument("--qat-size", type=int, default=512, help="training images for QAT")
    parser.add_argument("--reference-images", type=int, default=16,
                        help="held-out images stored beside the artifact with PyTorch fp32's logits, for "
                        "`edgevision verify` on the device (default 16; 0: none; at most 256)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads for scoring and timing")
    parser.add_argument("--no-latency", dest="latency", action="store_false", help="skip timing")
    parser.add_argument("--report", help="write the JSON report (every attempt) here too")
    return parser


def _ladder(args):
    """None (the target's own ladder), or the one ONNX configuration the flags fix (validated before
    any work; for onnx-int8-trt in TensorRT's form, which refuses types and formats it cannot take)."""
    from quantize.ptq_onnx import OnnxQuantConfig

    fixed = [args.format, args.activation_type, args.weight_type, args.method]
    if not (any(fixed) or args.per_tensor or args.reduce_range or args.exclude):
        return None
    tensorrt = args.to == "onnx-int8-trt"
    config = OnnxQuantConfig(
        name="custom",
        form="tensorrt" if tensorrt else "onnxruntime",
        quant_format=args.format or "qdq",
        activation_type=args.activation_type or ("s8" if tensorrt else "u8"),
        weight_type=args.weight_type or "s8",
        per_channel=not args.per_tensor,
        reduce_range=args.reduce_range,
        method=args.method or "minmax",
        percentile=args.percentile,
        exclude=tuple(args.exclude),
    )
    return (config,)


def _write_report(path: str | os.PathLike, report: dict) -> None:
    write_text_atomic(path, json.dumps(report, indent=2, default=str) + "\n")


def _with_preset(parser: argparse.ArgumentParser, argv: list[str], args: argparse.Namespace) -> argparse.Namespace:
    """`args` with `--preset`'s values filled in (checked against the checkpoint's architecture)."""
    from quantize.presets import parse_with_preset, resolve_preset
    from train.checkpoint import card_of, load_checkpoint

    architecture = card_of(load_checkpoint(args.model), args.model).architecture
    preset = resolve_preset(args.preset, architecture)
    return parse_with_preset(parser, argv, preset) if preset else args


def run_prune(args: argparse.Namespace, parser: CommandParser, argv: list[str]) -> int:
    """`argv` parsed by `parser` into `args` (parsed again with the preset's values under --preset)."""
    if args.report:
        check_writable(args.report, "--report")
    if args.preset:
        args = _with_preset(parser, argv, args)
    from deploy.confidence import split_label
    from quantize.prune import PruneSpec
    from quantize.prune_pipeline import FinetuneSpec, RecoverySpec, prune_checkpoint

    spec = PruneSpec(
        ratio=args.ratio, target_macs=args.target_macs, steps=args.steps, global_pruning=args.global_pruning,
        ignored=tuple(args.ignore), adapt_round_to=args.round_to is None,
        round_to=DEFAULT_ROUND_TO if args.round_to is None else args.round_to or None, importance=args.importance,
    )
    finetune = FinetuneSpec(
        epochs=args.finetune_epochs, lr=args.lr, optimizer=args.optimizer, batch_size=args.batch_size,
        limit=args.train_limit, distill=args.distill, device=args.device, amp=args.amp, workers=args.workers,
    )
    recovery = RecoverySpec(data=args.data, finetune=finetune, reconstruct_images=args.reconstruct,
                            eval_split=args.eval_split, eval_limit=args.eval_limit, budget=args.max_drop)
    result = prune_checkpoint(args.model, args.out, spec, recovery)
    report = result.report
    line = (
        f"MACs {report.macs_before / 1e6:.2f}M -> {report.macs_after / 1e6:.2f}M "
        f"(-{report.macs_reduction * 100:.1f}%), params {report.params_before / 1e6:.3f}M -> "
        f"{report.params_after / 1e6:.3f}M"
    )
    if result.top1_after is not None:
        line += (f", {args.eval_split} top-1 {result.top1_before:.2%} -> {result.top1_after:.2%} on "
                 f"{result.eval_images} images ({split_label(args.eval_split, args.data)})")
    print(f"{line}; wrote {result.path}")
    note = report.rounding_note()
    if note:
        print(note)
    if args.report:
        _write_report(args.report, {**result.to_dict(), "out": str(result.path)})
    return 0


def run_quantize(args: argparse.Namespace) -> int:
    if args.report:
        check_writable(args.report, "--report")
    from quantize.quantize_pipeline import QuantizeSpec, calibration_from_checkpoint, quantize_checkpoint

    if args.to == "calib-data":
        path = calibration_from_checkpoint(args.model, args.out, data=args.data, calib_size=args.calib_size,
                                           seed=args.seed)
        import numpy as np

        shape = np.load(path, mmap_mode="r").shape
        print(f"wrote {shape[0]} calibration images {shape[1:]} to {path}")
        return 0
    try:
        spec = QuantizeSpec(
            target=args.to, calib_size=args.calib_size, eval_split=args.eval_split, eval_size=args.eval_size,
            seed=args.seed, budget=args.max_drop, exhaustive=args.exhaustive, onnx_ladder=_ladder(args),
            exclude_sensitive=args.exclude_sensitive, fp16_fallback=args.fp16_fallback, qat_epochs=args.qat_epochs,
            qat_lr=args.qat_lr, qat_size=args.qat_size, measure_latency=args.latency, threads=args.threads,
            reference_images=args.reference_images,
        )
        result = quantize_checkpoint(args.model, args.out, spec, data=args.data)
    except BudgetMissed as exc:
        if args.report:  # the attempts are worth keeping even when no artifact is
            _write_report(args.report, exc.report)
        raise
    chosen = result.chosen
    speed = f", {result.report['speedup']:.2f}x faster than fp32 ONNX" if "speedup" in result.report else ""
    parity = result.card.parity
    print(
        f"{chosen.name}: {args.eval_split} top-1 {chosen.top1:.2%} on {parity.images} images ({parity.source}) "
        f"(fp32 {result.report['fp32_top1']:.2%}, drop {chosen.drop * 100:.2f} points, agreement "
        f"{chosen.agreement:.2%}){speed}; wrote {result.path}"
    )
    if result.card.reference is not None:
        print(f"reference set: {result.card.reference.images} images in {result.card.reference.file} "
              f"(check on the device with `edgevision verify --model {result.path.name}`)")
    if args.report:
        _write_report(args.report, result.report)
    return 0


COMMANDS = {
    "prune": Subcommand(prune_parser, run_prune, wants_options=True),  # parsed again under --preset
    "quantize": Subcommand(quantize_parser, run_quantize),
}


def main(argv: list[str] | None = None) -> int:
    """`[prune|quantize, *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    return run_subcommand(argv, COMMANDS)
