"""`edgevision predict | info | verify`: the runtime's command line (no torch); argv[0] is the subcommand.

`edgevision export` is the exporter's own command line, `deploy/export/cli.py`.
"""

from __future__ import annotations

import argparse
import json
import sys

from deploy.backends import list_backends
from deploy.cli_util import CommandParser, Subcommand, add_device_options, device_options, run_subcommand


def predict_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision predict", description="Classify image files with an exported model.",
        examples=[
            "edgevision predict --model runs/demo/train/model.onnx runs/demo/digits_test/3/*.png",
            "edgevision predict --model runs/demo/train/model.int8.pte --top-k 3 --json runs/demo/digits_test/7/*.png",
        ],
    )
    parser.add_argument("--model", required=True, help="model file: .onnx, .pte, .engine or .pt")
    parser.add_argument("--backend", default="auto", help="auto (by suffix) or one of: " + ", ".join(list_backends()))
    parser.add_argument("--top-k", type=int, default=5, help="labels shown per image (default 5)")
    parser.add_argument("--labels", help="one class name per line (needed for a model without a card)")
    parser.add_argument("--threads", type=int,
                        help="inference threads (default: one per physical core, at most 4; onnxruntime "
                             "times that against 1 thread and a spinning pool at load)")
    add_device_options(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    return parser


def info_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision info", description="Print the model card of a model file as JSON.",
        examples=[
            "edgevision info --model runs/demo/train/model.onnx",
            "edgevision info --model runs/demo/train/model.int8.pte",
        ],
    )
    model = parser.add_argument("--model", required=True, help="model file: .onnx, .pte, .engine or .pt")
    parser.old_positional(model, "model")
    parser.add_argument("--backend", default="auto", help="auto (by suffix) or one of: " + ", ".join(list_backends()))
    return parser


def verify_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision verify",
        description="Replay the reference set stored with a model (held-out images and the logits PyTorch gave "
        "for them) through this device's preprocessing and runtime. Exit status 0: within the tolerance of its "
        "precision; 1: not; 2: bad input, or no reference set.",
        examples=[
            "edgevision verify --model runs/demo/train/model.onnx",
            "edgevision verify --model runs/demo/train/model.int8.pte --threads 1",
            "edgevision verify --model runs/demo/train/model.pruned.onnx "
            "--reference runs/demo/train/model.pruned.onnx.ref.npz",
        ],
    )
    model = parser.add_argument("--model", required=True, help="model file: .onnx, .pte or .engine")
    parser.old_positional(model, "model")
    parser.add_argument("--backend", default="auto", help="auto (by suffix) or one of: " + ", ".join(list_backends()))
    add_device_options(parser)
    parser.add_argument("--threads", type=int, help="inference threads (default as predict)")
    parser.add_argument("--reference", metavar="FILE",
                        help="reference set (default: the one the card names beside the model, else MODEL.ref.npz)")
    return parser


def cmd_verify(args: argparse.Namespace) -> int:
    from deploy.limits import check_threads
    from deploy.verify import verify_file

    check_threads(args.threads)
    options = {**device_options(args.provider, args.precision), **({"threads": args.threads} if args.threads else {})}
    result = verify_file(args.model, backend=args.backend, reference=args.reference, **options)
    print(f"{args.model}: {result.line()}")
    return 0 if result.passed else 1


def cmd_predict(args: argparse.Namespace) -> int:
    import deploy
    from deploy.classifier import NOT_FINITE
    from deploy.limits import check_threads

    check_threads(args.threads)
    options = {**device_options(args.provider, args.precision), **({"threads": args.threads} if args.threads else {})}
    classifier = deploy.load(args.model, backend=args.backend, labels=args.labels, **options)
    failed = 0
    for image in args.images:
        prediction = classifier.predict(image, top_k=args.top_k)
        if not prediction.valid:
            print(f"edgevision predict: error: {image}: {NOT_FINITE}", file=sys.stderr)
            failed += 1
            continue
        timings = {k: round(v, 2) for k, v in prediction.timings_ms.items() if k != "batch"}
        if args.json:
            print(json.dumps({"image": image, "top": prediction.top, "timings_ms": timings}, allow_nan=False))
            continue
        print(image)
        for label, probability in prediction.top:
            print(f"  {probability:7.2%}  {label}")
        print("  time ms: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    return 2 if failed else 0


def cmd_info(args: argparse.Namespace) -> int:
    from deploy import check_model_path
    from deploy.backends import backend_for_path, get_backend

    path = check_model_path(args.model)
    name = backend_for_path(path) if args.backend == "auto" else args.backend
    runner = get_backend(name).load(path, {})
    output = {"file": str(path), "runtime": runner.info, "card": runner.card.to_dict() if runner.card else None}
    print(json.dumps(output, indent=2, sort_keys=True, default=str))
    return 0


COMMANDS = {"predict": Subcommand(predict_parser, cmd_predict), "info": Subcommand(info_parser, cmd_info),
            "verify": Subcommand(verify_parser, cmd_verify)}


def main(argv: list[str] | None = None) -> int:
    """`[predict|info|verify, *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    return run_subcommand(argv, COMMANDS)
