"""A report as data, rendered to Markdown (the console and report.md), CSV (a table alone) and
HTML (`benchmarks.html`).

A report is a list of blocks: a heading (`Heading`), a paragraph (a plain `str`), a table of
cells (`Table`) or key / value pairs (`Fields`). Cells and text are plain: each renderer escapes
them for its own format, so a model file named `a | b<i>.onnx` stays one cell in all three. What
a row or a table is (on the Pareto front, failed; a table of text) travels with it as its `kind`,
which HTML shows as a CSS class and Markdown and CSV leave out.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass
class Line:
    """One body row of a table: its cells, and what kind of row it is ("front", "failed", ...)."""

    cells: list[str]
    kind: str = ""


@dataclass
class Table:
    header: list[str]
    rows: list[Line] = field(default_factory=list)
    kind: str = ""  # what kind of table ("rows": bench rows; "text": every cell is text, aligned left)

    def add(self, cells: Iterable[str], kind: str = "") -> None:
        """A body row of `cells`, one per header."""
        self.rows.append(Line(list(cells), kind))


@dataclass
class Fields:
    """Key / value pairs: a list in Markdown, a two-column table in HTML."""

    pairs: list[tuple[str, str]]


Block = Heading | Table | Fields | str


def short(value: float) -> str:
    """Two decimals, or three significant digits below 1 (a tiny model's 0.0123 ms)."""
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


MD_SPECIAL = re.compile(r"([\\|`<>*\[\]_])")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def md_cell(value: object) -> str:
    """`value` as Markdown text: `|`, backticks, `<` and the other characters Markdown acts on
    backslash-escaped, line breaks and other control characters shown as `\\xNN`, so that a
    model file named `a | b.onnx` stays in its column."""
    text = MD_SPECIAL.sub(r"\\\1", str(value))
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def markdown_table(table: Table) -> str:
    lines = ["| " + " | ".join(md_cell(h) for h in table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(md_cell(c) for c in line.cells) + " |" for line in table.rows]
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    """The table as CSV: its header, then one record per row (quoted where a cell needs it)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.header)
    writer.writerows(line.cells for line in table.rows)
    return out.getvalue()


def to_markdown(blocks: list[Block]) -> str:
    """The blocks as Markdown, a blank line between any two."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out += ["", f"## {md_cell(block.text)}", ""] if out and out[-1] else [f"## {md_cell(block.text)}", ""]
        elif isinstance(block, Table):
            out += [markdown_table(block), ""]
        elif isinstance(block, Fields):
            out += [*(f"- {md_cell(key)}: {md_cell(value)}" for key, value in block.pairs), ""]
        else:
            out += [md_cell(block), ""]
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out)
