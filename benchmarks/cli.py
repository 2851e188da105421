"""`edgevision bench`: compare model files side by side, over threads and batch sizes, and write a report;
`edgevision report`: merge the reports of several devices into one comparison."""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path

from benchmarks.provenance import labelled_data, run_provenance
from benchmarks.report import (baseline_row, emulation_note, jetson_note, machine_fingerprint, provenance_markdown,
                               to_csv, to_markdown)
from benchmarks.options import MAX_BATCH, MAX_IMAGES, MAX_SECONDS, int_list, positive_float, positive_int
from benchmarks.roofline import with_peak
from benchmarks.runner import Row, Target, artifact_files, run_benchmark
from benchmarks.schema import Report, read_report, to_json
from deploy.atomic import check_writable, write_text_atomic
from deploy.cli_util import CommandParser, run_cli
from deploy.data_spec import parse_data_spec
from deploy.errors import EdgevisionError
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


BENCH_OUTPUTS = ("report.md", "report.json", "report.csv", "tradeoff.png", "report.html")
REPORT_OUTPUTS = ("report.md", "report.html")


def refuse_overwriting_inputs(out: Path, names: tuple[str, ...], inputs: list[Path]) -> None:
    """Refuse an --out folder where a report file would replace one of the command's own inputs
    (a model named report.json, `report out/report.md --out out`), before any work."""
    if out.exists() and not out.is_dir():
        raise EdgevisionError(f"--out {out} is a file, not a folder")
    given = {path.resolve(): path for path in inputs if path.exists()}
    for name in names:
        hit = given.get((out / name).resolve())
        if hit is not None:
            raise EdgevisionError(f"--out {out} would overwrite the input {hit} with its {name}; choose another folder")


def with_provenance(markdown: str, provenance: dict | None) -> str:
    """A report's Markdown followed by its provenance: what the console and report.md show."""
    return markdown + "\n\n" + provenance_markdown(provenance)


def write_reports(out: Path, rows: list[Row], fingerprint: dict, markdown: str, baseline: str | None = None,
                  provenance: dict | None = None) -> Path | None:
    """Every report file into `out`, each with the run's provenance (`benchmarks.provenance`;
    by default the date, this process's command line and the versions, the data not recorded);
    the path of report.html, None without matplotlib (said on the log)."""
    if provenance is None:
        provenance = {key: value for key, value in run_provenance(rows).items() if key != "data"}
    write_text_atomic(out / "report.md", with_provenance(markdown, provenance) + "\n")
    write_text_atomic(out / "report.json", to_json(rows, fingerprint, provenance) + "\n")
    write_text_atomic(out / "report.csv", to_csv(rows))
    if importlib.util.find_spec("matplotlib") is None:
        logger.warning("no plots and no report.html: they need matplotlib (pip install matplotlib); the tables are written")
        return None
    from benchmarks.html import to_html
    from benchmarks.plots import plot_tradeoff, scored

    if scored(rows):
        plot_tradeoff(rows, out / "tradeoff.png")
    write_text_atomic(out / "report.html", to_html(rows, fingerprint, baseline, provenance=provenance))
    return out / "report.html"


def bench(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Run the bench `args` asks for; `argv`, the command line it was parsed from, goes into the report."""
    targets = [Target.parse(text) for text in args.models]
    if args.out:  # before the run, not after it
        refuse_overwriting_inputs(args.out, BENCH_OUTPUTS, [path for t in targets for path in artifact_files(t.path)])
        check_writable(args.out / "report.json", "--out folder")
    if args.data:  # a bad spec is a one-line error before any model is loaded
        parse_data_spec(args.data)
    rows = run_benchmark(targets, args.threads, args.seconds, args.data, args.split, args.limit, args.batch)
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


def read_reports(paths: list[Path]) -> list[Report]:
    """Each report once: a path given twice, or a copy of a run under another name (the same
    run id, or for older reports the same JSON values), is read once and said on one line."""
    reports: list[Report] = []
    seen_paths: dict[Path, Path] = {}
    seen_runs: dict[str, Report] = {}
    skipped: list[str] = []
    for path in paths:
        resolved = path.resolve()
        if resolved in seen_paths:
            skipped.append(f"{path} (given twice)")
            continue
        seen_paths[resolved] = path
        report = read_report(path)
        first = seen_runs.setdefault(report.identity, report)
        if first is not report:
            skipped.append(f"{path} (the same run as {first.source})")
            continue
        reports.append(report)
    if skipped:
        logger.warning("counted once: %s", "; ".join(skipped))
    return reports


def report(args: argparse.Namespace) -> int:
    from benchmarks.merge import group_by_device, merged_markdown

    if args.out:
        refuse_overwriting_inputs(args.out, REPORT_OUTPUTS, args.reports)
        check_writable(args.out / "report.md", "--out folder")
    devices = group_by_device(read_reports(args.reports))
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
        return run_cli(lambda: report(args), "edgevision report", verbose=args.verbose)
    if not argv or argv[0] != "bench":
        build_parser().error("the subcommands are: bench, report")
    args = build_parser().parse_args(argv[1:])
    return run_cli(lambda: bench(args, argv), "edgevision bench", verbose=args.verbose)
