"""`report.html`: one self-contained page to hand on (plots inline as base64 PNG, no network);
the same for several devices merged (`edgevision report`).

The run's provenance (date, command, data, versions), the rows' table (the columns of report.md
and the console, `benchmarks.report.COLUMNS`), the latency / top-1 plot with the Pareto front,
size / top-1, each row's latency distribution, and the machine's fingerprint. Every text is
escaped: a model's name or labels are never markup. A page that opens from a mail attachment or
a CI artifact must not fetch anything: no scripts, no fonts, no stylesheets from elsewhere.
"""

from __future__ import annotations

import base64
from html import escape

from benchmarks.merge import Device, best_per_artifact, merged_blocks
from benchmarks.pareto import per_image_ms
from benchmarks.plots import devices_png, distribution_png, latency_top1_png, roofline_png, size_top1_png
from benchmarks.provenance import provenance_pairs
from benchmarks.report import bench_notes, bench_table, emulation_note, jetson_note
from benchmarks.rows import Row
from benchmarks.table import Block, Fields, Heading, Table
from deploy.errors import EdgevisionError

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
p { max-width: 1200px; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 5px; text-align: right; }
td { white-space: nowrap; }
table.rows td:last-child, table.rows th:last-child { white-space: normal; min-width: 10em; text-align: left; }
table.text td, table.text th { text-align: left; white-space: normal; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
tr.front td { background: #eef7ee; } tr.failed td, tr.interrupted td { color: #a00; }
.emulated { background: #fee; border: 2px solid #c00; padding: 0.5em 1em; font-weight: bold; }
img { display: block; margin: 1em 0; max-width: 100%; }
.wide { overflow-x: auto; }
table.fields th, table.provenance th { text-align: left; vertical-align: top; }
table.fields td, table.provenance td { text-align: left; font-family: monospace; white-space: normal; }
"""


def image(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _class(kind: str) -> str:
    return f' class="{escape(kind)}"' if kind else ""


def table_html(table: Table) -> str:
    """A table from its cells, each escaped; the table's and each row's kind is its CSS class."""
    out = [f"<table{_class(table.kind)}><tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.header) + "</tr>"]
    for line in table.rows:
        out.append(f"<tr{_class(line.kind)}>" + "".join(f"<td>{escape(c)}</td>" for c in line.cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def fields_html(pairs: list[tuple[str, str]], css: str = "") -> str:
    attribute = f' class="{escape(css)}"' if css else ""
    rows = "".join(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in pairs)
    return f"<table{attribute}>{rows}</table>"


def blocks_html(blocks: list[Block]) -> str:
    """The blocks of `benchmarks.table` as HTML, every text escaped."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h2>{escape(block.text)}</h2>")
        elif isinstance(block, Table):
            out.append(table_html(block))
        elif isinstance(block, Fields):
            out.append(fields_html(block.pairs, "fields"))
        elif block:
            out.append(f"<p>{escape(block)}</p>")
    return "\n".join(out)


def page(title: str, body: list[str]) -> str:
    head = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    return "\n".join([*head, *(part for part in body if part), "</body></html>"])


def _value(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def fingerprint_html(fingerprint: dict) -> str:
    return fields_html([(str(key), _value(value)) for key, value in fingerprint.items()], "fields")


def plots_html(rows: list[Row], peak: dict | None = None) -> list[str]:
    """Every plot the rows allow; one they do not (no --data: no top-1) is left out with a line."""
    parts = []
    plots = [("Latency against top-1", latency_top1_png), ("Size against top-1", size_top1_png),
             ("Latency distribution", distribution_png)]
    if peak:
        plots.append(("Roofline", lambda rows: roofline_png(rows, peak)))
    for title, draw in plots:
        parts.append(f"<h2>{title}</h2>")
        try:
            parts.append(image(draw(rows), title))
        except EdgevisionError as exc:
            parts.append(f"<p>{escape(str(exc))}</p>")
    return parts


def to_html(rows: list[Row], fingerprint: dict, baseline: str | None = None, title: str = "edgevision bench",
            provenance: dict | None = None) -> str:
    """The page: the run's provenance, the rows (`benchmarks.report.COLUMNS`, as in report.md and
    on the console), the plots and the machine."""
    note = emulation_note(fingerprint)
    table = bench_table(rows, baseline, fingerprint.get("peak"))
    return page(title, [
        f'<p class="emulated">{escape(note)}</p>' if note else "",
        f"<p>{escape(jetson_note(fingerprint))}</p>" if jetson_note(fingerprint) else "",
        fields_html(provenance_pairs(provenance), "provenance"),
        "<h2>Rows</h2>", "<p>Green rows lie on the latency / top-1 Pareto front.</p>",
        f'<div class="wide">{table_html(table)}</div>',
        blocks_html(bench_notes(rows, baseline, fingerprint.get("peak"))),
        *plots_html(rows, fingerprint.get("peak")),
        "<h2>Machine</h2>", fingerprint_html(fingerprint),
    ])


def merged_to_html(devices: list[Device], title: str = "edgevision report: devices compared") -> str:
    bests = [best_per_artifact(d.rows) for d in devices]
    keys = list(dict.fromkeys(k for best in bests for k in best))
    bars = [(d.label, d.emulated, [per_image_ms(b[k]) if k in b else None for k in keys])
            for d, b in zip(devices, bests, strict=True)]
    body = [blocks_html(merged_blocks(devices))]
    if keys:
        body += ["<h2>Latency across devices</h2>", image(devices_png([f"{k[0]} ({k[1]})" for k in keys], bars),
                                                           "latency across devices")]
    for device in devices:
        body += [f"<h2>Machine: {escape(device.label)}</h2>",
                 f'<p class="emulated">{escape(emulation_note(device.machine))}</p>' if device.emulated else "",
                 f"<p>reports: {escape(', '.join(device.sources))}</p>", fingerprint_html(device.machine)]
    return page(title, body)
