"""What every command-line entry point shares: one-line errors for the user's mistakes, and the
library's progress messages (the `edgevision` logger) shown on standard error, so that standard
output carries only results (`edgevision predict --json | jq` works while a model loads)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from deploy.errors import EdgevisionError


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (pytest's capture, a redirect)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def show_progress() -> None:
    """Print the library's INFO messages (`edgevision.*` loggers) as plain lines; once per process."""
    logger = logging.getLogger("edgevision")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
        logger.propagate = False  # a library that configured the root logger would print each line twice
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def run_cli(command: Callable[[], int | None], prog: str) -> int:
    """Run `command`; a user's mistake becomes `prog: error: ...` on one line and exit status 2."""
    show_progress()
    try:
        return command() or 0
    except EdgevisionError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`edgevision info m.onnx | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
