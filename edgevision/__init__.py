"""`edgevision`: one command that reaches every stage, and the whole road on top of them.

The top layer of the project (see docs/architecture.md): it may import every package, and none
imports it. `edgevision.demo` runs the whole road; this module is a thin dispatcher:
`edgevision SUBCOMMAND ...` imports only the module that owns SUBCOMMAND and calls its
`main([SUBCOMMAND, ...])`, so `edgevision predict` never loads torch and
`python -m <package> SUBCOMMAND ...` runs the very same code.
"""

from __future__ import annotations

import importlib
import sys

import deploy.limits  # noqa: F401  (before any cv2 import: OpenCV reads its image-size limit once)

# subcommand -> (module with main(argv) -> int, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("edgevision.demo", "run the whole road offline on bundled data"),
    "show-data": ("train.show_data", "draw a grid of a data set's images with their class names"),
    "train": ("train.cli", "train a classifier (transfer learning or from scratch)"),
    "eval": ("train.cli", "evaluate a checkpoint on a data set"),
    "prune": ("quantize.cli", "prune channels (Torch-Pruning) with fine-tuning: fewer MACs, same outputs"),
    "quantize": ("quantize.cli", "int8/fp16 ONNX or ExecuTorch under an accuracy budget"),
    "export": ("deploy.export.cli", "export a checkpoint to ONNX, ExecuTorch or TensorRT, verified"),
    "predict": ("deploy.cli", "classify image files with any exported model (no torch needed)"),
    "info": ("deploy.cli", "print the model card of a model file"),
    "verify": ("deploy.cli", "replay a model's stored reference set on this device: does it compute what it did?"),
    "camera": ("camera_app.cli", "classify camera, stream or video frames live (no torch needed)"),
    "bench": ("benchmarks.cli", "latency, top-1 and size of model files, side by side"),
    "report": ("benchmarks.cli", "merge bench reports of several devices into one comparison"),
    "sweep": ("benchmarks.sweep", "build pruned x format x precision variants, bench them, recommend one"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "usage: edgevision COMMAND [options]   (edgevision COMMAND --help for more)\n\n" + "\n".join(
        ["commands:", *lines]
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:  # a command is needed: the list on stderr, exit 2, as argparse does for a missing argument
        print(usage(), file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] == "--version":
        from deploy.version import __version__

        print(f"edgevision {__version__}")
        return 0
    if args[0] not in COMMANDS:
        print(f"edgevision: unknown command {args[0]!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    return module.main(args)


if __name__ == "__main__":
    sys.exit(main())
