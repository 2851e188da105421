"""Benchmark rows as tables: the bench table (`COLUMNS`, with ratios to a baseline row) for the
console, report.md and report.html, the CSV's columns, and the notes a report prints under them.
The JSON is `benchmarks.schema`; the machine's fingerprint, `benchmarks.fingerprint`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.pareto import pareto_front, per_image_ms
from benchmarks.provenance import provenance_pairs
from benchmarks.roofline import achieved_gmacs, peak_for
from benchmarks.rows import Row
from benchmarks.table import Fields, Heading, Line, Table, short
from benchmarks.table import to_csv as render_csv
from benchmarks.table import to_markdown as render_markdown


def _mib(value: int | None) -> str:
    return short(value / 2**20) if value else "-"


def _pct(value: float | None) -> str:
    return f"{100 * value:.2f}" if value is not None else "-"


def baseline_row(rows: list[Row], baseline: str | None = None) -> Row | None:
    """The row speed-ups are relative to: the first timed row of the model named, else the first timed."""
    timed = [r for r in rows if r.latency and r.status == "ok"]
    return next((r for r in timed if r.model == baseline), None) or next(iter(timed), None)


@dataclass(frozen=True)
class Context:
    """What a cell may compare its row with: the baseline row and the machine's peak."""

    base: Row | None
    peak: dict | None


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Row, Context], str]


def _ms(stat: str) -> Column:
    return Column(f"{stat} ms", lambda r, c: short(getattr(r.latency, f"{stat}_ms")) if r.latency else "-")


def _speed_up(row: Row, context: Context) -> str:
    return f"{per_image_ms(context.base) / per_image_ms(row):.2f}x" if row.latency and context.base else "-"


def _percent_of_peak(row: Row, context: Context) -> str:
    achieved, ceiling = achieved_gmacs(row), peak_for(row, context.peak)
    return f"{100 * achieved / ceiling:.0f}" if achieved is not None and ceiling else "-"


# The bench table's columns, for every renderer (console, report.md, report.html).
COLUMNS: tuple[Column, ...] = (
    Column("model", lambda r, c: r.model),
    Column("backend", lambda r, c: r.backend),
    Column("precision", lambda r, c: r.precision),
    Column("threads", lambda r, c: str(r.threads)),
    Column("batch", lambda r, c: str(r.batch)),
    Column("size MiB", lambda r, c: _mib(r.size_bytes)),
    Column("load s", lambda r, c: f"{r.load_s:.2f}" if r.load_s is not None else "-"),
    Column("first ms", lambda r, c: short(r.first_ms) if r.first_ms is not None else "-"),
    _ms("p50"), _ms("p90"), _ms("p95"), _ms("p99"), _ms("mean"),
    Column("img/s", lambda r, c: f"{r.throughput_ips:.1f}" if r.throughput_ips else "-"),
    Column("speed-up", _speed_up),
    Column("top-1 %", lambda r, c: f"{_pct(r.top1)} ({r.images})" if r.top1 is not None else "-"),
    Column("top-5 %", lambda r, c: _pct(r.top5)),
    Column("agree %", lambda r, c: _pct(r.agreement)),
    Column("MMACs", lambda r, c: short(r.macs / 1e6) if r.macs else "-"),
    Column("GMAC/s", lambda r, c: short(achieved_gmacs(r)) if achieved_gmacs(r) is not None else "-"),
    Column("% peak", _percent_of_peak),
    Column("peak RSS MiB", lambda r, c: _mib(r.peak_rss_bytes)),
    Column("status", lambda r, c: r.status if not r.error else f"{r.status}: {r.error}"),
)


def bench_table(rows: list[Row], baseline: str | None = None, peak: dict | None = None) -> Table:
    """One row per configuration, `COLUMNS` wide; `speed-up` is the baseline's median latency per
    image over the row's (higher is faster); GMAC/s is achieved, `% peak` its share of the
    machine's peak (`benchmarks.roofline`). Each row's kind: "front" on the latency / top-1 Pareto
    front, else its status."""
    context = Context(baseline_row(rows, baseline), peak)
    front = {id(r) for r in pareto_front(rows)}
    return Table([c.header for c in COLUMNS],
                 [Line([c.cell(row, context) for c in COLUMNS], "front" if id(row) in front else row.status)
                  for row in rows], kind="rows")


def bench_notes(rows: list[Row], baseline: str | None = None, peak: dict | None = None) -> list[str]:
    """What the columns mean, as paragraphs under the table."""
    base = baseline_row(rows, baseline)
    notes = []
    if base:
        notes.append(f"speed-up: median latency per image of {base.model} ({base.threads} thread(s), batch "
                     f"{base.batch}) divided by the row's. agree: top-1 agreement with the first scored row. "
                     "top-1 is scored once per model file and backend. mean: over every timed call, "
                     "p95: 95 % of the calls were faster. load s: loading in a fresh process (a TensorRT "
                     "provider builds its engine then); first ms: the first call after it, kept out of the "
                     "latency columns.")
    if peak:
        notes.append(f"% peak: achieved GMAC/s over this machine's measured matrix-product peak "
                     f"({peak['fp32_gmacs']:.0f} GMAC/s fp32 on {peak['fp32_threads']} thread(s), "
                     f"{peak['int8_gmacs']:.0f} int8 on {peak['int8_threads']}); convolutions seldom reach a "
                     "large GEMM's rate.")
    if len(rows) > 1:
        notes.append("Rows were timed in turn, round after round, each configuration in its own process, with idle "
                     "thread pools sleeping, not spinning.")
    return notes


def to_markdown(rows: list[Row], baseline: str | None = None, peak: dict | None = None) -> str:
    """The bench table and its notes as Markdown (what bench prints and writes to report.md)."""
    return render_markdown([bench_table(rows, baseline, peak), *bench_notes(rows, baseline, peak)])


def emulation_note(fingerprint: dict) -> str:
    """A line for every report of an emulated run, empty otherwise."""
    if not fingerprint.get("emulated"):
        return ""
    return (f"EMULATED ({fingerprint.get('emulation', 'under emulation')}): these timings measure the emulator, "
            f"not the {fingerprint.get('machine')} device it imitates.")


def clock_settings(fingerprint: dict) -> str:
    """A Jetson's power mode and jetson_clocks state as the fingerprint recorded them, else ""."""
    parts = [str(fingerprint["power_mode"])] if fingerprint.get("power_mode") else []
    if "jetson_clocks" in fingerprint:
        parts.append("jetson_clocks " + ("on" if fingerprint["jetson_clocks"] else "off"))
    return ", ".join(parts)


def jetson_note(fingerprint: dict) -> str:
    """A line naming a Jetson's power mode and jetson_clocks state (they set the clocks every
    timing depends on), empty where the fingerprint has neither."""
    settings = clock_settings(fingerprint)
    if not settings:
        return ""
    release = f" (L4T {fingerprint['l4t']})" if fingerprint.get("l4t") else ""
    return f"Jetson{release}: {settings}; these timings hold at these settings only (docs/jetson.md)."


def provenance_markdown(provenance: dict | None) -> str:
    """The run's provenance as a Markdown section, for the end of report.md and the console."""
    return render_markdown([Heading("Run"), Fields(provenance_pairs(provenance))])


CSV_COLUMNS = ("model", "backend", "precision", "provider", "threads", "batch", "size_bytes", "load_s", "first_ms",
               "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "throughput_ips",
               "top1", "top5", "images", "agreement", "macs", "params", "gmacs_per_s", "peak_rss_bytes", "status",
               "error")


def _csv_cell(value: object) -> str:
    return "" if value is None else str(value)


def csv_table(rows: list[Row]) -> Table:
    """The rows as report.csv holds them: `CSV_COLUMNS`, the raw values (bytes, ms to three decimals), empty where
    unmeasured."""
    table = Table(list(CSV_COLUMNS))
    for r in rows:
        lat = r.latency
        values = {name: getattr(r, name, None) for name in CSV_COLUMNS}
        for stat in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max"):
            values[f"{stat}_ms"] = f"{getattr(lat, stat + '_ms'):.3f}" if lat else None
        values["throughput_ips"] = f"{r.throughput_ips:.2f}" if r.throughput_ips else None
        values["gmacs_per_s"] = f"{achieved_gmacs(r):.2f}" if achieved_gmacs(r) else None
        table.add(_csv_cell(values[c]) for c in CSV_COLUMNS)
    return table


def to_csv(rows: list[Row]) -> str:
    """report.csv: `csv_table` as CSV."""
    return render_csv(csv_table(rows))
