"""Third-party noise held out of the terminal: what native code (ExecuTorch, torch, onnxruntime,
OpenCV) writes straight to standard error, and the libraries' Python warnings and logs.

`hold_library_output()` points file descriptor 2 at a temporary file for the duration and gives
`sys.stderr` a duplicate of the original descriptor: our progress messages (the `edgevision` logger)
and errors still reach the terminal live, in order with the results on standard output, while a C++
library's `std::cerr`, a child process's standard error and the like go to the file. Python-level
noise that would reach `sys.stderr` goes to the same file: warnings not raised in our packages (and
every deprecation warning) and records of loggers without a handler; torch's loggers, whose handler
follows `sys.stderr`, are set to errors only (`TORCH_LOGS=-all`, unless the user set TORCH_LOGS). A
library whose native logs come up through Python's streams (pybind11's ostream redirect: ExecuTorch's
runtime) is called inside `library_streams()`. Descriptor 1 is left alone: results, and a report
written to /dev/stdout, must reach it. `Held.text()` gives what was held, for a caller to show when
the command failed; a process killed by a signal leaves the file (`Held.path`) in the temp folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

OUR_PACKAGES = ("edgevision", "deploy", "train", "quantize", "benchmarks", "camera_app", "tools")
_ROOT = Path(__file__).resolve().parents[1]
_THEIR_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning, ResourceWarning)
_held_stream = None  # a text stream on the held file while `hold_library_output` holds


class Held:
    """What the libraries wrote while held: `text()` once the block has ended."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._text = ""

    def text(self) -> str:
        return self._text

    def tail(self, lines: int = 40) -> str:
        """The last `lines` lines, with a note of how many came before."""
        kept = self._text.rstrip("\n").splitlines()
        if len(kept) <= lines:
            return "\n".join(kept)
        return "\n".join([f"... ({len(kept) - lines} earlier lines)", *kept[-lines:]])


def is_ours(category: type[Warning], filename: str) -> bool:
    """A warning raised in one of our packages (deprecations are always the libraries' business)."""
    if issubclass(category, _THEIR_CATEGORIES):
        return False
    try:
        relative = Path(filename).resolve().relative_to(_ROOT)
    except (OSError, ValueError):
        return False
    return relative.parts[0] in OUR_PACKAGES


@contextlib.contextmanager
def library_streams() -> Iterator[None]:
    """While output is held, point `sys.stdout` and `sys.stderr` at the held file for the block: for
    calls into a library that writes its native logs through Python's streams. Elsewhere a no-op."""
    if _held_stream is None:
        yield
        return
    streams = sys.stdout, sys.stderr
    sys.stdout.flush()
    sys.stdout = sys.stderr = _held_stream
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams


def _flush_c_stderr() -> None:
    """Flush C's stdio buffers before descriptor 2 moves (stderr is unbuffered, but a library may not be)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)


def _is_fd(stream, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def hold_library_output(enabled: bool = True) -> Iterator[Held]:
    """Hold the libraries' output (see the module's doc) while the block runs; `enabled=False` holds nothing."""
    global _held_stream
    if not enabled:
        yield Held()
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    _flush_c_stderr()
    handle, name = tempfile.mkstemp(prefix="edgevision-libraries-", suffix=".log")
    held = Held(Path(name))
    terminal_fd = os.dup(2)
    original = sys.stderr
    # pytest's capture (or any stand-in not on fd 2) keeps receiving our lines as it is.
    terminal = io.TextIOWrapper(io.FileIO(terminal_fd, "w", closefd=False), encoding=original.encoding,
                                errors=original.errors, line_buffering=True) if _is_fd(original, 2) else None
    _held_stream = open(os.dup(handle), "a", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115
    last_resort, logging.lastResort = logging.lastResort, logging.StreamHandler(_held_stream)
    logging.lastResort.setLevel(logging.WARNING)
    set_torch_logs = "TORCH_LOGS" not in os.environ
    if set_torch_logs:
        os.environ["TORCH_LOGS"] = "-all"  # torch's loggers at ERROR: its handler follows sys.stderr
    fault_handler = faulthandler.is_enabled()
    faulthandler.enable(file=terminal_fd)  # a crash still shows where it happened
    if terminal is not None:
        sys.stderr = terminal
    os.dup2(handle, 2)
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:  # -W / PYTHONWARNINGS: the user chose what to see
                show, held_stream = warnings.showwarning, _held_stream

                def showwarning(message, category, filename, lineno, file=None, line=None):
                    if is_ours(category, filename):
                        show(message, category, filename, lineno, file, line)
                    else:
                        held_stream.write(warnings.formatwarning(message, category, filename, lineno, line))

                warnings.showwarning = showwarning
            yield held
    finally:
        if terminal is not None:
            with contextlib.suppress(OSError, ValueError):
                terminal.flush()
        _flush_c_stderr()
        os.dup2(terminal_fd, 2)
        if terminal is not None:
            sys.stderr = original
            with contextlib.suppress(OSError, ValueError):
                terminal.close()
        faulthandler.disable()
        if fault_handler:
            with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
                faulthandler.enable(file=sys.stderr)
        os.close(terminal_fd)
        if set_torch_logs:
            os.environ.pop("TORCH_LOGS", None)
        logging.lastResort = last_resort
        _held_stream.close()
        _held_stream = None
        os.close(handle)
        held._text = held.path.read_text(encoding="utf-8", errors="replace")
        held.path.unlink()
