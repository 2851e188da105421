"""Progress bars for the commands that measure or build (`edgevision bench`, `edgevision sweep`):
tqdm on a terminal, nothing at all elsewhere. Only what shows progress imports this module, so a
command that reads reports never loads tqdm."""

from __future__ import annotations

import contextlib
import logging
import sys

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


class _NoBar:
    def update(self, n: float = 1) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc) -> None:
        return None


def progress(iterable=None, **options):
    """A tqdm bar on stderr when it is a terminal; elsewhere (logs, pipes, CI, where the log lines
    say what runs) no tqdm object at all, so nothing of tqdm's (its process-wide lock, taken even
    for a disabled bar) sits between a Ctrl-C and the rows it must write."""
    if not sys.stderr.isatty():
        return iterable if iterable is not None else _NoBar()
    return tqdm(iterable, leave=False, **options)


def logging_above_bars():
    """While bars are shown, the `edgevision` log lines go through tqdm so they print above them."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    return logging_redirect_tqdm(loggers=[logging.getLogger("edgevision")])
