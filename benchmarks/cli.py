"""`edgevision bench`: compare model files side by side and write a report."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from benchmarks.report import machine_fingerprint, to_csv, to_json, to_markdown
from benchmarks.runner import Target, run_benchmark
from deploy.atomic import write_text_atomic
from deploy.cli_util import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgevision bench",
        description="Latency (batch 1, interleaved rounds), top-1 and size of model files, side by side.",
    )
    parser.add_argument(
        "models", nargs="+", metavar="MODEL[@BACKEND]",
        help="model files (.pt, .onnx, .pte, .engine); @BACKEND picks a backend other than the default",
    )
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads per runtime (default 2)")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed rounds (default 20)")
    parser.add_argument("--data", type=Path, help="class-folder tree of labelled images for top-1")
    parser.add_argument("--split", default="val", help="split folder inside --data (default val)")
    parser.add_argument("--limit", type=int, help="at most this many images, balanced over classes")
    parser.add_argument("--baseline", help="row name that speed-ups are relative to (default: the first)")
    parser.add_argument("--out", type=Path, help="folder for report.md, report.json, report.csv, tradeoff.png")
    return parser


def bench(args: argparse.Namespace) -> int:
    targets = [Target.parse(text) for text in args.models]
    rows = run_benchmark(targets, args.threads, args.budget, args.data, args.split, args.limit)
    fingerprint = machine_fingerprint(args.threads)
    markdown = to_markdown(rows, args.baseline)
    if fingerprint.get("emulated"):
        markdown += (f"\nEMULATED ({fingerprint.get('emulation', 'under emulation')}): these timings measure the "
                     f"emulator, not the {fingerprint.get('machine')} device it imitates.")
    print(markdown)
    if args.out:
        write_text_atomic(args.out / "report.md", markdown + "\n")
        write_text_atomic(args.out / "report.json", to_json(rows, fingerprint) + "\n")
        write_text_atomic(args.out / "report.csv", to_csv(rows))
        if args.data and importlib.util.find_spec("matplotlib") is not None:
            from benchmarks.plots import plot_tradeoff

            plot_tradeoff(rows, args.out / "tradeoff.png")
        elif args.data:
            print("no tradeoff.png: plots need matplotlib (pip install matplotlib); the tables are written")
        print(f"report written to {args.out}/")
    return 1 if any(r.status != "ok" for r in rows) else 0


def main(argv: list[str]) -> int:
    """argv[0] is the subcommand name, "bench" (`python -m benchmarks bench ...`)."""
    if not argv or argv[0] != "bench":
        build_parser().error("the subcommand is: bench")
    args = build_parser().parse_args(argv[1:])
    return run_cli(lambda: bench(args), "edgevision bench")
