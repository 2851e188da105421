"""`report.html`: one self-contained page to hand on (plots inline as base64 PNG, no network).

The rows' table, the latency / top-1 plot with the Pareto front, size / top-1, each row's
latency distribution, and the machine's fingerprint. A page that opens from a mail attachment or
a CI artifact must not fetch anything: no scripts, no fonts, no stylesheets from elsewhere.
"""

from __future__ import annotations

import base64
from html import escape

from benchmarks.pareto import pareto_front
from benchmarks.plots import distribution_png, latency_top1_png, size_top1_png
from benchmarks.report import emulation_note, to_markdown
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


def markdown_table_html(markdown: str, classes: list[str]) -> str:
    """The Markdown table's lines as an HTML table (one source for both); row i gets classes[i]."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header, body = lines[0], lines[1:]

    def cells(line: str) -> list[str]:
        return [escape(cell.strip()) for cell in line.strip().strip("|").split(" | ")]

    out = ["<table>", "<tr>" + "".join(f"<th>{c}</th>" for c in cells(header)) + "</tr>"]
    for line, css in zip(body, classes):
        out.append(f'<tr class="{css}">' + "".join(f"<td>{c}</td>" for c in cells(line)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def fingerprint_html(fingerprint: dict) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(key))}</th><td>{escape(', '.join(map(str, value)) if isinstance(value, list) else str(value))}</td></tr>"
        for key, value in fingerprint.items()
    )
    return f"<table>{rows}</table>"


def plots_html(rows: list[Row]) -> list[str]:
    """Every plot the rows allow; one they do not (no --data: no top-1) is left out with a line."""
    parts = []
    for title, draw in (("Latency against top-1", latency_top1_png), ("Size against top-1", size_top1_png),
                        ("Latency distribution", distribution_png)):
        parts.append(f"<h2>{title}</h2>")
        try:
            parts.append(image(draw(rows), title))
        except EdgevisionError as exc:
            parts.append(f"<p>{escape(str(exc))}</p>")
    return parts


def to_html(rows: list[Row], fingerprint: dict, baseline: str | None = None, title: str = "edgevision bench") -> str:
    front = {id(r) for r in pareto_front(rows)}
    classes = ["front" if id(r) in front else r.status for r in rows]
    note = emulation_note(fingerprint)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>",
        f'<p class="emulated">{escape(note)}</p>' if note else "",
        "<h2>Rows</h2>", "<p>Green rows lie on the latency / top-1 Pareto front.</p>",
        markdown_table_html(to_markdown(rows, baseline), classes),
        *(f"<p>{escape(line)}</p>" for line in to_markdown(rows, baseline).splitlines()
          if line.strip() and not line.startswith("|")),
        *plots_html(rows),
        "<h2>Machine</h2>", fingerprint_html(fingerprint),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
