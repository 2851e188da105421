"""`edgevision demo`, the README's first command, run as a user runs it: every stage runs and leaves its
artifact, and its terminal shows our lines only (no line of a library's native code)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("torch_pruning")
pytest.importorskip("executorch")

from edgevision.demo import STAGES
from tests.helpers import NATIVE

REPO = Path(__file__).resolve().parents[2]

# Every line the demo itself prints: a stage's start and result, the bench table and its notes, the end.
OURS = re.compile(
    rf"^(\[({'|'.join(name for name, _ in STAGES)})\] |\||speed-up: |% peak: |Rows were timed|demo done: |"
    r"benchmark report to hand on: |$)"
)


def percent(pattern: str, out: str) -> float:
    found = re.search(pattern, out)
    assert found, f"{pattern!r} not in the demo's output:\n{out}"
    return float(found.group(1))


@pytest.mark.slow
def test_demo_runs_the_whole_road_and_prints_only_its_own_lines(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TORCH_LOGS"}
    done = subprocess.run([sys.executable, "-m", "edgevision", "demo", "--out", str(tmp_path)], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    out = done.stdout
    assert done.returncode == 0, out
    lines = out.splitlines()
    assert [line for line in lines if NATIVE.search(line)] == []
    assert [line for line in lines if not OURS.match(line)] == []
    for name, _ in STAGES:
        assert f"[{name}] " in out.replace(f"[{name}] ...", "")
    train = tmp_path / "train"
    for name in ("model.pt", "model.onnx", "model.pte", "model.pruned.onnx", "model.int8.onnx", "model.int8.pte"):
        assert (train / name).is_file(), name
    assert percent(r"\[eval\] .*?top-1 ([\d.]+)%", out) > 90
    assert percent(r"\[camera\] .*?top-1 ([\d.]+)%", out) > 85
    assert percent(r"pruned to (\d+)% of the MACs", out) <= 50
    assert lines[-1] == f"benchmark report to hand on: {tmp_path / 'bench' / 'report.html'}"
    rows = [line for line in (tmp_path / "bench" / "report.md").read_text().splitlines() if line.startswith("| model.")]
    assert len(rows) == 6 and all(line.rstrip().endswith("| ok |") for line in rows)
