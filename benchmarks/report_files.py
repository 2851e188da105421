"""The report files a command writes into its --out folder, and the report.json files it reads.

`edgevision bench` and `edgevision sweep` write one run's report.md, report.json, report.csv,
tradeoff.png and report.html (`write_reports`); `edgevision report` writes several devices'
comparison as report.md and report.html (`write_merged_reports`) from report.json files read once
each (`read_reports`). Every file is written atomically; an --out folder whose report would replace
one of the command's own inputs is refused before any work.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from benchmarks.merge import Device
from benchmarks.provenance import run_provenance
from benchmarks.report import provenance_markdown, to_csv
from benchmarks.rows import Row
from benchmarks.schema import Report, read_report, to_json
from deploy.atomic import write_text_atomic
from deploy.errors import EdgevisionError

logger = logging.getLogger("edgevision.benchmarks")

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
        logger.warning("no plots and no report.html: they need matplotlib (pip install matplotlib); "
                       "the tables are written")
        return None
    from benchmarks.html import to_html
    from benchmarks.plots import plot_tradeoff, scored

    if scored(rows):
        plot_tradeoff(rows, out / "tradeoff.png")
    write_text_atomic(out / "report.html", to_html(rows, fingerprint, baseline, provenance=provenance))
    return out / "report.html"


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




def write_merged_reports(out: Path, devices: list[Device], markdown: str) -> None:
    """report.md (`markdown`, `benchmarks.merge.merged_markdown`) and, with matplotlib, report.html
    of several devices' comparison into `out`."""
    write_text_atomic(out / "report.md", markdown + "\n")
    if importlib.util.find_spec("matplotlib") is None:
        logger.warning("no report.html: plots need matplotlib (pip install matplotlib); report.md is written")
        return
    from benchmarks.html import merged_to_html

    write_text_atomic(out / "report.html", merged_to_html(devices))
