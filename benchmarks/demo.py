"""The demo's benchmark stage: every artifact the demo made, side by side."""

from __future__ import annotations

from benchmarks.report import to_markdown
from benchmarks.runner import Target, run_benchmark


def bench_stage(state) -> str:
    keys = ("onnx", "checkpoint", "executorch", "onnx_int8", "pte_int8", "pruned")
    targets = [Target(state.artifacts[key]) for key in keys if key in state.artifacts]
    rows = run_benchmark(targets, threads=1, budget_s=3.0, data=state.artifacts["images"], limit=100)
    table = to_markdown(rows)
    (state.out / "bench.md").write_text(table + "\n", encoding="utf-8")
    return "latency (batch 1, 1 thread) and top-1 on 100 held-out digits:\n" + table
