"""`edgevision bench`: compare model files side by side, over threads and batch sizes, and write a report;
`edgevision report`: merge the reports of several devices into one comparison."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from benchmarks.fingerprint import machine_fingerprint
from benchmarks.options import MAX_BATCH, MAX_IMAGES, MAX_SECONDS, int_list, positive_float, positive_int
from benchmarks.provenance import labelled_data, run_provenance
from benchmarks.report import baseline_row, emulation_note, jetson_note, to_markdown
from benchmarks.report_files import (
    BENCH_OUTPUTS,
    REPORT_OUTPUTS,
    read_reports,
    refuse_overwriting_inputs,
    with_provenance,
    write_merged_reports,
    write_reports,
)
from benchmarks.roofline import with_peak
from benchmarks.rows import Target, artifact_files
from deploy.atomic import check_writable
from deploy.cli_util import CommandParser, Subcommand, add_device_options, device_options, run_subcommand
from deploy.data_spec import parse_data_spec
from deploy.limits import max_threads

logger = logging.getLogger("edgevision.benchmarks")

INTERRUPTED_EXIT = 130  # the shell's code for a Ctrl-C


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision bench",
        description="Latency (interleaved rounds), top-1 / top-5, memory and size of model files, side by side, "
                    "over threads and batch sizes.",
        examples=[
            "edgevision bench runs/demo/train/model.onnx runs/demo/train/model.int8.onnx --seconds 5",
            "edgevision bench runs/demo/train/model.onnx runs/demo/train/model.pte --data runs/demo/digits_test "
            "--threads 1,2 --seconds 5 --out runs/bench",
        ],
    )
    parser.add_argument(
        "models", nargs="+", metavar="MODEL[@BACKEND]",
        help="model files (.pt, .onnx, .pte, .engine); @BACKEND picks a backend other than the default",
    )
    parser.add_argument("--threads", type=int_list(max_threads()), default=[2],
                        help="intra-op threads per runtime, one value or a list to sweep: 1,2,4 (default 2)")
    parser.add_argument("--batch", type=int_list(MAX_BATCH), default=[1],
                        help="images per timed call, one value or a list to sweep: 1,8 (default 1)")
    add_device_options(parser)
    seconds = parser.add_argument("--seconds", type=positive_float(MAX_SECONDS), default=20.0,
                                  help="seconds of timed rounds (default 20)")
    parser.old_option(seconds, "--budget")
    parser.add_argument("--data", help="labelled images for top-1: digits, folder:PATH or a class-folder PATH "
                        "(mnist, fashion-mnist, cifar10, idx:DIR with the train extra)")
    parser.add_argument("--split", default="val",
                        help="split of --data scored: a named set's, or the folder inside a tree that has "
                        "train/val/test (default val)")
    parser.add_argument("--limit", type=positive_int(MAX_IMAGES),
                        help="at most this many images, balanced over classes")
    parser.add_argument("--baseline", help="model name that speed-ups are relative to (default: the first row)")
    parser.add_argument("--out", type=Path,
                        help="folder for report.md, report.json, report.csv, tradeoff.png and report.html")
    return parser


def bench(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Run the bench `args` asks for; `argv`, the command line it was parsed from, goes into the report."""
    from benchmarks.runner import run_benchmark  # measuring only: `edgevision report` loads no runner

    targets = [Target.parse(text) for text in args.models]
    if args.out:  # before the run, not after it
        refuse_overwriting_inputs(args.out, BENCH_OUTPUTS, [path for t in targets for path in artifact_files(t.path)])
        check_writable(args.out / "report.json", "--out folder")
    if args.data:  # a bad spec is a one-line error before any model is loaded
        parse_data_spec(args.data)
    rows = run_benchmark(targets, args.threads, args.seconds, args.data, args.split, args.limit, args.batch,
                         device_options(args.provider, args.precision))
    fingerprint = with_peak(machine_fingerprint(), rows)
    base = baseline_row(rows, args.baseline)
    if args.baseline and base is not None and base.model != args.baseline:
        logger.warning("--baseline %s names no timed row (rows: %s); speed-ups are relative to %s", args.baseline,
                       ", ".join(dict.fromkeys(r.model for r in rows)), base.model)
    markdown = to_markdown(rows, args.baseline, fingerprint.get("peak"))
    for note in (emulation_note(fingerprint), jetson_note(fingerprint)):
        if note:
            markdown += "\n\n" + note
    provenance = run_provenance(rows, labelled_data(args.data, args.split, args.limit), argv)
    print(with_provenance(markdown, provenance))
    if args.out:
        html = write_reports(args.out, rows, fingerprint, markdown, args.baseline, provenance)
        print(f"report written to {args.out}/" + (f" (open {html})" if html else ""))
    if any(r.status == "interrupted" for r in rows):
        return INTERRUPTED_EXIT
    return 1 if any(r.status != "ok" for r in rows) else 0


def build_report_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision report",
        description="Merge report.json files of several devices (`edgevision bench --out`) into one comparison: "
                    "rows grouped by device, the best configuration per device, each model file across devices.",
        examples=[
            "edgevision report runs/demo/bench/report.json",
            "edgevision report bench-pi/report.json bench-laptop/report.json --out runs/compare",
        ],
    )
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json",
                        help="report.json files written by `edgevision bench --out`")
    parser.add_argument("--out", type=Path, help="folder for report.md and report.html")
    return parser


def report(args: argparse.Namespace) -> int:
    from benchmarks.merge import group_by_device, merged_markdown

    if args.out:
        refuse_overwriting_inputs(args.out, REPORT_OUTPUTS, args.reports)
        check_writable(args.out / "report.md", "--out folder")
    devices = group_by_device(read_reports(args.reports))
    markdown = merged_markdown(devices)
    print(markdown)
    if args.out:
        write_merged_reports(args.out, devices, markdown)
        print(f"report written to {args.out}/")
    return 0


COMMANDS = {
    # bench records the command line it ran in its report's provenance
    "bench": Subcommand(build_parser, lambda args, parser, options: bench(args, ["bench", *options]),
                        wants_options=True),
    "report": Subcommand(build_report_parser, report),
}


def main(argv: list[str] | None = None) -> int:
    """`[bench|report, *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    return run_subcommand(argv, COMMANDS)
