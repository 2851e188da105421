"""`edgevision export`: checkpoint (or, for TensorRT, ONNX) -> verified artifact. The format table in
`deploy.export` is the only source of the choices: formats, their precisions, suffixes and options
all come from it. An `.onnx` --model takes the path without torch (`deploy.export.onnx_source`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.cli_util import CommandParser, Subcommand, run_subcommand
from deploy.errors import EdgevisionError
from deploy.export import get_format, list_formats


def export_parser() -> CommandParser:
    formats = [get_format(name) for name in list_formats()]
    parser = CommandParser(
        prog="edgevision export",
        description="Export a checkpoint to ONNX, ExecuTorch or TensorRT, then check parity with PyTorch "
        "on real images. Only an artifact that passed is moved to --out; one that failed is kept as "
        "STEM.failed.SUFFIX (its card marked failed), --out is left as it was, and the exit status is 1. "
        "A TensorRT engine is built on the GPU that will run it, also from an ONNX (--model M.onnx, no torch): "
        "its precision is the ONNX's own (fp32, fp16 ONNX, or Q/DQ int8 ONNX), and the ONNX's reference "
        "set is replayed through the engine as the parity check.",
        examples=[
            "edgevision export --model runs/demo/train/model.pt --format onnx --data folder:runs/demo/digits_test "
            "--out runs/demo/train/model.onnx",
            "edgevision export --model runs/demo/train/model.pt --format executorch "
            "--data folder:runs/demo/digits_test --out runs/demo/train/model.pte",
            "edgevision export --model runs/demo/train/model.onnx --format tensorrt --out runs/demo/train/model.engine",
        ],
    )
    parser.add_argument("--model", required=True,
                        help="training checkpoint (model.pt), or an edgevision .onnx for formats built from one "
                        f"({', '.join(f.name for f in formats if f.onnx_exporter)})")
    parser.add_argument(
        "--format", required=True, choices=[f.name for f in formats],
        help="; ".join(f"{f.name}: {f.suffix}, {'/'.join(f.precisions)}, builds on {f.device}" for f in formats),
    )
    parser.add_argument("--precision", default=None,
                        choices=sorted({p for f in formats for p in f.precisions}, key=["fp32", "fp16", "int8"].index),
                        help="numeric precision of the artifact, as the format allows (default: fp32 from a "
                        "checkpoint, the ONNX's own from an .onnx, which it must match; fp16/int8 ONNX come from "
                        "`edgevision quantize`)")
    parser.add_argument("--out", required=True, help="artifact path, with the format's suffix")
    parser.add_argument("--data", help="images for parity/calibration, from the val split: digits, mnist, "
                        "fashion-mnist, cifar10, folder:PATH, idx:DIR or a class-folder PATH "
                        "(default: generated images)")
    parser.add_argument("--verify-images", type=int, default=256,
                        help="images in the parity check, whose top-1 probabilities are also the card's confidence "
                        "histogram for the camera's drift watch (default 256; 0: skip; from an .onnx: 0 skips the "
                        "replay of its reference set, any other number replays all of it)")
    parser.add_argument("--reference-images", type=int, default=16,
                        help="held-out images (the parity check's, an equal share per class) stored beside the "
                        "artifact with PyTorch's logits, for `edgevision verify` on the device (default 16; 0: none; "
                        "at most 256)")
    for fmt in formats:
        if not fmt.options:
            continue
        group = parser.add_argument_group(f"{fmt.name} options")
        for option in fmt.options:
            if option.type is bool:
                group.add_argument(option.flag, action="store_true", help=option.help)
            else:
                group.add_argument(option.flag, type=option.type, default=option.default,
                                   help=f"{option.help} (default: {option.default})")
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    from deploy.export import check_request

    source = "onnx" if Path(args.model).suffix.lower() == ".onnx" else "checkpoint"
    precision = args.precision if source == "onnx" else (args.precision or "fp32")
    fmt = check_request(args.format, precision, args.out, source=source)
    if args.verify_images < 0:
        raise EdgevisionError(f"--verify-images must be >= 0, got {args.verify_images}")
    options = {option.name: getattr(args, option.name) for option in fmt.options}
    if source == "onnx":
        if args.data is not None:
            raise EdgevisionError("--data is for a checkpoint; an ONNX is checked with the reference set beside it "
                                  "(PyTorch's logits, stored when the ONNX was exported)")
        from deploy.export.onnx_source import export_onnx

        result = export_onnx(args.model, args.format, args.out, precision=precision,
                             verify=args.verify_images > 0, **options)
    else:
        from deploy.export.pipeline import ExportSpec, export_checkpoint
        from deploy.export.reference import check_count

        check_count(args.reference_images)
        spec = ExportSpec(precision=precision, data=args.data, verify_images=args.verify_images,
                          reference_images=args.reference_images, options=options)
        result = export_checkpoint(args.model, args.format, args.out, spec)
    precision = result.card.precision
    print(f"wrote {result.path} ({args.format}, {precision})")
    if result.card.built_on is not None:
        print(f"built with {result.card.built_on.line()}: it runs only there")
    if result.card.parity is not None:
        print(f"parity: {result.card.parity.line()}")
    elif source == "onnx":
        print(f"not verified: {args.model} has no reference set beside it (or --verify-images 0)")
    if result.card.reference is not None:
        print(f"reference set: {result.card.reference.images} images in {result.card.reference.file} "
              f"(check on the device with `edgevision verify --model {result.path.name}`)")
    if not result.passed:
        print(f"edgevision export: parity check failed; {args.out} left as it was, the failed artifact kept as "
              f"{result.path}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """`["export", *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    return run_subcommand(argv, {"export": Subcommand(export_parser, cmd_export)})
