"""The shell commands of the README and docs/: fenced blocks, their command lines and markers.

A fenced block tagged `bash`, `sh`, `shell` or `console` holds commands; every fence must say what
it holds (`text` for output and diagrams, `python`, `json`, ...), so a command cannot hide in an
untagged block. A command is a line, with its backslash continuations and any heredoc body; in a
`console` block only the lines after a `$ ` prompt are commands (the rest is output). A command
that needs what CI lacks ends with a marker comment, `# needs: NAME` or `# needs: NAME, NAME`,
NAME from `NEEDS`; every other command is run by `tests/docs/test_docs_run.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# What a marked command needs that CI lacks: the one list of marker names.
NEEDS: dict[str, str] = {
    "camera": "a camera (a webcam, /dev/video0, a network camera)",
    "gpu": "an NVIDIA GPU with CUDA or TensorRT",
    "jetson": "an NVIDIA Jetson with JetPack (its TensorRT, trtexec, CSI camera)",
    "pi": "a Raspberry Pi (Raspberry Pi OS packages, its camera, a run on the board)",
    "network": "the network (the package registry, downloaded weights, another machine)",
}
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARKER = re.compile(r"\s#\s*needs:(?P<names>[^#]*)$")
MARKER_ALONE = re.compile(r"^\s*#\s*needs:")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>\w+)\1")


class DocError(ValueError):
    """A fenced block the runner cannot take as it is: the message names the file and line."""


@dataclass(frozen=True)
class Command:
    file: str  # path relative to the repository, e.g. docs/quantize.md
    line: int  # 1-based line of the command's first line
    text: str  # the command as a shell reads it (continuations and heredoc body included)
    needs: tuple[str, ...]  # marker names; empty: the test runs it

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Block:
    file: str
    line: int  # 1-based line of the opening fence
    language: str
    commands: tuple[Command, ...]


def doc_files(repo: Path) -> list[Path]:
    """README.md and every docs/*.md, in a fixed order."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def fences(text: str, name: str) -> list[tuple[int, str, list[tuple[int, str]]]]:
    """Every fenced block: (opening line, info string, [(line number, line)] of its body)."""
    found = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        opening, fence, info = index + 1, match["fence"], match["info"].strip()
        body = []
        index += 1
        while index < len(lines):
            closing = FENCE.match(lines[index])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence) \
                    and not closing["info"].strip():
                break
            body.append((index + 1, lines[index]))
            index += 1
        else:
            raise DocError(f"{name}:{opening}: fenced block never closed")
        found.append((opening, info, body))
        index += 1
    return found


def parse_needs(text: str, where: str) -> tuple[str, ...]:
    match = MARKER.search(text)
    if not match:
        return ()
    names = tuple(name.strip() for name in match["names"].split(","))
    unknown = [name for name in names if name not in NEEDS]
    if unknown or not names:
        raise DocError(f"{where}: unknown marker 'needs: {match['names'].strip()}'; known: {', '.join(NEEDS)}")
    return names


def commands_of(body: list[tuple[int, str]], name: str, console: bool) -> list[Command]:
    """The commands in a block's body (see the module docstring)."""
    commands = []
    index = 0
    while index < len(body):
        number, line = body[index]
        index += 1
        if console:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if MARKER_ALONE.match(line):
            raise DocError(f"{name}:{number}: a 'needs:' marker on a line of its own marks nothing; "
                           "put it at the end of the command")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        shell_lines = [line]
        while shell_lines[-1].rstrip().endswith("\\") and index < len(body):
            shell_lines.append(body[index][1])
            index += 1
        heredoc_body = []
        if heredoc := HEREDOC.search(shell_lines[0]):
            while index < len(body):
                heredoc_body.append(body[index][1])
                index += 1
                if heredoc_body[-1].strip() == heredoc["word"]:
                    break
            else:
                raise DocError(f"{name}:{number}: heredoc never ends with {heredoc['word']}")
        where = f"{name}:{number}"
        needs = ()
        for shell_line in shell_lines:
            needs = needs or parse_needs(shell_line, where)
        text = "\n".join(shell_lines + heredoc_body)
        commands.append(Command(name, number, text, needs))
    return commands


def blocks_of(path: Path, repo: Path) -> list[Block]:
    """The shell blocks of one Markdown file; DocError for an untagged fence, an unknown marker or
    a shell block without a command."""
    name = path.relative_to(repo).as_posix()
    blocks = []
    for opening, info, body in fences(path.read_text(encoding="utf-8"), name):
        language = info.split()[0].lower() if info else ""
        if not language:
            raise DocError(f"{name}:{opening}: fenced block without a language: tag commands `bash` "
                           "(run by tests/docs) and output or diagrams `text`")
        if language not in SHELL_LANGUAGES:
            continue
        commands = commands_of(body, name, console=language == "console")
        if not commands:
            raise DocError(f"{name}:{opening}: {language} block without a command")
        blocks.append(Block(name, opening, language, tuple(commands)))
    return blocks
