"""`edgevision demo`, the README's first command: every stage runs and leaves its artifact."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("torch_pruning")
pytest.importorskip("executorch")


@pytest.mark.slow
def test_demo_runs_the_whole_road(tmp_path, capsys):
    from edgevision.demo import STAGES, run_demo

    state = run_demo(tmp_path)
    out = capsys.readouterr().out
    for name, _ in STAGES:
        assert f"[{name}] " in out.replace(f"[{name}] ...", "")
    for key in ("checkpoint", "onnx", "executorch", "pruned", "onnx_int8", "pte_int8"):
        assert state.artifacts[key].is_file(), key
    assert state.metrics["eval"]["top1"] > 0.9 and state.metrics["camera"]["top1"] > 0.85
    assert state.metrics["prune"]["macs_after"] <= 0.5 * state.metrics["prune"]["macs_before"]
    assert out.rstrip().endswith(f"benchmark report to hand on: {tmp_path / 'bench' / 'report.html'}")
    rows = [line for line in (tmp_path / "bench" / "report.md").read_text().splitlines() if line.startswith("| model.")]
    assert len(rows) == 6 and all(line.rstrip().endswith("| ok |") for line in rows)
