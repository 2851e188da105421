"""Threads x spin: batch-1 latency of one model file per runtime setting, each in its own process.

    python -m benchmarks.threads runs/x/model.onnx runs/x/model.int8.onnx --rounds 3 --seconds 4

A thread pool that spins keeps its cores busy between runs, so two settings in one process (or
two processes at once) disturb each other. Here every setting runs alone in a fresh interpreter,
one after the other, and the settings are interleaved round after round (A B C A B C ...) so a
slow drift of a shared machine touches all of them alike. The table gives, per setting, the median
over rounds of each round's p50 and p90, with the range over rounds.

Settings: `default` (deploy.load with no options: what a user gets, tuned at load; the `used`
column says which setting it chose in how many rounds), `library` (threads=0 and,
for onnxruntime, spin on: the runtime's own defaults), and explicit threads x spin for
onnxruntime, threads x inference precision (f32, bf16) for OpenVINO. `--capture` adds a thread that
decodes and resizes a 640x480 JPEG 30 times a second, like the camera app's capture loop.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.options import MAX_SECONDS, positive_float, positive_int

SPIN_BACKENDS = ("onnxruntime",)  # backends with a spin option (`spin_wait`)


def settings_for(backend: str, cores: int) -> dict[str, dict]:
    """Setting name -> deploy.load options, for one backend on a machine with `cores` cores."""
    counts = sorted({1, 2, cores})
    library = {"threads": 0, "spin_wait": True} if backend in SPIN_BACKENDS else {"threads": 0}
    found: dict[str, dict] = {"default": {}, "library": library}
    for threads in counts:
        if backend in SPIN_BACKENDS and threads > 1:
            found[f"t{threads} spin"] = {"threads": threads, "spin_wait": True}
            found[f"t{threads} no-spin"] = {"threads": threads, "spin_wait": False}
        else:
            found[f"t{threads}"] = {"threads": threads}
        if backend == "openvino":
            found[f"t{threads} bf16"] = {"threads": threads, "inference_precision": "bf16"}
    return found


def start_capture_load(stop: threading.Event) -> threading.Thread:
    """A thread that decodes and resizes a 640x480 JPEG every 33 ms (a camera's capture loop)."""
    import cv2

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), (9, 9), 3)
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok

    def loop() -> None:
        tick = time.perf_counter()
        while not stop.is_set():
            image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
            cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)
            tick += 1 / 30
            time.sleep(max(0.0, tick - time.perf_counter()))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def measure_one(model: str, backend: str, options: dict, seconds: float, capture: bool) -> dict:
    """In this process: load, warm up, time batch-1 runs for `seconds`; p50/p90 in ms."""
    import deploy
    from deploy.timing import LatencyStats

    classifier = deploy.load(model, backend=backend, **options)
    spec = classifier.card.preprocessing
    batch = np.random.default_rng(0).normal(0, 1, (1, spec.channels, *spec.input_size)).astype(np.float32)
    stop = threading.Event()
    capturing = start_capture_load(stop) if capture else None
    for _ in range(20):
        classifier.backend.run(batch)
    samples = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        classifier.backend.run(batch)
        samples.append(time.perf_counter() - t0)
    stop.set()
    if capturing is not None:
        capturing.join()  # a daemon thread still inside OpenCV at exit aborts the interpreter
    stats = LatencyStats.from_samples(samples)
    setting = f"t{classifier.info.get('threads')}{' spin' if classifier.info.get('spin_wait') else ''}"
    return {"p50": stats.p50_ms, "p90": stats.p90_ms, "samples": stats.samples, "setting": setting}


def run_child(model: str, backend: str, options: dict, seconds: float, capture: bool) -> dict:
    command = [sys.executable, "-m", "benchmarks.threads", "--child", json.dumps(
        {"model": model, "backend": backend, "options": options, "seconds": seconds, "capture": capture})]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{model} {backend} {options}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(rounds: list[dict]) -> dict:
    p50s, p90s = [r["p50"] for r in rounds], [r["p90"] for r in rounds]
    return {
        "p50": statistics.median(p50s), "p50_range": (min(p50s), max(p50s)),
        "p90": statistics.median(p90s), "p90_range": (min(p90s), max(p90s)),
        "used": ", ".join(f"{name} x{count}" for name, count in Counter(r["setting"] for r in rounds).most_common()),
    }


def to_markdown(table: dict[tuple[str, str, str], dict]) -> str:
    lines = [
        "| model | backend | setting | used (rounds) | p50 ms (range) | p90 ms (range) | p50 / best p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    best = {}
    for (model, backend, _), row in table.items():
        best[model, backend] = min(best.get((model, backend), float("inf")), row["p50"])
    for (model, backend, setting), row in table.items():
        lo50, hi50 = row["p50_range"]
        lo90, hi90 = row["p90_range"]
        lines.append(
            f"| {Path(model).name} | {backend} | {setting} | {row['used']} | {row['p50']:.2f} ({lo50:.2f}–{hi50:.2f}) "
            f"| {row['p90']:.2f} ({lo90:.2f}–{hi90:.2f}) | {row['p50'] / best[model, backend]:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.threads", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="MODEL[@BACKEND]")
    parser.add_argument("--rounds", type=positive_int(10_000), default=3, help="rounds over all settings (default 3)")
    parser.add_argument("--seconds", type=positive_float(MAX_SECONDS), default=4.0,
                        help="timed seconds per setting and round (default 4)")
    parser.add_argument("--capture", action="store_true", help="time beside a 30 fps JPEG decode+resize thread")
    parser.add_argument("--only", nargs="+", help="run only these setting names")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(measure_one(job["model"], job["backend"], job["options"], job["seconds"], job["capture"])))
        return 0
    if not args.models:
        parser.error("give at least one model file")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = []
    for text in args.models:
        model, _, backend = text.partition("@")
        backend = backend or "onnxruntime"
        for setting, options in settings_for(backend, cores).items():
            if not args.only or setting in args.only:
                jobs.append((model, backend, setting, options))
    results: dict[tuple[str, str, str], list[dict]] = {job[:3]: [] for job in jobs}
    for index in range(args.rounds):
        for model, backend, setting, options in jobs:
            results[model, backend, setting].append(run_child(model, backend, options, args.seconds, args.capture))
        print(f"round {index + 1}/{args.rounds} done", file=sys.stderr)
    print(f"{cores} cores available; {args.rounds} rounds x {args.seconds:g} s per setting"
          f"{', beside a 30 fps capture thread' if args.capture else ''}")
    print(to_markdown({key: summarize(rounds) for key, rounds in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
