"""How far each row runs from what the machine can do: its measured matrix-product peak.

The peak is a large fp32 matrix product (MatMul) and an int8 one (MatMulInteger, uint8 x int8 ->
int32), each timed through onnxruntime, the runtime most rows use, on every core; the best of a
few calls counts. It is measured once per machine and cached in ~/.cache/edgevision/peak.json,
keyed by architecture, CPU model, cores and onnxruntime version, and measured again when a row of
a run beats it (the cached one was then taken while the machine was busy). A row's achieved GMAC/s is its
MACs per image x batch over its median call. Convolutions rarely reach a large GEMM's rate, so
the ratio says how much headroom a runtime leaves, not a target to hit. Needs `onnx` (to build
the two graphs) and onnxruntime; without them there is no peak and the column stays empty.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.provenance import package_version
from benchmarks.rows import Row
from deploy.atomic import write_text_atomic

logger = logging.getLogger("edgevision.benchmarks")

SIZE = 1024  # M = N = K: 1.07 GMAC a call, large enough for any CPU's caches to stop mattering
CALLS = 8


def cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgevision" / "peak.json"


def machine_key(machine: dict) -> str:
    cpu = machine.get("cpu") or machine.get("host_cpu") or machine.get("processor")
    emulated = " emulated" if machine.get("emulated") else ""
    ort = machine.get("onnxruntime") or package_version("onnxruntime")  # fingerprints of older reports held it
    return f"{machine.get('machine')} | {cpu} | {machine.get('cpu_count')} cores | ort {ort}{emulated}"


def _matmul_model(op: str):
    from onnx import TensorProto, helper

    kind = {"MatMul": (TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT),
            "MatMulInteger": (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32)}[op]
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["c"])], "peak",
        [helper.make_tensor_value_info("a", kind[0], [SIZE, SIZE]),
         helper.make_tensor_value_info("b", kind[1], [SIZE, SIZE])],
        [helper.make_tensor_value_info("c", kind[2], [SIZE, SIZE])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _best_gmacs(op: str, feeds: dict[str, np.ndarray], threads: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(_matmul_model(op), sess_options=options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)  # warm-up
    best = float("inf")
    for _ in range(CALLS):
        start = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    return SIZE**3 / best / 1e9


def measure_peak(cores: int) -> dict:
    """The best rate over one thread and every core: on a machine others share, the one-thread
    product is sometimes the faster, and the peak is what the hardware reached, not what it got."""
    rng = np.random.default_rng(0)
    feeds = {
        "fp32": ("MatMul", {name: rng.standard_normal((SIZE, SIZE), dtype=np.float32) for name in ("a", "b")}),
        "int8": ("MatMulInteger", {"a": rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8),
                                   "b": rng.integers(-128, 128, (SIZE, SIZE), dtype=np.int8)}),
    }
    peak: dict = {"size": SIZE, "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    for kind, (op, feed) in feeds.items():
        rate, threads = max((_best_gmacs(op, feed, n), n) for n in sorted({1, cores}))
        peak[f"{kind}_gmacs"], peak[f"{kind}_threads"] = round(rate, 2), threads
    return peak


def machine_peak(machine: dict, path: Path | None = None, reached: dict[str, float] | None = None) -> dict | None:
    """This machine's peak (cached), or None where onnx / onnxruntime are missing or it is emulated
    (an emulator's peak is the emulator's).

    `reached`: the best GMAC/s rows of each kind ("fp32", "int8") achieved in this run. A cached
    peak below one of them was measured while something else had the cores, so it is measured
    again and each kind keeps the higher of the two: the peak only ever rises.
    """
    if machine.get("emulated"):
        return None
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    path = path or cache_path()
    key = machine_key(machine)
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    cached = cache.get(key)
    below = [kind for kind, rate in (reached or {}).items() if cached and rate > cached.get(f"{kind}_gmacs", 0)]
    if cached is None or below:
        if cached is None:
            logger.info("measuring this machine's peak (fp32 and int8 %d^3 matrix products, once; cached in %s)",
                        SIZE, path)
        else:
            logger.info("the cached %s peak is below a row of this run (measured under load?): measuring again",
                        " and ".join(below))
        fresh = measure_peak(int(machine.get("cpu_count") or 1))
        for kind in ("fp32", "int8"):
            if cached and cached.get(f"{kind}_gmacs", 0) > fresh[f"{kind}_gmacs"]:
                fresh[f"{kind}_gmacs"], fresh[f"{kind}_threads"] = cached[f"{kind}_gmacs"], cached[f"{kind}_threads"]
        cache[key] = fresh
        write_text_atomic(path, json.dumps(cache, indent=1) + "\n")
    return cache[key]


def reached_gmacs(rows: list[Row]) -> dict[str, float]:
    """The best achieved GMAC/s of the fp32 and of the int8 rows (`peak_for`'s kinds)."""
    best: dict[str, float] = {}
    for row in rows:
        rate = achieved_gmacs(row)
        if rate is not None:
            kind = "int8" if row.precision.startswith("int8") else "fp32"
            best[kind] = max(best.get(kind, 0.0), rate)
    return best


def with_peak(machine: dict, rows: list[Row] = ()) -> dict:
    """The fingerprint with the machine's peak under "peak", where it can be known; `rows`: this
    run's, whose achieved rates a stale cached peak must not be below."""
    peak = machine_peak(machine, reached=reached_gmacs(list(rows)))
    return {**machine, "peak": peak} if peak else machine


def achieved_gmacs(row: Row) -> float | None:
    """MACs per image x batch over the median call."""
    if not row.macs or not row.latency:
        return None
    return row.macs * row.batch / (row.latency.p50_ms / 1000) / 1e9


def peak_for(row: Row, peak: dict | None) -> float | None:
    """The peak a row compares with: int8 rows the int8 product, every other the fp32 one."""
    if not peak:
        return None
    return peak["int8_gmacs"] if row.precision.startswith("int8") else peak["fp32_gmacs"]
