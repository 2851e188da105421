"""`edgevision report` reads JSON and writes tables: it must not load what measuring needs (the
progress bars, the runner and its worker processes). Checked in a fresh interpreter, by what is in
`sys.modules` when it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.rows import Row
from benchmarks.schema import to_json
from deploy.timing import LatencyStats

ROOT = Path(__file__).resolve().parents[2]
MEASURING = ("tqdm", "benchmarks.runner", "benchmarks.worker", "benchmarks.progress", "multiprocessing")

# Runs `edgevision report ARGS...` and, at exit, writes which of the modules named were imported.
WRAPPER = """
import atexit, json, sys
out, names, args = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
atexit.register(lambda: open(out, "w").write(json.dumps([n for n in names if n in sys.modules])))
from edgevision import main
sys.exit(main(["report", *args]))
"""


def report_file(path: Path) -> Path:
    rows = [Row("m.onnx", "onnxruntime", "fp32", 1, 1, 2048, top1=0.5, top5=1.0, images=4,
                latency=LatencyStats.from_samples([0.001, 0.002, 0.003]), samples_ms=[1.0, 2.0, 3.0])]
    path.write_text(to_json(rows, {"machine": "x86_64", "cpu": "test", "cpu_count": 2}))
    return path


def imported_by_report(tmp_path: Path, *args: str) -> list[str]:
    seen = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", WRAPPER, str(seen), ",".join(MEASURING), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(seen.read_text())


def test_report_on_a_json_file_loads_no_runner_progress_or_processes(tmp_path):
    report = report_file(tmp_path / "a.json")
    assert imported_by_report(tmp_path, str(report)) == []
    assert imported_by_report(tmp_path, str(report), "--out", str(tmp_path / "merged")) == []
    assert (tmp_path / "merged" / "report.md").is_file()
