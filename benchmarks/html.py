"""`report.html`: one self-contained page to hand on (plots inline as base64 PNG, no network);
the same for several devices merged (`edgevision report`).

The rows' table, the latency / top-1 plot with the Pareto front, size / top-1, each row's
latency distribution, and the machine's fingerprint. A page that opens from a mail attachment or
a CI artifact must not fetch anything: no scripts, no fonts, no stylesheets from elsewhere.
"""

from __future__ import annotations

import base64
from html import escape

from benchmarks.merge import Device, best_per_artifact, merged_markdown
from benchmarks.pareto import pareto_front, per_image_ms
from benchmarks.plots import devices_png, distribution_png, latency_top1_png, roofline_png, size_top1_png
from benchmarks.report import emulation_note, md_cells, md_unescape, to_markdown
from benchmarks.runner import Row
from deploy.errors import EdgevisionError

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
tr.front td { background: #eef7ee; } tr.failed td, tr.interrupted td { color: #a00; }
.emulated { background: #fee; border: 2px solid #c00; padding: 0.5em 1em; font-weight: bold; }
img { display: block; margin: 1em 0; max-width: 100%; }
"""


def image(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _cells(line: str) -> list[str]:
    return [escape(cell.strip()) for cell in md_cells(line)]


def markdown_html(markdown: str, row_classes: list[str] | None = None) -> str:
    """Our own Markdown (headings, pipe tables, plain lines) as HTML: one source for both. The
    body rows of the first table get `row_classes`."""
    out: list[str] = []
    table: list[str] = []
    classes = list(row_classes or [])

    def flush() -> None:
        if not table:
            return
        out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in _cells(table[0])) + "</tr>")
        for line in table[2:]:
            css = classes.pop(0) if classes else ""
            out.append(f'<tr class="{escape(css)}">' + "".join(f"<td>{c}</td>" for c in _cells(line)) + "</tr>")
        out.append("</table>")
        table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h2>{escape(line[3:])}</h2>")
        elif line.strip():
            out.append(f"<p>{escape(md_unescape(line))}</p>")
    flush()
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
    rows = "".join(f"<tr><th>{escape(str(key))}</th><td>{escape(_value(value))}</td></tr>"
                   for key, value in fingerprint.items())
    return f"<table>{rows}</table>"


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


def to_html(rows: list[Row], fingerprint: dict, baseline: str | None = None, title: str = "edgevision bench") -> str:
    front = {id(r) for r in pareto_front(rows)}
    note = emulation_note(fingerprint)
    return page(title, [
        f'<p class="emulated">{escape(note)}</p>' if note else "",
        "<h2>Rows</h2>", "<p>Green rows lie on the latency / top-1 Pareto front.</p>",
        markdown_html(to_markdown(rows, baseline, fingerprint.get("peak")),
                      ["front" if id(r) in front else r.status for r in rows]),
        *plots_html(rows, fingerprint.get("peak")),
        "<h2>Machine</h2>", fingerprint_html(fingerprint),
    ])


def merged_to_html(devices: list[Device], title: str = "edgevision report: devices compared") -> str:
    bests = [best_per_artifact(d.rows) for d in devices]
    keys = list(dict.fromkeys(k for best in bests for k in best))
    bars = [(d.label, d.emulated, [per_image_ms(b[k]) if k in b else None for k in keys])
            for d, b in zip(devices, bests)]
    body = [markdown_html(merged_markdown(devices))]
    if keys:
        body += ["<h2>Latency across devices</h2>", image(devices_png([f"{k[0]} ({k[1]})" for k in keys], bars),
                                                           "latency across devices")]
    for device in devices:
        body += [f"<h2>Machine: {escape(device.label)}</h2>",
                 f'<p class="emulated">{escape(emulation_note(device.machine))}</p>' if device.emulated else "",
                 f"<p>reports: {escape(', '.join(device.sources))}</p>", fingerprint_html(device.machine)]
    return page(title, body)
