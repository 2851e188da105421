"""`edgevision export | predict | info`: argv[0] is the subcommand (see edgevision.py).

`predict` and `info` import no torch; `export` imports it only once its arguments are checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deploy.cli_util import run_cli
from deploy.errors import EdgevisionError


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgevision export",
        description="Export a checkpoint to ONNX, ExecuTorch or TensorRT, then check parity with PyTorch "
        "on real images; exits 1 (keeping the artifact, its card marked failed) when parity fails.",
    )
    parser.add_argument("--model", required=True, help="training checkpoint (model.pt)")
    parser.add_argument("--format", required=True, choices=["onnx", "executorch", "tensorrt"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    parser.add_argument("--out", required=True, help="artifact path (.onnx, .pte, .engine)")
    parser.add_argument("--data", help="images for parity/calibration: folder:PATH (its val/ split if present)")
    parser.add_argument("--verify-images", type=int, default=64, help="images in the parity check (0: skip)")
    onnx = parser.add_argument_group("onnx")
    onnx.add_argument("--opset", type=int, default=18)
    onnx.add_argument("--simplify", action="store_true", help="run onnxslim on the graph")
    trt = parser.add_argument_group("tensorrt")
    trt.add_argument("--workspace-gb", type=float, default=2.0)
    trt.add_argument("--timing-cache", help="TensorRT timing cache file (read and updated)")
    return parser


def predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgevision predict", description="Classify image files with an exported model.")
    parser.add_argument("--model", required=True, help="model file: .onnx, .pte, .engine or .pt")
    parser.add_argument("--backend", default="auto", help="auto (by suffix), onnxruntime, executorch, tensorrt, torch")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--labels", help="one class name per line (needed for a model without a card)")
    parser.add_argument("--threads", type=int, help="inference threads")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    return parser


def info_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgevision info", description="Print the model card of a model file as JSON.")
    parser.add_argument("model", help="model file: .onnx, .pte, .engine or .pt")
    parser.add_argument("--backend", default="auto")
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    from deploy.export import check_request

    check_request(args.format, args.precision)
    if args.verify_images < 0:
        raise EdgevisionError(f"--verify-images must be >= 0, got {args.verify_images}")
    from deploy.export.pipeline import export_checkpoint

    options: dict = {}
    if args.format == "onnx":
        options = {"opset": args.opset, "simplify": args.simplify}
    elif args.format == "tensorrt":
        options = {"workspace_gb": args.workspace_gb, "timing_cache": args.timing_cache}
    result = export_checkpoint(
        args.model, args.format, args.out, precision=args.precision, data=args.data,
        verify_images=args.verify_images, **options,
    )
    print(f"wrote {result.path} ({args.format}, {args.precision})")
    parity = result.card.parity
    if parity:
        print(
            f"parity vs PyTorch on {parity['images']} images ({parity['source']}): top-1 agreement "
            f"{parity['top1_agreement']:.2%}, max |logit diff| {parity['max_abs_logit_diff']:.3g} -> "
            f"{'passed' if parity['passed'] else 'FAILED'}"
        )
    if not result.passed:
        print(f"edgevision export: parity check failed; {result.path} kept, its card marks it failed", file=sys.stderr)
        return 1
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import deploy

    options = {"threads": args.threads} if args.threads else {}
    classifier = deploy.load(args.model, backend=args.backend, labels=args.labels, **options)
    for image in args.images:
        prediction = classifier.predict(image, top_k=args.top_k)
        timings = {k: round(v, 2) for k, v in prediction.timings_ms.items() if k != "batch"}
        if args.json:
            print(json.dumps({"image": image, "top": prediction.top, "timings_ms": timings}))
            continue
        print(image)
        for label, probability in prediction.top:
            print(f"  {probability:7.2%}  {label}")
        print("  time ms: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from deploy.backends import backend_for_path, get_backend

    path = Path(args.model)
    if not path.exists():
        raise EdgevisionError(f"model file not found: {path}")
    name = backend_for_path(path) if args.backend == "auto" else args.backend
    runner = get_backend(name).load(path, {})
    output = {"file": str(path), "runtime": runner.info, "card": runner.card.to_dict() if runner.card else None}
    print(json.dumps(output, indent=2, sort_keys=True, default=str))
    return 0


COMMANDS = {"export": (export_parser, cmd_export), "predict": (predict_parser, cmd_predict), "info": (info_parser, cmd_info)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: edgevision {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    make_parser, command = COMMANDS[argv[0]]
    args = make_parser().parse_args(argv[1:])
    return run_cli(lambda: command(args), make_parser().prog)
