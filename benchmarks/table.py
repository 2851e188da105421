"""A report as data, rendered twice: Markdown (the console and report.md) and HTML (`benchmarks.html`).

A report is a list of blocks: a heading (`Heading`), a paragraph (a plain `str`), a table of
cells (`Table`) or key / value pairs (`Fields`). Cells and text are plain: each renderer escapes
them for its own format, so a model file named `a | b<i>.onnx` stays one cell in both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # one CSS class per body row (HTML only), may be shorter
    css: str = ""  # the table's CSS class (HTML only): "text" aligns every cell left


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
MD_ESCAPED = re.compile(r"\\([\\|`<>*\[\]_])")


def md_cell(value: object) -> str:
    """`value` as Markdown text: `|`, backticks, `<` and the other characters Markdown acts on
    backslash-escaped, line breaks and other control characters shown as `\\xNN`, so that a
    model file named `a | b.onnx` stays in its column. `md_unescape` reverses it."""
    text = MD_SPECIAL.sub(r"\\\1", str(value))
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def md_unescape(text: str) -> str:
    return MD_ESCAPED.sub(r"\1", text)


def md_cells(line: str) -> list[str]:
    """The cells of one table row written by `to_markdown`: every `|` inside a cell is escaped,
    so the row splits at its bare ` | `."""
    return [md_unescape(cell) for cell in line.strip()[1:-1].strip().split(" | ")]


def markdown_table(table: Table) -> str:
    lines = ["| " + " | ".join(md_cell(h) for h in table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


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
