"""One-line errors and quiet exits of every command-line entry point."""

from __future__ import annotations

import subprocess
import sys

from deploy.cli_util import run_cli
from deploy.errors import EdgevisionError


def test_user_error_is_one_line_and_status_2(capsys):
    def fails() -> int:
        raise EdgevisionError("model file not found: x.onnx")

    assert run_cli(fails, "edgevision predict") == 2
    assert capsys.readouterr().err == "edgevision predict: error: model file not found: x.onnx\n"


def test_reader_closing_the_pipe_is_no_traceback():
    code = (
        "from deploy.cli_util import run_cli\n"
        "def many():\n"
        "    for i in range(200000): print('line', i)\n"
        "raise SystemExit(run_cli(many, 'x'))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer.stdout.readline()
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
