"""What every command-line entry point shares: one-line errors for the user's mistakes, the
library's progress messages (the `edgevision` logger) shown on standard error, so that standard
output carries only results (`edgevision predict --json | jq` works while a model loads), and the
third-party libraries' own output held back unless `--verbose` (`deploy.quiet`), shown when the
command fails."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from deploy.errors import EdgevisionError
from deploy.quiet import Held, hold_library_output


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


def show_progress(verbose: bool = False) -> None:
    """Print the library's INFO messages (DEBUG with `verbose`) of the `edgevision.*` loggers as plain
    lines; the handler is added once per process."""
    logger = logging.getLogger("edgevision")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
        logger.propagate = False  # a library that configured the root logger would print each line twice
    if verbose:
        logger.setLevel(logging.DEBUG)
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def show_held(held: Held, prog: str) -> None:
    """After a failure: what the libraries wrote, which may say why."""
    if held.text().strip():
        print(f"{prog}: what the libraries wrote (held back without --verbose):\n{held.tail()}", file=sys.stderr)


def run_cli(command: Callable[[], int | None], prog: str, verbose: bool = False) -> int:
    """Run `command`; a user's mistake becomes `prog: error: ...` on one line and exit status 2.

    Without `verbose` the libraries' own output (native code's lines, their warnings) is held back
    while it runs and shown above the error when the command fails or returns a non-zero status.
    """
    show_progress(verbose)
    held = Held()
    try:
        with hold_library_output(enabled=not verbose) as held:
            status = command() or 0
    except EdgevisionError as exc:
        show_held(held, prog)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`edgevision info m.onnx | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:
        show_held(held, prog)
        raise
    if status:
        show_held(held, prog)
    return status
