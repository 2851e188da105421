"""The libraries' own output is held back unless --verbose (deploy.quiet through run_cli): what native
code writes to fd 2, a child process's stderr, what a library sends up through Python's streams,
third-party warnings and log records; ours (results on stdout, the `edgevision` logger on stderr)
still comes through live and in order."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A command that interleaves our lines with what libraries write by every route they use.
NOISY = textwrap.dedent(
    """
    import logging, os, subprocess, sys, warnings
    from deploy.cli_util import run_cli
    from deploy.errors import EdgevisionError
    from deploy.quiet import library_streams

    log = logging.getLogger("edgevision.test")

    def command():
        print("result 1", flush=True)
        os.write(2, b"[cpuinfo_utils.cpp:87] Failed to open midr file\\n")  # as C++ writes, under Python
        log.info("progress 1")
        with library_streams():  # as pybind11 sends a library's std::cout / std::cerr
            print("[threadpool.cpp:66] Resetting threadpool to 1 threads.")
            sys.stderr.write("pybind stderr line\\n")
        subprocess.run([sys.executable, "-c", "import sys; print('child err', file=sys.stderr)"])
        warnings.warn("KernelPreference is deprecated", DeprecationWarning)
        warnings.warn_explicit("a library's user warning", UserWarning, "/site-packages/lib/mod.py", 3)
        logging.getLogger("somelib").warning("somelib: CPU info and manual query dont match")
        print("result 2", flush=True)
        log.info("progress 2")
        if sys.argv[2] == "fail":
            raise EdgevisionError("model.pte: cannot load")
        if sys.argv[2] == "status":
            return 3

    raise SystemExit(run_cli(command, "edgevision demo", verbose=sys.argv[1] == "verbose"))
    """
)
OURS = ["result 1", "progress 1", "result 2", "progress 2"]
THEIRS = ["[cpuinfo_utils.cpp:87] Failed to open midr file", "[threadpool.cpp:66] Resetting threadpool to 1 threads.",
          "pybind stderr line", "child err",
          "KernelPreference is deprecated", "a library's user warning", "somelib: CPU info and manual query dont match"]


def run(mode: str, outcome: str = "ok") -> subprocess.CompletedProcess:
    """The command with stdout and stderr on one pipe, as a terminal shows them."""
    return subprocess.run([sys.executable, "-c", NOISY, mode, outcome], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": ""})


def test_only_our_lines_by_default_live_and_in_order():
    done = run("quiet")
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines() == OURS


def test_verbose_shows_the_libraries_too():
    done = run("verbose")
    assert done.returncode == 0, done.stdout
    for line in THEIRS + OURS:
        assert line in done.stdout, line


def test_failure_shows_what_was_held_then_the_one_line_error():
    done = run("quiet", "fail")
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert lines[-1] == "edgevision demo: error: model.pte: cannot load"
    assert lines[:4] == OURS
    assert lines[4] == "edgevision demo: what the libraries wrote (held back without --verbose):"
    for line in THEIRS:
        assert any(line in held for held in lines[5:-1]), line


def test_non_zero_status_shows_what_was_held():
    done = run("quiet", "status")
    assert done.returncode == 3
    assert "[cpuinfo_utils.cpp:87] Failed to open midr file" in done.stdout.splitlines()[5:]


def test_python_streams_and_fds_restored_after(capfd):
    import os

    from deploy.cli_util import run_cli

    def command() -> int:
        os.write(2, b"held\n")
        print("shown")
        return 0

    assert run_cli(command, "x") == 0
    os.write(2, b"after\n")
    out, err = capfd.readouterr()
    assert out == "shown\n" and err == "after\n"
