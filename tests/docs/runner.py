"""Run a doc's unmarked commands, in order, in one bash session (so `TOKEN=...` carries to the
next line and `cd` holds), stopping at the first that exits non-zero."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from tests.docs.blocks import Command

START, FAILED = ">>> docs-run", "<<< docs-run"
HANG_GUARD_S = 1800  # a hung command fails the run instead of CI; no command comes near it


@dataclass(frozen=True)
class Failure:
    command: Command
    status: int
    output: str  # what the command printed (the tail)

    def __str__(self) -> str:
        return f"{self.command.where}: exit {self.status}\n$ {self.command.text}\n{self.output}"


def script(commands: list[Command]) -> str:
    """A bash script that announces each command, runs it as written and stops at the first failure."""
    lines = ["set -o pipefail"]
    for index, command in enumerate(commands):
        lines += [
            f"printf '%s %s\\n' {shlex.quote(f'{START} {index} {command.where}')} \"$EPOCHREALTIME\"",
            command.text,
            f"__status=$?; if [ $__status -ne 0 ]; then printf '\\n%s %s\\n' {shlex.quote(f'{FAILED} {index}')} "
            "$__status; exit 99; fi",
        ]
    lines.append(f"printf '%s %s\\n' {shlex.quote(f'{START} end')} \"$EPOCHREALTIME\"")
    return "\n".join(lines) + "\n"


DEPRECATED = re.compile(r"^edgevision \w+: .* is deprecated, use .*$", re.MULTILINE)


def deprecated_spellings(log: Path) -> list[str]:
    """`file:line: note` for each deprecation note an edgevision command printed in a run: a doc
    that still uses an old option spelling."""
    found = []
    for section in log.read_text(encoding="utf-8", errors="replace").split(f"{START} ")[1:]:
        where = section.split(maxsplit=2)[1]
        found += [f"{where}: {note}" for note in DEPRECATED.findall(section)]
    return found


def durations(log: Path) -> list[tuple[str, float]]:
    """(file:line, seconds) of each command a finished run announced in `log`."""
    marks = [line.split() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.startswith(START)]
    return [(mark[3], float(after[-1]) - float(mark[-1])) for mark, after in pairwise(marks)]


def run_commands(commands: list[Command], cwd: Path, env: dict[str, str], log: Path) -> Failure | None:
    """Run `commands` in `cwd`; the whole session's output goes to `log`. None when all exit 0."""
    path = log.with_suffix(".sh")
    path.write_text(script(commands), encoding="utf-8")
    with open(log, "wb") as out:
        done = subprocess.run(["bash", str(path)], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, timeout=HANG_GUARD_S, check=False)
    if done.returncode == 0:
        return None
    text = log.read_text(encoding="utf-8", errors="replace")
    started = [line for line in text.splitlines() if line.startswith(START)]
    index = int(started[-1].split()[2]) if started else 0
    status = done.returncode
    for line in reversed(text.splitlines()):
        if line.startswith(f"{FAILED} {index} "):
            status = int(line.split()[-1])
            break
    output = text.rsplit(f"{START} {index} ", 1)[-1].split("\n", 1)[-1]
    return Failure(commands[index], status, output[-6000:])
