"""`edgevision bench`: compare model files side by side, over threads and batch sizes, and write a report;
`edgevision report`: merge the reports of several devices into one comparison."""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path

from benchmarks.report import emulation_note, machine_fingerprint, to_csv, to_markdown
from benchmarks.roofline import with_peak
from benchmarks.runner import Row, Target, run_benchmark
from benchmarks.schema import read_report, to_json
from deploy.atomic import check_writable, write_text_atomic
from deploy.cli_util import run_cli
from deploy.limits import check_threads

logger = logging.getLogger("edgevision.benchmarks")

INTERRUPTED_EXIT = 130  # the shell's code for a Ctrl-C


def int_list(text: str) -> list[int]:
    """`1,2,4` -> [1, 2, 4]; every value a positive integer."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,4, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers such as 1,2,4, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgevision bench",
        description="Latency (interleaved rounds), top-1 / top-5, memory and size of model files, side by side, "
                    "over threads and batch sizes.",
    )
    parser.add_argument(
        "models", nargs="+", metavar="MODEL[@BACKEND]",
        help="model files (.pt, .onnx, .pte, .engine); @BACKEND picks a backend other than the default",
    )
    parser.add_argument("--threads", type=int_list, default=[2],
                        help="intra-op threads per runtime, one value or a list to sweep: 1,2,4 (default 2)")
    parser.add_argument("--batch", type=int_list, default=[1],
                        help="images per timed call, one value or a list to sweep: 1,8 (default 1)")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed rounds (default 20)")
    parser.add_argument("--data", type=Path, help="class-folder tree of labelled images for top-1")
    parser.add_argument("--split", default="val", help="split folder inside --data (default val)")
    parser.add_argument("--limit", type=int, help="at most this many images, balanced over classes")
    parser.add_argument("--baseline", help="model name that speed-ups are relative to (default: the first row)")
    parser.add_argument("--out", type=Path,
                        help="folder for report.md, report.json, report.csv, tradeoff.png and report.html")
    return parser


def write_reports(out: Path, rows: list[Row], fingerprint: dict, markdown: str, baseline: str | None = None) -> Path | None:
    """Every report file into `out`; the path of report.html, None without matplotlib (said on the log)."""
    write_text_atomic(out / "report.md", markdown + "\n")
    write_text_atomic(out / "report.json", to_json(rows, fingerprint) + "\n")
    write_text_atomic(out / "report.csv", to_csv(rows))
    if importlib.util.find_spec("matplotlib") is None:
        logger.warning("no plots and no report.html: they need matplotlib (pip install matplotlib); the tables are written")
        return None
    from benchmarks.html import to_html
    from benchmarks.plots import plot_tradeoff, scored

    if scored(rows):
        plot_tradeoff(rows, out / "tradeoff.png")
    write_text_atomic(out / "report.html", to_html(rows, fingerprint, baseline))
    return out / "report.html"


def bench(args: argparse.Namespace) -> int:
    for threads in args.threads:
        check_threads(threads, minimum=1)
    if args.out:
        check_writable(args.out / "report.json", "--out folder")  # before the run, not after it
    targets = [Target.parse(text) for text in args.models]
    rows = run_benchmark(targets, args.threads, args.budget, args.data, args.split, args.limit, args.batch)
    fingerprint = with_peak(machine_fingerprint(), rows)
    markdown = to_markdown(rows, args.baseline, fingerprint.get("peak"))
    if emulation_note(fingerprint):
        markdown += "\n" + emulation_note(fingerprint)
    print(markdown)
    if args.out:
        html = write_reports(args.out, rows, fingerprint, markdown, args.baseline)
        print(f"report written to {args.out}/" + (f" (open {html})" if html else ""))
    if any(r.status == "interrupted" for r in rows):
        return INTERRUPTED_EXIT
    return 1 if any(r.status != "ok" for r in rows) else 0


def build_report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgevision report",
        description="Merge report.json files of several devices (`edgevision bench --out`) into one comparison: "
                    "rows grouped by device, the best configuration per device, each model file across devices.",
    )
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    parser.add_argument("--out", type=Path, help="folder for report.md and report.html")
    return parser


def report(args: argparse.Namespace) -> int:
    from benchmarks.merge import group_by_device, merged_markdown

    devices = group_by_device([read_report(path) for path in args.reports])
    markdown = merged_markdown(devices)
    print(markdown)
    if args.out:
        write_text_atomic(args.out / "report.md", markdown + "\n")
        if importlib.util.find_spec("matplotlib") is None:
            logger.warning("no report.html: plots need matplotlib (pip install matplotlib); report.md is written")
        else:
            from benchmarks.html import merged_to_html

            write_text_atomic(args.out / "report.html", merged_to_html(devices))
        print(f"report written to {args.out}/")
    return 0


def main(argv: list[str]) -> int:
    """argv[0] is the subcommand name, "bench" or "report" (`python -m benchmarks bench ...`)."""
    if argv and argv[0] == "report":
        args = build_report_parser().parse_args(argv[1:])
        return run_cli(lambda: report(args), "edgevision report")
    if not argv or argv[0] != "bench":
        build_parser().error("the subcommands are: bench, report")
    args = build_parser().parse_args(argv[1:])
    return run_cli(lambda: bench(args), "edgevision bench")
