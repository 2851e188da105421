"""Third-party noise held out of the terminal: what native code (ExecuTorch, torch, onnxruntime,
OpenCV) writes straight to file descriptors 1 and 2, and the libraries' Python warnings and logs.

`hold_library_output()` points descriptors 1 and 2 at a temporary file for the duration, and gives
`sys.stdout` / `sys.stderr` duplicates of the original descriptors: our results (print) and progress
(the `edgevision` logger) still reach the terminal live and in order, while a C++ library's
`std::cerr`, a child process's output and the like go to the file. Python-level noise that would
otherwise reach `sys.stderr` goes to the same file: warnings not raised by our packages (and every
deprecation warning) and records of loggers without a handler; torch's loggers, whose handler follows
`sys.stderr`, are set to errors only (`TORCH_LOGS=-all`, unless the user set TORCH_LOGS). `Held.text()` gives what was held, for a caller to show when
the command failed. A process killed by a signal leaves its file (`Held.path`) in the temp folder.
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


class Held:
    """What the libraries wrote while held: `text()` after the block ends."""

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


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers (printf from native code to a pipe waits there) before fds move."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)


def _terminal(stream, fd: int):
    """A text stream like `stream` on `fd` (a duplicate of the descriptor it used)."""
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding=stream.encoding, errors=stream.errors,
                            line_buffering=True)


def _uses_fd(stream, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


def _close_quietly(stream, fd: int) -> None:
    """Flush and close `stream`; a reader that went away (BrokenPipeError) leaves nothing pending."""
    try:
        stream.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    with contextlib.suppress(OSError):
        stream.close()


@contextlib.contextmanager
def hold_library_output(enabled: bool = True) -> Iterator[Held]:
    """Hold the libraries' output (see the module's doc) while the block runs; `enabled=False` holds nothing."""
    if not enabled:
        yield Held()
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    _flush_c_stdio()
    handle, name = tempfile.mkstemp(prefix="edgevision-libraries-", suffix=".log")
    held = Held(Path(name))
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    swapped = {}  # "stdout"/"stderr" -> (the original stream, its stand-in on the saved fd)
    for attr, fd in (("stdout", 1), ("stderr", 2)):
        original = getattr(sys, attr)
        if _uses_fd(original, fd):
            swapped[attr] = (original, _terminal(original, saved[fd]))
            setattr(sys, attr, swapped[attr][1])
    log_file = open(os.dup(handle), "a", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115
    last_resort, logging.lastResort = logging.lastResort, logging.StreamHandler(log_file)
    logging.lastResort.setLevel(logging.WARNING)
    set_torch_logs = "TORCH_LOGS" not in os.environ
    if set_torch_logs:
        os.environ["TORCH_LOGS"] = "-all"  # torch's loggers at ERROR: its handler follows sys.stderr
    fault_handler = faulthandler.is_enabled()
    faulthandler.enable(file=saved[2])  # a crash still shows where it happened
    for fd in (1, 2):
        os.dup2(handle, fd)
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:  # -W / PYTHONWARNINGS: the user chose what to see
                show = warnings.showwarning

                def showwarning(message, category, filename, lineno, file=None, line=None):
                    if is_ours(category, filename):
                        show(message, category, filename, lineno, file, line)
                    else:
                        log_file.write(warnings.formatwarning(message, category, filename, lineno, line))

                warnings.showwarning = showwarning
            yield held
    finally:
        for attr, (_, stand_in) in swapped.items():
            with contextlib.suppress(OSError, ValueError):
                stand_in.flush()
        _flush_c_stdio()
        for fd in (1, 2):
            os.dup2(saved[fd], fd)
        for attr, (original, stand_in) in swapped.items():
            setattr(sys, attr, original)
            _close_quietly(stand_in, saved[1 if attr == "stdout" else 2])
        faulthandler.disable()
        if fault_handler:
            with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
                faulthandler.enable(file=sys.stderr)
        for fd in saved.values():
            os.close(fd)
        if set_torch_logs:
            os.environ.pop("TORCH_LOGS", None)
        logging.lastResort = last_resort
        log_file.close()
        os.close(handle)
        held._text = held.path.read_text(encoding="utf-8", errors="replace")
        held.path.unlink()
